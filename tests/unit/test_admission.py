"""Per-tenant admission and deadlines: the pure bucket policy, the limiter with a controlled clock, and the router's
429 / 504 over HTTP. Faked: the model, by the deterministic FakeEngine with a set latency (the point is timing)."""

from __future__ import annotations

import shutil

import pytest
from fastapi.testclient import TestClient

from serving.engines.fake import FakeEngine
from serving.errors import RateLimited
from serving.pipeline.admission import Bucket, TenantLimiter, share_of, take
from serving.profiles import FolderProfileSource, ProfileRegistry, approximate_counter
from serving.profiles.model import Limits
from serving.router import RouterContext, create_app
from serving.settings import Settings
from tests.conftest import SAMPLES, SHOPRIGHT_KEY
from tests.fakes import RecordingBackend

AUTH = {"Authorization": f"Bearer {SHOPRIGHT_KEY}"}


def test_bucket_takes_what_it_holds_and_says_when_it_refills():
    bucket, wait = take(Bucket(1.0, 0.0), 1, rate=2.0, capacity=2.0, now=0.0)
    assert wait is None and bucket.level == 0.0
    same, wait = take(bucket, 1, rate=2.0, capacity=2.0, now=0.1)
    assert wait == pytest.approx(0.4) and same.level == pytest.approx(0.2)
    refilled, wait = take(bucket, 1, rate=2.0, capacity=2.0, now=10.0)
    assert wait is None and refilled.level == pytest.approx(1.0)  # capped at capacity, minus the one taken


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_requests_per_second_with_a_burst_of_one_second():
    clock = Clock()
    limiter = TenantLimiter(clock)
    limits = Limits(requests_per_second=2, concurrent_requests=100, tokens_per_minute=10_000)
    for _ in range(2):
        limiter.admit("t", limits)
        limiter.release("t", limits, 0)
    with pytest.raises(RateLimited, match="requestsPerSecond") as info:
        limiter.admit("t", limits)
    assert info.value.retry_after == pytest.approx(0.5)
    clock.now = 0.5
    limiter.admit("t", limits)
    limiter.admit("other", limits)  # tenants do not share buckets


def test_concurrent_requests_are_capped_until_one_ends():
    limiter = TenantLimiter(Clock())
    limits = Limits(requests_per_second=1000, concurrent_requests=2, tokens_per_minute=10_000)
    limiter.admit("t", limits)
    limiter.admit("t", limits)
    with pytest.raises(RateLimited, match="concurrentRequests"):
        limiter.admit("t", limits)
    limiter.release("t", limits, 0)
    limiter.admit("t", limits)


def test_tokens_per_minute_are_charged_after_the_fact_and_refill():
    clock = Clock()
    limiter = TenantLimiter(clock)
    limits = Limits(requests_per_second=1000, concurrent_requests=10, tokens_per_minute=600)
    limiter.admit("t", limits)
    limiter.release("t", limits, 900)  # 300 over budget
    with pytest.raises(RateLimited, match="tokensPerMinute") as info:
        limiter.admit("t", limits)
    assert info.value.retry_after == pytest.approx(30, abs=0.1)  # 300 tokens at 10 per second
    clock.now = 31
    limiter.admit("t", limits)


def test_router_replicas_each_enforce_their_share():
    """Two router replicas: each admits half the tenant's requests per second, so together they admit the total."""
    limits = Limits(requests_per_second=4, concurrent_requests=3, tokens_per_minute=10_000)
    assert share_of(limits, 2) == Limits(requests_per_second=2, concurrent_requests=2, tokens_per_minute=5_000)
    limiter = TenantLimiter(Clock())
    limiter.routers = 2
    for _ in range(2):
        limiter.admit("t", limits)
        limiter.release("t", limits, 0)
    with pytest.raises(RateLimited, match="requestsPerSecond"):
        limiter.admit("t", limits)


def _client(tmp_path, limits_yaml: str, engine):
    text = (SAMPLES / "shopright.yaml").read_text()
    start = text.index("  limits:")
    end = text.index("  priority:")
    (tmp_path / "shopright.yaml").write_text(text[:start] + limits_yaml + text[end:])
    registry = ProfileRegistry(approximate_counter)
    ctx = RouterContext(Settings(profiles_dir=tmp_path), registry, FolderProfileSource(tmp_path, registry),
                        RecordingBackend(engine=engine))
    return TestClient(create_app(ctx))


def test_over_the_rate_is_429_with_retry_after(tmp_path):
    limits = "  limits:\n    requestsPerSecond: 1\n    concurrentRequests: 5\n    tokensPerMinute: 100000\n"
    with _client(tmp_path, limits, FakeEngine()) as client:
        assert client.post("/v1/tasks/redact", json={"text": "hi"}, headers=AUTH).status_code == 200
        refused = client.post("/v1/tasks/redact", json={"text": "hi"}, headers=AUTH)
        assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1
        assert refused.json()["error"]["type"] == "rate_limited"
        metrics = client.get("/metrics").text
        assert 'switchboard_rejected_requests_total{reason="rate_limited",task="redact",tenant="shopright"} 1.0' in metrics


def test_past_the_deadline_is_504_and_a_bad_deadline_header_is_422(tmp_path):
    limits = "  limits:\n    requestsPerSecond: 100\n    concurrentRequests: 5\n    tokensPerMinute: 100000\n"
    body = {"transcript": "Customer: where is my parcel", "max_tokens": 4}
    with _client(tmp_path, limits, FakeEngine(latency_s=1.0)) as client:
        slow = client.post("/v1/tasks/summarize", json=body, headers={**AUTH, "X-Switchboard-Deadline-Ms": "100"})
        assert slow.status_code == 504 and slow.json()["error"]["type"] == "deadline_exceeded"
        bad = client.post("/v1/tasks/summarize", json=body, headers={**AUTH, "X-Switchboard-Deadline-Ms": "soon"})
        assert bad.status_code == 422 and "x-switchboard-deadline-ms" in bad.json()["error"]["message"]
        ok = client.post("/v1/tasks/summarize", json=body, headers={**AUTH, "X-Switchboard-Deadline-Ms": "5000"})
        assert ok.status_code == 200
