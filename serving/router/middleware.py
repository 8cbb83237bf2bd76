"""ASGI middleware of the router: request ids, body size limit, and one access log line per request (no text)."""

from __future__ import annotations

import json
import logging
import time
import uuid

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from serving.errors import PayloadTooLarge, Unauthenticated
from serving.router import errors
from serving.router.auth import bearer_key
from serving.telemetry import tracing

log = logging.getLogger("switchboard.access")


class RequestGuard:
    """Assigns a request id, rejects bodies over `max_bytes` with 413 (by header or while streaming), logs the outcome."""

    def __init__(
        self,
        app: ASGIApp,
        max_bytes: int,
        metrics=None,
        overrides: dict[tuple[str, str], int] | None = None,
        echo_request_id: bool = True,
    ):
        self.app = app
        # Behind Ray Serve's proxy the id arrives as x-request-id (the client's, or one the proxy made) and the proxy
        # puts it on the response itself: echoing it here too sent the header twice.
        self.echo_request_id = echo_request_id
        self.max_bytes = max_bytes
        self.metrics = metrics
        self.overrides = overrides or {}  # (method, path) -> a larger limit, e.g. for bulk uploads

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        rid = _safe_id(headers.get(b"x-request-id")) or uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = rid
        started = time.perf_counter()
        status = {"code": 500}

        server_span = tracing.current_span()

        async def send_wrapped(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                # The HTTP server span is FastAPI's own (it continues a client's traceparent); add who and what.
                tracing.annotate(server_span, **scope["state"].get("log", {}))
                if self.echo_request_id:
                    message.setdefault("headers", []).append((b"x-request-id", rid.encode()))
            await send(message)

        limit = self.overrides.get((scope["method"], scope["path"]), self.max_bytes)
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await _too_large(limit, rid, send_wrapped)
        elif (refusal := _key_refusal(scope)) is not None:
            await refusal(scope, receive, send_wrapped)
        else:
            await self._guarded(scope, receive, send_wrapped, rid, limit)
        fields = scope["state"].get("log", {})
        elapsed = time.perf_counter() - started
        route = _route(scope)
        if self.metrics is not None and route.startswith(("/v1/tasks/", "/v1/chat/")):
            task = fields.get("task") or _task_of(route)
            self.metrics.observe(fields.get("tenant", "unknown"), task, status["code"], elapsed)
        log.info(
            "request",
            extra={
                "request_id": rid,
                "method": scope["method"],
                "path": route,
                "status": status["code"],
                "latency_ms": round((time.perf_counter() - started) * 1000, 2),
                **fields,
            },
        )

    async def _guarded(self, scope: Scope, receive: Receive, send: Send, rid: str, limit: int) -> None:
        seen = 0

        async def receive_limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise _BodyTooLarge(f"request body is over the limit of {limit} bytes")
            return message

        started = False

        async def send_tracked(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive_limited, send_tracked)
        except _BodyTooLarge:
            await _too_large(limit, rid, send)
        except Exception as exc:  # noqa: BLE001 - the last line of defence: no traceback, no text in logs
            # Log the type only: an exception message may quote customer text. Nothing is re-raised, so no
            # server (uvicorn, the Ray Serve proxy) prints a traceback either.
            log.error("unhandled error", extra={"request_id": rid, "error_type": type(exc).__name__})
            if not started:
                await _send_error(
                    send, 500, "internal_error", "internal error; see the router log with this request_id", rid
                )


def _key_refusal(scope: Scope) -> Response | None:
    """A 401 for a request that brings a body to the API without a key that matches a tenant, answered before the
    body is read (FastAPI reads a route's body before its dependencies, so a stalled anonymous body would otherwise
    hold a connection). The route's own authentication still runs for everything let through."""
    if scope["method"] not in _BODY_METHODS or not scope["path"].startswith("/v1/"):
        return None
    state = getattr(scope.get("app"), "state", None)
    registry = getattr(getattr(state, "ctx", None), "registry", None)
    if registry is None:
        return None
    request = Request(scope)
    try:
        registry.authenticate(bearer_key(request))
    except Unauthenticated as exc:
        _name_route(scope)  # the access log and the metrics name the route template, as for a routed refusal
        return errors.error_response(401, exc.code, exc.message, request)
    return None


def _name_route(scope: Scope) -> None:
    for route in getattr(scope.get("app"), "routes", ()):
        match, child = route.matches(scope)
        if match is Match.FULL:
            scope["route"] = child.get("route", route)
            return


_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


async def _too_large(limit: int, rid: str, send: Send) -> None:
    await _send_error(send, 413, "payload_too_large", f"request body is over the limit of {limit} bytes", rid)


async def _send_error(send: Send, status: int, code: str, message: str, rid: str) -> None:
    body = json.dumps({"error": {"type": code, "message": message, "field": None, "request_id": rid}}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


class _BodyTooLarge(PayloadTooLarge):
    """A domain error, so that where a framework wraps it (FastAPI's body parsing: a 400 `from` it), the error table
    still answers 413."""


def _safe_id(raw: bytes | None) -> str | None:
    if not raw or len(raw) > 64:
        return None
    text = raw.decode("latin-1")
    return text if all(c.isalnum() or c in "-_." for c in text) else None


def _route(scope: Scope) -> str:
    route = scope.get("route")
    return getattr(route, "path", None) or "unmatched"


def _task_of(route: str) -> str:
    """The task a route template serves, from a closed set (never the raw path a client sent)."""
    name = route.rsplit("/", 1)[-1]
    return "unknown" if name.startswith("{") else name
