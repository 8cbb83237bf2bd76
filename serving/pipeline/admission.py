"""Per-tenant admission at the router, before any work is queued: requests per second, concurrent requests and
tokens per minute from the tenant's profile. Over a limit: RateLimited (429) with the seconds until it would pass.

The policy is pure (`take`, `refill`, `share_of`); `TenantLimiter` holds the state of one router process. With N
router replicas (Ray Serve spreads requests over them evenly), each enforces 1/N of every limit, so the tenant's total
is what its profile says; no shared store is needed.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from serving.errors import RateLimited
from serving.profiles.model import Limits


@dataclass(frozen=True)
class Bucket:
    """A token bucket: `level` units available at time `at`; refills at `rate` per second up to `capacity`."""

    level: float
    at: float


def refill(bucket: Bucket, rate: float, capacity: float, now: float) -> Bucket:
    return Bucket(min(capacity, bucket.level + max(0.0, now - bucket.at) * rate), now)


def take(bucket: Bucket, cost: float, rate: float, capacity: float, now: float) -> tuple[Bucket, float | None]:
    """Take `cost` units if the bucket holds them; else the bucket unchanged and the seconds until it would."""
    current = refill(bucket, rate, capacity, now)
    if current.level >= cost:
        return replace(current, level=current.level - cost), None
    return current, (cost - current.level) / rate


@dataclass
class _TenantState:
    requests: Bucket
    tokens: Bucket
    in_flight: int = 0


def share_of(limits: Limits, routers: int) -> Limits:
    """One router replica's part of a tenant's limits (at least one request at a time)."""
    if routers <= 1:
        return limits
    return limits.model_copy(
        update={
            "requests_per_second": limits.requests_per_second / routers,
            "concurrent_requests": max(1, math.ceil(limits.concurrent_requests / routers)),
            "tokens_per_minute": max(1, limits.tokens_per_minute // routers),
        }
    )


class TenantLimiter:
    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self._clock = clock
        self._lock = threading.Lock()
        self._tenants: dict[str, _TenantState] = {}
        self.routers = 1  # router replicas sharing the limits; kept current by the router's replica watcher

    def admit(self, tenant: str, limits: Limits, units: int = 1) -> None:
        """Count one request in, or raise RateLimited saying which limit and when to retry. `units` is what the
        request costs against requestsPerSecond (a many-utterance classify-intent counts its texts), capped at one
        second's burst so that a request the limit allows at all can always get in."""
        limits = share_of(limits, self.routers)
        now = self._clock()
        with self._lock:
            state = self._state(tenant, limits, now)
            if state.in_flight >= limits.concurrent_requests:
                raise RateLimited(
                    f"tenant {tenant!r} has {state.in_flight} requests in flight, its limit (concurrentRequests)",
                    retry_after=1,
                )
            tokens = refill(state.tokens, limits.tokens_per_minute / 60, limits.tokens_per_minute, now)
            if tokens.level <= 0:
                refilled_in = -tokens.level / (limits.tokens_per_minute / 60) + 1e-3
                raise RateLimited(f"tenant {tenant!r} is over its tokensPerMinute", retry_after=refilled_in)
            requests, wait = take(
                state.requests, min(float(units), _burst(limits)), limits.requests_per_second, _burst(limits), now
            )
            if wait is not None:
                raise RateLimited(f"tenant {tenant!r} is over its requestsPerSecond", retry_after=wait)
            state.requests, state.tokens, state.in_flight = requests, tokens, state.in_flight + 1

    def release(self, tenant: str, limits: Limits, tokens_used: int) -> None:
        """The request ended; charge the tokens it used (the budget may go negative: later requests wait)."""
        limits = share_of(limits, self.routers)
        now = self._clock()
        with self._lock:
            state = self._state(tenant, limits, now)
            current = refill(state.tokens, limits.tokens_per_minute / 60, limits.tokens_per_minute, now)
            state.tokens = replace(current, level=current.level - tokens_used)
            state.in_flight = max(0, state.in_flight - 1)

    def _state(self, tenant: str, limits: Limits, now: float) -> _TenantState:
        state = self._tenants.get(tenant)
        if state is None:
            state = _TenantState(Bucket(_burst(limits), now), Bucket(limits.tokens_per_minute, now))
            self._tenants[tenant] = state
        return state


def _burst(limits: Limits) -> float:
    """One second's worth of requests may arrive at once (at least one)."""
    return max(1.0, math.ceil(limits.requests_per_second))
