"""The router's queue in front of each task deployment: a bounded, prioritised, fair-share gate (see fairshare.py).

A gate lets at most `window` requests through to its deployment at once: the deployment's running replicas times
its `max_ongoing_requests` (at least one replica's worth, so that a deployment scaled to zero still receives the
requests that wake it). Ray Serve's autoscaler sees those replicas saturated and adds replicas; the window grows as
they start. Requests over the window wait here, ordered by `fairshare`; over `max_queued` of them the request is
refused at once with 503 and a Retry-After. A waiter whose deadline passes leaves the queue (504 upstream).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import math
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from serving.errors import Overloaded
from serving.pipeline import fairshare
from serving.pipeline.fairshare import FairClock, SharePolicy, Waiter
from serving.settings import SchedulingSettings


@dataclass(frozen=True)
class GateConfig:
    deployment: str
    per_replica: int
    max_queued: int


class Ticket:
    """A granted slot; `charge(tokens)` reports what the request actually cost for the tenant's fair share."""

    def __init__(self, gate: "DispatchGate", waiter: Waiter):
        self._gate, self.waiter, self.started = gate, waiter, time.monotonic()

    def charge(self, tokens: float) -> None:
        self._gate.correct(self.waiter, tokens - self.waiter.cost)
        self.waiter = Waiter(self.waiter.seq, self.waiter.tenant, self.waiter.klass, self.waiter.weight, tokens)


class DispatchGate:
    def __init__(self, config: GateConfig, policy: SharePolicy, clock: Callable[[], float] = time.monotonic):
        self.config, self.policy, self._clock = config, policy, clock
        self.replicas = 1
        self.routers = 1
        self._waiting: list[Waiter] = []
        self._futures: dict[int, asyncio.Future] = {}
        self._in_flight = dict.fromkeys(fairshare.CLASSES, 0)
        self._clocks = {k: FairClock() for k in fairshare.CLASSES}
        self._seq = itertools.count()
        self._mean_service_s = 1.0
        self._live_at = -math.inf  # when interactive work last arrived or finished here
        self._timer: asyncio.TimerHandle | None = None

    @property
    def window(self) -> int:
        """This router's share of the deployment's slots (the routers split them evenly; at least one)."""
        return max(1, math.ceil(max(1, self.replicas) * self.config.per_replica / max(1, self.routers)))

    def queued(self, klass: str | None = None) -> int:
        return sum(1 for w in self._waiting if klass in (None, w.klass))

    def in_flight(self, klass: str | None = None) -> int:
        return self._in_flight[klass] if klass else sum(self._in_flight.values())

    def set_replicas(self, running: int, routers: int = 1) -> None:
        self.replicas, self.routers = running, routers
        self._grant()

    @contextlib.asynccontextmanager
    async def slot(self, tenant: str, klass: str, weight: float, cost: float) -> AsyncIterator[Ticket]:
        ticket = await self.acquire(tenant, klass, weight, cost)
        try:
            yield ticket
        finally:
            self.release(ticket)

    async def acquire(self, tenant: str, klass: str, weight: float, cost: float) -> Ticket:
        if len(self._waiting) >= self.config.max_queued:
            wait = fairshare.retry_after_s(len(self._waiting), self.window, self._mean_service_s)
            raise Overloaded(
                f"the {self.config.deployment!r} deployment is at capacity with {len(self._waiting)} "
                f"requests queued (max_queued_requests); retry later",
                retry_after=wait,
            )
        waiter = Waiter(next(self._seq), tenant, klass, weight, max(1.0, cost))
        if klass == fairshare.INTERACTIVE:
            self._live_at = self._clock()
        future = asyncio.get_running_loop().create_future()
        self._waiting.append(waiter)
        self._futures[waiter.seq] = future
        self._grant()
        try:
            await future
        except asyncio.CancelledError:
            self._abandon(waiter, future)
            raise
        return Ticket(self, waiter)

    def release(self, ticket: Ticket) -> None:
        self._in_flight[ticket.waiter.klass] -= 1
        if ticket.waiter.klass == fairshare.INTERACTIVE:
            self._live_at = self._clock()
        elapsed = self._clock() - ticket.started
        self._mean_service_s = 0.9 * self._mean_service_s + 0.1 * elapsed
        self._grant()

    def correct(self, waiter: Waiter, extra_cost: float) -> None:
        clocks = self._clocks
        clocks[waiter.klass] = fairshare.corrected(clocks[waiter.klass], waiter.tenant, waiter.weight, extra_cost)

    def _rewake(self) -> None:
        self._timer = None
        self._grant()

    def _abandon(self, waiter: Waiter, future: asyncio.Future) -> None:
        """The caller gave up (deadline, disconnect): leave the queue, or hand back a slot granted meanwhile."""
        if waiter.seq in self._futures:
            del self._futures[waiter.seq]
            self._waiting.remove(waiter)
        elif future.done() and not future.cancelled():
            self._in_flight[waiter.klass] -= 1
            self._grant()

    def _grant(self) -> None:
        since_live = self._clock() - self._live_at
        live = since_live < self.policy.live_hold_s
        if live and self._timer is None and any(w.klass == fairshare.BATCH for w in self._waiting):
            # Nothing else may wake the queue when live traffic stops: look again once the hold has passed.
            self._timer = asyncio.get_running_loop().call_later(self.policy.live_hold_s - since_live, self._rewake)
        while (
            klass := fairshare.next_class(self._waiting, self._in_flight, self.window, self.policy, live)
        ) is not None:
            waiter = fairshare.next_waiter(self._waiting, klass, self._clocks[klass])
            if waiter is None:  # next_class names a class with waiters: not reached
                break
            self._waiting.remove(waiter)
            future = self._futures.pop(waiter.seq)
            if future.done():  # cancelled, its caller not yet resumed: nothing to grant
                continue
            self._clocks[klass] = fairshare.dispatched(self._clocks[klass], waiter)
            self._in_flight[klass] += 1
            future.set_result(None)


class Gates:
    """One gate per task deployment; tasks that share a deployment (summarize, reply, ...) share its gate."""

    def __init__(self, configs: dict[str, GateConfig], policy: SharePolicy):
        by_deployment = {c.deployment: c for c in configs.values()}
        self._gates = {name: DispatchGate(c, policy) for name, c in by_deployment.items()}
        self._by_task = {task: self._gates[c.deployment] for task, c in configs.items()}

    def for_task(self, task: str) -> DispatchGate | None:
        return self._by_task.get(task)

    def deployments(self) -> dict[str, DispatchGate]:
        return dict(self._gates)

    def update_replicas(self, running: dict[str, int], router: str = "router") -> None:
        """Running replicas per deployment, and of the router itself (`router`): each router replica takes its share."""
        for name, gate in self._gates.items():
            if name in running:
                gate.set_replicas(running[name], running.get(router, 1))


def build_gates(configs: dict[str, dict], settings: SchedulingSettings) -> Gates:
    """Gates from `{task: {deployment, per_replica, max_queued}}` (what serving.app passes the router)."""
    policy = SharePolicy(
        settings.batch_max_share, settings.batch_min_share, settings.batch_live_share, settings.live_hold_s
    )
    return Gates({task: GateConfig(**c) for task, c in configs.items()}, policy)


__all__ = ["DispatchGate", "GateConfig", "Gates", "Ticket", "build_gates"]
