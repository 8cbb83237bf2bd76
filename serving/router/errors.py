"""The one table from domain errors to HTTP status and JSON error body, and the handlers that apply it."""

from __future__ import annotations

import math
from typing import Any, cast

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match
from starlette.types import ExceptionHandler

from serving import errors as e
from serving.vocabulary.validation import describe, first_field

STATUS: dict[type[e.SwitchboardError], int] = {
    e.InvalidRequest: 422,
    e.Unauthenticated: 401,
    e.Forbidden: 403,
    e.NotFound: 404,
    e.PayloadTooLarge: 413,
    e.RateLimited: 429,
    e.Overloaded: 503,
    e.ModelNotReady: 503,
    e.DeadlineExceeded: 504,
    e.TaskFailed: 502,
    e.ProfileError: 422,
    e.ConfigError: 500,
}

# OpenAPI `responses` of an operation that answers JSON or, with `stream: true`, server-sent events.
SSE_DOC: dict[int | str, dict[str, Any]] = {
    200: {
        "content": {
            "text/event-stream": {
                "schema": {
                    "type": "object",
                    "required": ["data"],
                    "properties": {
                        "event": {"type": "string"},
                        "data": {"type": "string", "description": "A JSON chunk."},
                    },
                    "description": "With `stream: true`: server-sent events, one per chunk; an error, such as the deadline, ends the "
                    "stream with an `error` event.",
                }
            }
        }
    }
}

_HTTP_CODES = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
}


def status_of(error: e.SwitchboardError) -> int:
    for cls in type(error).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 500


def error_response(
    status: int, code: str, message: str, request: Request, field: str | None = None, retry_after: float | None = None
) -> JSONResponse:
    if request.url.path.startswith(("/v1/chat/", "/v1/models")):  # OpenAI clients parse OpenAI-shaped errors
        body = {"error": {"message": message, "type": code, "param": field, "code": code}}
    else:
        body = {"error": {"type": code, "message": message, "field": field, "request_id": request_id(request)}}
    headers = {}
    if retry_after is not None:
        headers["Retry-After"] = str(max(1, math.ceil(retry_after)))
    if status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    return JSONResponse(body, status_code=status, headers=headers)


def request_id(request: Request) -> str | None:
    return getattr(request.state, "request_id", None)


async def _domain(request: Request, exc: e.SwitchboardError) -> JSONResponse:
    status = status_of(exc)
    retry = exc.retry_after if exc.retry_after is not None else (1.0 if status in (429, 503) else None)
    return error_response(status, exc.code, exc.message, request, exc.field, retry)


async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
    return error_response(422, "invalid_request", describe(exc), request, first_field(exc))


async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    if isinstance(exc.__cause__, e.SwitchboardError):  # raised while FastAPI read the body, e.g. over the byte limit
        return await _domain(request, exc.__cause__)
    if exc.status_code == 400:  # FastAPI's "error parsing the body": a body that is not JSON is invalid, as documented
        return error_response(422, e.InvalidRequest.code, "body: not valid JSON", request, "body")
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    response = error_response(exc.status_code, code, str(exc.detail), request)
    if exc.status_code == 405:  # RFC 9110: say which methods the path has (all its routes, not the first one's)
        response.headers["Allow"] = ", ".join(sorted(_methods_of(request)))
    return response


def _methods_of(request: Request) -> set[str]:
    methods: set[str] = set()
    for route in request.app.router.routes:
        match, _ = route.matches(request.scope)
        if match is not Match.NONE:
            methods |= getattr(route, "methods", None) or set()
    return methods


def install(app: FastAPI) -> None:
    # Starlette types a handler's exception as Exception; each of these is registered for its own class only.
    app.add_exception_handler(e.SwitchboardError, cast(ExceptionHandler, _domain))
    app.add_exception_handler(RequestValidationError, cast(ExceptionHandler, _validation))
    app.add_exception_handler(StarletteHTTPException, cast(ExceptionHandler, _http))
