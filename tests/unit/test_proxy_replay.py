"""The Serve proxy's replay middleware (serving.deployments.proxy), over ASGI with the app it wraps faked.

Faked: Ray Serve's proxy app. When the router replica dies mid-request, the real one reads the request, gets a
RayActorError and returns without sending anything (ray.serve._private.http_util: get_http_response_status maps it to
500, send_http_response_on_exception writes no message for a 500; uvicorn then answers a bare 500). The fake does the
same for the replicas marked dead. The whole path (a real proxy, a real SIGKILL) is tests/e2e/test_replica_kill.py.
"""

from __future__ import annotations

import asyncio
import json

import pytest

from operators.switchboard_operator.raycluster import PROXY_CALLBACK
from serving.deployments import proxy
from serving.deployments.proxy import HeaderLimits, ReplicaLossRetry, replayable


class FakeProxy:
    """Answers like Ray's proxy app: replica i of `dead` reads the body and returns without a word."""

    def __init__(self, dead: int = 1, stall: bool = False, start_then_die: bool = False):
        self.dead, self.stall, self.start_then_die = dead, stall, start_then_die
        self.calls: list[bytes] = []

    async def __call__(self, scope, receive, send):
        body = b""
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        self.calls.append(body)
        if self.start_then_die:
            await send({"type": "http.response.start", "status": 200, "headers": []})
            return
        if len(self.calls) <= self.dead:
            if self.stall and len(self.calls) > 1:
                await asyncio.sleep(60)
            return
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": b'{"echo": ' + json.dumps(body.decode()).encode() + b"}"})


def _call(app, method="POST", path="/v1/tasks/summarize", chunks=(b'{"transcript": ', b'"hi"}'), disconnect=False,
          headers=((b"x-request-id", b"req-1"),)):
    messages = [{"type": "http.request", "body": c, "more_body": i < len(chunks) - 1} for i, c in enumerate(chunks)]
    sent: list[dict] = []

    async def receive():
        if messages:
            return messages.pop(0)
        if disconnect:
            return {"type": "http.disconnect"}
        await asyncio.sleep(3600)

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "method": method, "path": path, "headers": list(headers)}
    asyncio.run(asyncio.wait_for(app(scope, receive, send), 30))
    return sent


def _status(sent):
    return next(m["status"] for m in sent if m["type"] == "http.response.start")


def test_a_task_request_whose_replica_died_is_replayed_with_its_whole_body():
    inner = FakeProxy(dead=1)
    sent = _call(ReplicaLossRetry(inner))
    assert _status(sent) == 200
    assert inner.calls == [b'{"transcript": "hi"}'] * 2  # the second run read the same body, chunked once
    assert json.loads(sent[-1]["body"]) == {"echo": '{"transcript": "hi"}'}


def test_a_request_that_must_not_run_twice_gets_an_explicit_503_with_retry_after():
    inner = FakeProxy(dead=1)
    sent = _call(ReplicaLossRetry(inner), path="/v1/batches")
    assert len(inner.calls) == 1  # a batch is never created twice
    start = sent[0]
    assert start["status"] == 503 and (b"retry-after", b"2") in start["headers"]
    body = json.loads(sent[1]["body"])["error"]
    assert body["type"] == "unavailable" and "stopped before answering" in body["message"]
    assert body["request_id"] == "req-1"


def test_a_second_loss_is_a_503_not_a_third_try():
    inner = FakeProxy(dead=5)
    assert _status(_call(ReplicaLossRetry(inner))) == 503
    assert len(inner.calls) == 2


def test_a_replay_that_waits_for_a_replica_gives_up_at_its_timeout(monkeypatch):
    inner = FakeProxy(dead=2, stall=True)
    sent = _call(ReplicaLossRetry(inner, start_timeout_s=0.3))
    assert _status(sent) == 503


def test_a_response_that_has_started_is_never_replayed():
    inner = FakeProxy(start_then_die=True)
    sent = _call(ReplicaLossRetry(inner))
    assert [m.get("status") for m in sent] == [200] and len(inner.calls) == 1


def test_a_client_that_left_is_not_answered_or_replayed():
    inner = FakeProxy(dead=1)
    sent = _call(ReplicaLossRetry(inner), chunks=(), disconnect=True)
    assert sent == [] and inner.calls == []


def test_bodies_over_the_replay_limit_are_not_kept(monkeypatch):
    monkeypatch.setattr(proxy, "MAX_REPLAY_BYTES", 8)
    inner = FakeProxy(dead=1)
    assert _status(_call(ReplicaLossRetry(inner))) == 503
    assert len(inner.calls) == 1


@pytest.mark.parametrize(("method", "path", "expected"), [
    ("POST", "/v1/tasks/redact", True), ("POST", "/v1/chat/completions", True), ("GET", "/v1/batches/b1", True),
    ("DELETE", "/v1/batches/b1", True), ("POST", "/v1/batches", False), ("POST", "/v1/batches/b1/cancel", False),
])
def test_only_requests_without_side_effects_are_replayed(method, path, expected):
    assert replayable(method, path) is expected


def test_every_ray_pod_installs_the_middleware_ray_calls_back():
    """The operator names the callback without importing the data plane; Ray's proxy resolves and checks it with these
    two functions (http_util.configure_http_middlewares)."""
    from ray.serve._private.http_util import validate_http_proxy_callback_return
    from ray.serve._private.utils import call_function_from_import_path

    assert PROXY_CALLBACK == (proxy.CALLBACK_ENV, proxy.CALLBACK)
    middlewares = validate_http_proxy_callback_return(call_function_from_import_path(proxy.CALLBACK))
    assert [m.cls for m in middlewares] == [ReplicaLossRetry, HeaderLimits]


@pytest.mark.parametrize(("headers", "says"), [
    ([(b"x-h%d" % i, b"1") for i in range(101)], "101 headers; at most 100"),
    ([(b"authorization", b"Bearer " + b"x" * 8 * 1024 * 1024)], "at most 61440 are accepted"),
])
def test_too_many_or_too_large_headers_get_431_before_any_replica_sees_them(headers, says):
    inner = FakeProxy(dead=0)
    sent = _call(HeaderLimits(inner), headers=headers)
    assert _status(sent) == 431 and inner.calls == []
    assert says in json.loads(sent[1]["body"])["error"]["message"]


def test_ordinary_headers_pass():
    inner = FakeProxy(dead=0)
    assert _status(_call(HeaderLimits(inner), headers=[(b"authorization", b"Bearer sb-key"), (b"x-request-id", b"r")])) == 200
