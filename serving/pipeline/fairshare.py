"""Which queued request a task deployment serves next: interactive before batch, tenants by token-weighted fair share.

Pure functions over queue state (no clock, no asyncio; the classes are serving.vocabulary's PriorityClass values);
`serving.pipeline.scheduler` holds the state and applies them.

- Classes: `interactive` goes first. `batch` may hold at most `batch_max_share` of the deployment's window (so a
  running bulk job leaves room for live traffic), only `batch_live_share` of it while live traffic is about (queued,
  running or seen within the caller's hold time: a batch request inside a replica shares its engine with the live
  ones, so fewer of them keep live latency down), and always `batch_min_share` of it while it has work queued (so a
  steady interactive load cannot starve it).
- Tenants within a class: start-time fair queuing over tokens. Each tenant has a virtual finish tag; the head request
  of the tenant with the smallest start tag `max(now, finish[tenant])` goes next, and its tenant's tag advances by
  `cost / weight`. Backlogged tenants with weights 1 and 3 get tokens served in the ratio 1:3; a tenant that was idle
  starts at the current virtual time, so idleness earns no credit to burst with later.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

from serving.vocabulary.kinds import PriorityClass

INTERACTIVE = PriorityClass.INTERACTIVE.value
BATCH = PriorityClass.BATCH.value
CLASSES = tuple(c.value for c in PriorityClass)  # every class, interactive first


@dataclass(frozen=True)
class SharePolicy:
    batch_max_share: float = 0.75
    batch_min_share: float = 0.1
    batch_live_share: float = 0.25
    live_hold_s: float = 5.0  # how long after live traffic the gate still counts it as about (the caller's clock)

    def __post_init__(self) -> None:
        if not 0 <= self.batch_min_share <= self.batch_live_share <= self.batch_max_share <= 1:
            raise ValueError("need 0 <= batch_min_share <= batch_live_share <= batch_max_share <= 1")

    def batch_cap(self, window: int, live: bool = False) -> int:
        share = self.batch_live_share if live else self.batch_max_share
        return max(1, math.floor(window * share)) if share > 0 else 0

    def batch_floor(self, window: int) -> int:
        return min(self.batch_cap(window, live=True), math.ceil(window * self.batch_min_share))


@dataclass(frozen=True)
class Waiter:
    """One queued request: `cost` is its token estimate, `seq` its arrival order."""

    seq: int
    tenant: str
    klass: str
    weight: float
    cost: float


@dataclass(frozen=True)
class FairClock:
    """Virtual time of one class and each tenant's finish tag in it."""

    now: float = 0.0
    finish: Mapping[str, float] = field(default_factory=dict)

    def start_tag(self, tenant: str) -> float:
        return max(self.now, self.finish.get(tenant, 0.0))


def next_class(
    waiting: Sequence[Waiter], in_flight: Mapping[str, int], window: int, policy: SharePolicy, recent_live: bool = False
) -> str | None:
    """The class to serve next, or None when the window is full or nothing queued may go. `recent_live`: the caller
    saw interactive traffic within `policy.live_hold_s` (queued or running interactive work counts by itself)."""
    if sum(in_flight.values()) >= window:
        return None
    queued = {w.klass for w in waiting}
    batch_running = in_flight.get(BATCH, 0)
    if BATCH in queued and batch_running < policy.batch_floor(window):
        return BATCH
    if INTERACTIVE in queued:
        return INTERACTIVE
    live = recent_live or in_flight.get(INTERACTIVE, 0) > 0
    if BATCH in queued and batch_running < policy.batch_cap(window, live):
        return BATCH
    return None


def next_waiter(waiting: Sequence[Waiter], klass: str, clock: FairClock) -> Waiter | None:
    """The head request (first come) of the class's tenant with the smallest start tag; ties go to the earlier."""
    heads: dict[str, Waiter] = {}
    for w in waiting:
        if w.klass == klass and (w.tenant not in heads or w.seq < heads[w.tenant].seq):
            heads[w.tenant] = w
    if not heads:
        return None
    return min(heads.values(), key=lambda w: (clock.start_tag(w.tenant), w.seq))


def dispatched(clock: FairClock, waiter: Waiter) -> FairClock:
    """The clock after `waiter` starts: virtual time moves to its start tag; its tenant's tag advances."""
    start = clock.start_tag(waiter.tenant)
    return FairClock(start, {**clock.finish, waiter.tenant: start + waiter.cost / waiter.weight})


def corrected(clock: FairClock, tenant: str, weight: float, extra_cost: float) -> FairClock:
    """Charge the difference between a request's actual tokens and its estimate to its tenant's tag."""
    if tenant not in clock.finish or extra_cost == 0:
        return clock
    return replace(clock, finish={**clock.finish, tenant: clock.finish[tenant] + extra_cost / weight})


def retry_after_s(queued: int, window: int, mean_service_s: float) -> float:
    """A client's expected wait for the queue ahead of it to drain: the Retry-After of a full queue."""
    return min(60.0, max(1.0, math.ceil((queued + 1) / max(1, window) * mean_service_s)))


__all__ = [
    "BATCH",
    "CLASSES",
    "INTERACTIVE",
    "FairClock",
    "SharePolicy",
    "Waiter",
    "corrected",
    "dispatched",
    "next_class",
    "next_waiter",
    "retry_after_s",
]
