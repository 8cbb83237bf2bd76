"""Ray Serve HTTP proxy middlewares: header limits, and a request whose router replica died is replayed or answered.

When a router replica dies (OOM kill, node loss) with requests in flight, Ray Serve's proxy sends those requests'
clients a bare `500 Internal Server Error` (http_util.get_http_response_status maps RayActorError to 500 and
send_http_response_on_exception writes no body for it). A task request has no side effects, so this middleware,
installed in the proxy through Ray's RAY_SERVE_HTTP_PROXY_CALLBACK_IMPORT_PATH hook, replays it once: the proxy's
request router has dropped the dead replica by then and picks a live one. Requests that must not run twice (batch
creation) and a second loss get an explicit `503` with Retry-After and a JSON error body.

The body is recorded as the replica reads it, never read ahead (a stalled body is still the router's to time out),
and only up to MAX_REPLAY_BYTES; a response that has started is never replayed.

Header limits: Serve's uvicorn (httptools) takes headers of any size and number and Serve exposes no setting for them,
so requests over Envoy's defaults (100 headers, 60 KiB) get 431 here, before a router replica spends anything on them.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

CALLBACK = "serving.deployments.proxy.middlewares"  # the value of RAY_SERVE_HTTP_PROXY_CALLBACK_IMPORT_PATH
CALLBACK_ENV = "RAY_SERVE_HTTP_PROXY_CALLBACK_IMPORT_PATH"
MAX_REPLAY_BYTES = 1 << 20
RETRY_AFTER_S = 2
# A replayed request waits this long for a live router replica to start answering; then it is a 503.
REPLAY_START_TIMEOUT_S = 10.0
MAX_HEADERS = 100  # Envoy's max_headers_count default
MAX_HEADER_BYTES = 60 * 1024  # Envoy's max_request_headers_kb default

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[MutableMapping[str, Any], Receive, Send], Awaitable[None]]


def replayable(method: str, path: str) -> bool:
    """Requests with no side effect a second run could repeat: reads, deletes, task calls and chat completions."""
    if method in ("GET", "HEAD", "OPTIONS", "DELETE"):
        return True
    return method == "POST" and (path.startswith("/v1/tasks/") or path == "/v1/chat/completions")


def middlewares() -> list:
    """The callback Ray's proxy calls at start-up: a list of Starlette middlewares."""
    from starlette.middleware import Middleware

    return [Middleware(ReplicaLossRetry), Middleware(HeaderLimits)]  # the last one listed runs first


class HeaderLimits:
    def __init__(self, app: ASGIApp, max_headers: int = MAX_HEADERS, max_bytes: int = MAX_HEADER_BYTES):
        self.app, self.max_headers, self.max_bytes = app, max_headers, max_bytes

    async def __call__(self, scope: MutableMapping[str, Any], receive: Receive, send: Send) -> None:
        headers = scope.get("headers") or [] if scope.get("type") == "http" else []
        size = sum(len(k) + len(v) for k, v in headers)
        if len(headers) > self.max_headers:
            await _refuse(
                scope,
                send,
                431,
                "request_header_fields_too_large",
                f"{len(headers)} headers; at most {self.max_headers} are accepted",
            )
        elif size > self.max_bytes:
            await _refuse(
                scope,
                send,
                431,
                "request_header_fields_too_large",
                f"headers of {size} bytes; at most {self.max_bytes} are accepted",
            )
        else:
            await self.app(scope, receive, send)


class ReplicaLossRetry:
    def __init__(self, app: ASGIApp, start_timeout_s: float = REPLAY_START_TIMEOUT_S):
        self.app = app
        self.start_timeout_s = start_timeout_s

    async def __call__(self, scope: MutableMapping[str, Any], receive: Receive, send: Send) -> None:
        if scope.get("type") != "http":
            await self.app(scope, receive, send)
            return
        attempt = _Attempt(self.app, scope, receive, send)
        if await attempt.run(timeout_s=None) or attempt.body.disconnected:
            return  # answered, or the client left (the proxy has cancelled the work; nobody is there to answer)
        if replayable(scope.get("method", ""), scope.get("path", "")) and not attempt.body.overflow:
            replay = _Attempt(self.app, scope, attempt.body.replayed(receive), send)
            if await replay.run(timeout_s=self.start_timeout_s) or replay.body.disconnected:
                return
        await _unavailable(scope, send)


class _Body:
    """What the replica read of the request body, so it can be read again."""

    def __init__(self) -> None:
        self.chunks: list[Message] = []
        self.size = 0
        self.done = False
        self.overflow = False
        self.disconnected = False

    def record(self, message: Message) -> None:
        self.disconnected = self.disconnected or message.get("type") == "http.disconnect"
        if message.get("type") != "http.request" or self.done or self.overflow:
            return
        self.size += len(message.get("body", b""))
        if self.size > MAX_REPLAY_BYTES:
            self.overflow, self.chunks = True, []
            return
        self.chunks.append(dict(message))
        self.done = not message.get("more_body", False)

    def replayed(self, receive: Receive) -> Receive:
        queue = list(self.chunks)

        async def again() -> Message:
            return queue.pop(0) if queue else await receive()

        return again


class _Attempt:
    def __init__(self, app: ASGIApp, scope: MutableMapping[str, Any], receive: Receive, send: Send):
        self.app, self.scope, self._receive, self._send = app, scope, receive, send
        self.body = _Body()
        self.started = asyncio.Event()

    async def receive(self) -> Message:
        message = await self._receive()
        self.body.record(message)
        return message

    async def send(self, message: Message) -> None:
        if message.get("type") == "http.response.start":
            self.started.set()
        await self._send(message)

    async def run(self, timeout_s: float | None) -> bool:
        """True when the app answered (a response started); False when it returned without a word. With a timeout,
        an attempt that has not started its response by then is cancelled."""
        task = asyncio.ensure_future(self.app(self.scope, self.receive, self.send))
        if timeout_s is not None:
            started = asyncio.ensure_future(self.started.wait())
            await asyncio.wait({task, started}, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED)
            started.cancel()
            if not self.started.is_set() and not task.done():
                task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            if not task.cancelled():
                raise
        return self.started.is_set()


async def _unavailable(scope: MutableMapping[str, Any], send: Send) -> None:
    await _refuse(
        scope,
        send,
        503,
        "unavailable",
        "the router replica serving this request stopped before answering; retry after the Retry-After delay",
        retry_after_s=RETRY_AFTER_S,
    )


async def _refuse(
    scope: MutableMapping[str, Any], send: Send, status: int, code: str, message: str, retry_after_s: int | None = None
) -> None:
    """The router's error body (OpenAI-shaped on the OpenAI routes), with the id Ray's proxy gave the request."""
    request_id = dict(scope.get("headers") or []).get(b"x-request-id", b"").decode(errors="replace")[:64] or None
    if scope.get("path", "").startswith(("/v1/chat/", "/v1/models")):
        error = {"message": message, "type": code, "param": None, "code": code}
    else:
        error = {"type": code, "message": message, "field": None, "request_id": request_id}
    body = json.dumps({"error": error}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if retry_after_s is not None:
        headers.append((b"retry-after", str(retry_after_s).encode()))
    if request_id:
        headers.append((b"x-request-id", request_id.encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
