"""Who may read `GET /metrics`: anyone where no token is configured; else only a scraper sending
`Authorization: Bearer <SWITCHBOARD_METRICS_TOKEN>`. Tenant API keys do not open it: the metrics name every tenant."""

from __future__ import annotations

import hmac

from fastapi import Request

from serving.errors import Unauthenticated


def check_scraper(request: Request) -> None:
    token = request.app.state.ctx.settings.metrics_token
    if token is None:
        return
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    expected = token.get_secret_value().encode()
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), expected):
        raise Unauthenticated("GET /metrics needs `Authorization: Bearer <metrics token>` (SWITCHBOARD_METRICS_TOKEN)")
