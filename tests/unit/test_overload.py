"""What a client sees when a deployment is full: the router's queue over HTTP (503 + Retry-After when the queue is
full, 504 when the deadline passes while queued, 403/422 for a priority class the profile does not allow).

Faked: the task deployments, by RecordingBackend with the deterministic FakeEngine and a set latency (the point is
timing, not text); the queue is the real one the Ray ingress builds, sized here to one slot and one waiter.
"""

from __future__ import annotations

import asyncio

import httpx
import pytest

from serving.engines.fake import FakeEngine
from serving.profiles import FolderProfileSource, ProfileRegistry, approximate_counter
from serving.router import RouterContext, build_gates, create_app
from serving.settings import SchedulingSettings, Settings
from tests.conftest import SAMPLES, SHOPRIGHT_KEY
from tests.fakes import RecordingBackend

AUTH = {"Authorization": f"Bearer {SHOPRIGHT_KEY}"}
BODY = {"transcript": "Customer: where is my parcel", "max_tokens": 4}
GENERATE = {"deployment": "generate", "per_replica": 1, "max_queued": 1}


def _app(tmp_path, priority_yaml: str | None = None, latency_s: float = 0.4):
    text = (SAMPLES / "shopright.yaml").read_text()
    if priority_yaml:
        start = text.index("  priority:")
        text = text[:start] + priority_yaml
    (tmp_path / "shopright.yaml").write_text(text)
    registry = ProfileRegistry(approximate_counter)
    source = FolderProfileSource(tmp_path, registry)
    source.sync()
    gates = build_gates({t: GENERATE for t in ("summarize", "score-quality", "reply")}, SchedulingSettings())
    ctx = RouterContext(Settings(profiles_dir=tmp_path), registry, source,
                        RecordingBackend(engine=FakeEngine(latency_s=latency_s)), gates=gates)
    return create_app(ctx), ctx


def _client(app) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://router")


async def test_full_queue_is_503_with_retry_after_and_every_request_is_answered(tmp_path):
    app, _ = _app(tmp_path)
    async with _client(app) as client:
        responses = await asyncio.gather(*(client.post("/v1/tasks/summarize", json=BODY, headers=AUTH)
                                           for _ in range(3)))
        codes = sorted(r.status_code for r in responses)
        assert codes == [200, 200, 503]  # one running, one queued, one over max_queued_requests
        refused = next(r for r in responses if r.status_code == 503)
        assert int(refused.headers["Retry-After"]) >= 1
        assert "max_queued_requests" in refused.json()["error"]["message"]
        metrics = (await client.get("/metrics")).text
        assert 'switchboard_admitted_requests_total{priority="interactive",task="summarize",tenant="shopright"} 2.0' in metrics
        assert 'switchboard_queued_requests{deployment="generate",priority="interactive"} 0.0' in metrics


async def test_deadline_passing_in_the_queue_is_504_and_frees_the_place(tmp_path):
    app, ctx = _app(tmp_path, latency_s=0.5)
    async with _client(app) as client:
        first = asyncio.create_task(client.post("/v1/tasks/summarize", json=BODY, headers=AUTH))
        await asyncio.sleep(0.1)
        late = await client.post("/v1/tasks/summarize", json=BODY,
                                 headers={**AUTH, "X-Switchboard-Deadline-Ms": "100"})
        assert late.status_code == 504 and late.json()["error"]["type"] == "deadline_exceeded"
        assert (await first).status_code == 200
    gate = ctx.gates.for_task("summarize")
    assert gate.queued() == 0 and gate.in_flight() == 0


async def test_priority_class_must_be_one_the_profile_allows(tmp_path):
    only_interactive = "  priority:\n    defaultClass: interactive\n    allowedClasses: [interactive]\n    weight: 1\n"
    app, _ = _app(tmp_path, only_interactive, latency_s=0)
    async with _client(app) as client:
        bulk = await client.post("/v1/tasks/summarize", json=BODY, headers={**AUTH, "X-Switchboard-Priority": "batch"})
        assert bulk.status_code == 403 and "allowed: ['interactive']" in bulk.json()["error"]["message"]
        bogus = await client.post("/v1/tasks/summarize", json=BODY, headers={**AUTH, "X-Switchboard-Priority": "urgent"})
        assert bogus.status_code == 422 and "x-switchboard-priority" in bogus.json()["error"]["message"]
        ok = await client.post("/v1/tasks/summarize", json=BODY,
                               headers={**AUTH, "X-Switchboard-Priority": "Interactive"})
        assert ok.status_code == 200


async def test_streamed_reply_waits_for_a_slot_like_any_request(tmp_path):
    app, ctx = _app(tmp_path, latency_s=0.3)
    body = {"transcript": "Customer: hello there", "max_tokens": 4, "stream": True}
    async with _client(app) as client:
        responses = await asyncio.gather(*(client.post("/v1/tasks/reply", json=body, headers=AUTH) for _ in range(3)))
    assert sorted(r.status_code for r in responses) == [200, 200, 503]
    assert all("data:" in r.text for r in responses if r.status_code == 200)
    gate = ctx.gates.for_task("reply")
    assert gate.in_flight() == 0
