"""Ray Serve HTTP proxy middleware: a request whose router replica died before answering is sent once more, or answered.

When a router replica dies (OOM kill, node loss) with requests in flight, Ray Serve's proxy sends those requests'
clients a bare `500 Internal Server Error` (http_util.get_http_response_status maps RayActorError to 500 and
send_http_response_on_exception writes no body for it). A task request has no side effects, so this middleware,
installed in the proxy through Ray's RAY_SERVE_HTTP_PROXY_CALLBACK_IMPORT_PATH hook, replays it once: the proxy's
request router has dropped the dead replica by then and picks a live one. Requests that must not run twice (batch
creation) and a second loss get an explicit `503` with Retry-After and a JSON error body.

The body is recorded as the replica reads it, never read ahead (a stalled body is still the router's to time out),
and only up to MAX_REPLAY_BYTES; a response that has started is never replayed.
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

    return [Middleware(ReplicaLossRetry)]


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
        if replayable(scope.get("method", ""), scope.get("path", "")) and attempt.body.complete_or_unread:
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

    @property
    def complete_or_unread(self) -> bool:
        return not self.overflow

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
    """The router's error body (OpenAI-shaped on the OpenAI routes), with the id Ray's proxy gave the request."""
    message = "the router replica serving this request stopped before answering; retry after the Retry-After delay"
    request_id = dict(scope.get("headers") or []).get(b"x-request-id", b"").decode() or None
    if scope.get("path", "").startswith(("/v1/chat/", "/v1/models")):
        error = {"message": message, "type": "unavailable", "param": None, "code": "unavailable"}
    else:
        error = {"type": "unavailable", "message": message, "field": None, "request_id": request_id}
    body = json.dumps({"error": error}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
               (b"retry-after", str(RETRY_AFTER_S).encode())]
    if request_id:
        headers.append((b"x-request-id", request_id.encode()))
    await send({"type": "http.response.start", "status": 503, "headers": headers})
    await send({"type": "http.response.body", "body": body})
