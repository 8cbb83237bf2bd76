"""Prometheus metrics of the router: requests, errors by status, latency, in-flight work, tokens and rejections.

Labels are ids from closed sets (tenant ids from the loaded profiles, task names, status codes), never text.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
CONTENT_TYPE = CONTENT_TYPE_LATEST


class RouterMetrics:
    """One registry per router process (no global state), rendered at `GET /metrics`."""

    def __init__(self) -> None:
        self._children: dict[tuple[Any, tuple[str, ...]], Any] = {}
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "switchboard_requests",
            "Task requests by tenant, task and HTTP status.",
            ["tenant", "task", "status"],
            registry=r,
        )
        self.latency = Histogram(
            "switchboard_request_duration_seconds",
            "Router latency of task requests.",
            ["task"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.inflight = Gauge(
            "switchboard_inflight_requests", "Task requests being served now, by task.", ["task"], registry=r
        )
        self.tokens = Counter(
            "switchboard_tokens",
            "Model tokens by tenant, task and direction (in/out/instruction).",
            ["tenant", "task", "direction"],
            registry=r,
        )
        self.rejected = Counter(
            "switchboard_rejected_requests",
            "Requests refused before reaching a model, by reason.",
            ["tenant", "task", "reason"],
            registry=r,
        )
        self.profiles = Gauge("switchboard_profiles_loaded", "Tenant profiles serving now.", registry=r)
        self.admitted = Counter(
            "switchboard_admitted_requests",
            "Requests let through to a deployment, by priority class.",
            ["tenant", "task", "priority"],
            registry=r,
        )
        self.queued = Gauge(
            "switchboard_queued_requests",
            "Requests waiting in the router for a deployment, by class.",
            ["deployment", "priority"],
            registry=r,
        )
        self.dispatched = Gauge(
            "switchboard_dispatched_requests",
            "Requests the router has at a deployment now.",
            ["deployment", "priority"],
            registry=r,
        )
        self.window = Gauge(
            "switchboard_deployment_window",
            "Requests a deployment takes at once (replicas x max ongoing).",
            ["deployment"],
            registry=r,
        )
        self.replicas = Gauge("switchboard_replicas", "Running replicas per deployment.", ["deployment"], registry=r)
        self.batch_lines = Counter(
            "switchboard_batch_lines",
            "Bulk batch lines by outcome (completed/failed/retried).",
            ["tenant", "task", "outcome"],
            registry=r,
        )
        self.batch_pending = Gauge(
            "switchboard_batch_pending_lines", "Bulk batch lines not finished yet, by tenant.", ["tenant"], registry=r
        )

    def child(self, metric: Any, *labels: str) -> Any:
        """`metric.labels(*labels)`, cached: prometheus_client validates and locks on every `labels()` call (about
        4 us here), eight times a request. Label values come from closed sets, so the cache is as small as the metric."""
        key = (metric, labels)
        found = self._children.get(key)
        if found is None:
            found = self._children[key] = metric.labels(*labels)
        return found

    def count_batch_line(self, tenant: str, task: str, outcome: str) -> None:
        self.child(self.batch_lines, tenant, task, outcome).inc()

    def observe(self, tenant: str, task: str, status: int, seconds: float) -> None:
        self.child(self.requests, tenant, task, str(status)).inc()
        self.child(self.latency, task).observe(seconds)
        if status in (401, 403, 413, 422, 429, 503, 504):
            self.child(self.rejected, tenant, task, _REASONS.get(status, str(status))).inc()

    def count_tokens(self, tenant: str, task: str, usage: dict) -> None:
        for direction, key in (("in", "tokens_in"), ("out", "tokens_out"), ("instruction", "instruction_tokens")):
            if usage.get(key):
                self.child(self.tokens, tenant, task, direction).inc(usage[key])

    def render(self) -> bytes:
        return generate_latest(self.registry)


_REASONS = {
    401: "unauthenticated",
    403: "forbidden",
    413: "too_large",
    422: "invalid",
    429: "rate_limited",
    503: "overloaded",
    504: "deadline",
}
