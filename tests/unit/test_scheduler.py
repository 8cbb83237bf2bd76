"""The router's queue in front of a deployment (asyncio, no Ray): window, bound, priority, fairness, give-ups."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

from serving.errors import Overloaded
from serving.pipeline.fairshare import BATCH, INTERACTIVE, SharePolicy
from serving.pipeline.scheduler import DispatchGate, GateConfig


def gate(per_replica: int = 2, max_queued: int = 10, **policy) -> DispatchGate:
    return DispatchGate(GateConfig("generate", per_replica, max_queued), SharePolicy(**policy))


async def test_window_bounds_what_reaches_the_deployment():
    g = gate(per_replica=2)
    first = [await g.acquire("a", INTERACTIVE, 1, 10) for _ in range(2)]
    third = asyncio.create_task(g.acquire("a", INTERACTIVE, 1, 10))
    await asyncio.sleep(0)
    assert not third.done() and g.queued() == 1 and g.in_flight() == 2
    g.release(first[0])
    ticket = await asyncio.wait_for(third, 1)
    assert g.in_flight() == 2 and g.queued() == 0
    for t in (first[1], ticket):
        g.release(t)
    assert g.in_flight() == 0


async def test_more_replicas_widen_the_window_and_release_waiters():
    g = gate(per_replica=1)
    await g.acquire("a", INTERACTIVE, 1, 10)
    waiting = [asyncio.create_task(g.acquire("a", INTERACTIVE, 1, 10)) for _ in range(2)]
    await asyncio.sleep(0)
    g.set_replicas(3)
    await asyncio.wait_for(asyncio.gather(*waiting), 1)
    assert g.window == 3 and g.in_flight() == 3


async def test_router_replicas_split_the_deployment_slots():
    """Three router replicas in front of 2 replicas x 4 slots: each lets 3 through (8 / 3, rounded up)."""
    g = gate(per_replica=4)
    g.set_replicas(2, routers=3)
    assert g.window == 3
    g.set_replicas(2, routers=1)
    assert g.window == 8


async def test_scaled_to_zero_still_lets_one_replicas_worth_through():
    g = gate(per_replica=4)
    g.set_replicas(0)
    assert g.window == 4


async def test_full_queue_is_refused_at_once_with_retry_after():
    g = gate(per_replica=1, max_queued=2)
    await g.acquire("a", INTERACTIVE, 1, 10)
    queued = [asyncio.create_task(g.acquire("a", INTERACTIVE, 1, 10)) for _ in range(2)]
    await asyncio.sleep(0)
    with pytest.raises(Overloaded) as refused:
        await g.acquire("b", INTERACTIVE, 1, 10)
    assert refused.value.retry_after >= 1 and "max_queued_requests" in refused.value.message
    for task in queued:
        task.cancel()


async def test_interactive_overtakes_queued_batch_work():
    g = gate(per_replica=2, batch_max_share=1.0, batch_min_share=0.0)
    running = [await g.acquire("bulk", BATCH, 1, 10) for _ in range(2)]
    batch = asyncio.create_task(g.acquire("bulk", BATCH, 1, 10))
    await asyncio.sleep(0)
    live = asyncio.create_task(g.acquire("live", INTERACTIVE, 1, 10))
    await asyncio.sleep(0)
    g.release(running[0])
    await asyncio.sleep(0)
    assert live.done() and not batch.done()
    batch.cancel()


async def test_a_caller_that_gives_up_leaves_the_queue():
    """A deadline (wait_for) cancels the wait: the request leaves the queue and holds no slot."""
    g = gate(per_replica=1)
    held = await g.acquire("a", INTERACTIVE, 1, 10)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(g.acquire("a", INTERACTIVE, 1, 10), 0.05)
    assert g.queued() == 0
    g.release(held)
    assert g.in_flight() == 0
    assert (await asyncio.wait_for(g.acquire("a", INTERACTIVE, 1, 10), 1)) is not None


async def test_slot_granted_to_a_cancelled_caller_is_handed_back():
    g = gate(per_replica=1)
    held = await g.acquire("a", INTERACTIVE, 1, 10)
    waiter = asyncio.create_task(g.acquire("b", INTERACTIVE, 1, 10))
    await asyncio.sleep(0)
    g.release(held)  # grants the slot to `waiter`...
    waiter.cancel()  # ...which is cancelled before it resumes
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert g.in_flight() == 0 and g.queued() == 0


async def test_contended_deployment_serves_tenants_by_weight():
    """Two tenants keep 8 requests each queued against a 2-slot deployment; weights 1 and 3 -> about 1:3 served."""
    g = gate(per_replica=2, max_queued=100)
    served: Counter = Counter()
    stop = asyncio.Event()

    async def client(tenant: str, weight: float) -> None:
        while not stop.is_set():
            async with g.slot(tenant, INTERACTIVE, weight, 50):
                await asyncio.sleep(0.001)
                served[tenant] += 1

    clients = [asyncio.create_task(client("light", 1)) for _ in range(8)]
    clients += [asyncio.create_task(client("heavy", 3)) for _ in range(8)]
    while sum(served.values()) < 400:
        await asyncio.sleep(0.01)
    stop.set()
    await asyncio.gather(*clients)
    assert served["heavy"] / served["light"] == pytest.approx(3, rel=0.15)


async def test_batch_widens_again_once_live_traffic_has_been_gone_for_the_hold_time():
    """One interactive request comes and goes; batch stays at its live share until the hold passes, then takes its
    full share with no other event to wake the queue (the gate looks again by itself)."""
    g = gate(per_replica=8, batch_max_share=0.75, batch_min_share=0.1, batch_live_share=0.25, live_hold_s=0.2)
    live = await g.acquire("a", INTERACTIVE, 1, 10)
    g.release(live)
    batch = [asyncio.create_task(g.acquire("b", BATCH, 1, 10)) for _ in range(8)]
    await asyncio.sleep(0.05)
    assert g.in_flight(BATCH) == 2 and g.queued(BATCH) == 6
    await asyncio.sleep(0.3)
    assert g.in_flight(BATCH) == 6 and g.queued(BATCH) == 2
    for task in batch:
        task.cancel()
    await asyncio.gather(*batch, return_exceptions=True)
