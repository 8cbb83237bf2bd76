"""Scheduling policy (pure): interactive before batch, batch neither hogging nor starved, tenants by weighted tokens."""

from __future__ import annotations

from collections import Counter

import pytest

from serving.pipeline.fairshare import (
    BATCH,
    INTERACTIVE,
    FairClock,
    SharePolicy,
    Waiter,
    corrected,
    dispatched,
    next_class,
    next_waiter,
    retry_after_s,
)


def waiters(tenant: str, klass: str, n: int, start: int = 0, weight: float = 1.0, cost: float = 100) -> list[Waiter]:
    return [Waiter(start + i, tenant, klass, weight, cost) for i in range(n)]


def serve(waiting: list[Waiter], n: int, klass: str = INTERACTIVE) -> list[Waiter]:
    """Dispatch `n` requests one after another (a backlog: each finishes before the next decision)."""
    clock, order, waiting = FairClock(), [], list(waiting)
    for _ in range(n):
        w = next_waiter(waiting, klass, clock)
        waiting.remove(w)
        clock = dispatched(clock, w)
        order.append(w)
    return order


def test_weights_one_to_three_share_tokens_one_to_three():
    backlog = waiters("a", INTERACTIVE, 200, weight=1) + waiters("b", INTERACTIVE, 200, start=1000, weight=3)
    served = Counter(w.tenant for w in serve(backlog, 200))
    assert served["b"] / served["a"] == pytest.approx(3, rel=0.05)


def test_share_counts_tokens_not_requests():
    """Equal weights, one tenant's requests cost 4x the tokens: it gets a quarter as many requests through."""
    backlog = waiters("big", INTERACTIVE, 100, cost=400) + waiters("small", INTERACTIVE, 400, start=1000, cost=100)
    served = Counter(w.tenant for w in serve(backlog, 250))
    assert served["small"] / served["big"] == pytest.approx(4, rel=0.1)


def test_first_come_first_served_within_a_tenant():
    backlog = waiters("a", INTERACTIVE, 5) + waiters("b", INTERACTIVE, 5, start=100)
    order = serve(backlog, 10)
    assert [w.seq for w in order if w.tenant == "a"] == [0, 1, 2, 3, 4]


def test_idle_tenant_earns_no_credit():
    """A tenant that was idle while another ran alone starts at the current virtual time: it does not get a burst."""
    clock = FairClock()
    for w in waiters("busy", INTERACTIVE, 50):
        clock = dispatched(clock, w)
    waiting = waiters("busy", INTERACTIVE, 10, start=50) + waiters("late", INTERACTIVE, 10, start=100)
    order, c = [], clock
    for _ in range(10):
        w = next_waiter(waiting, INTERACTIVE, c)
        waiting.remove(w)
        c = dispatched(c, w)
        order.append(w.tenant)
    assert Counter(order) == {"busy": 5, "late": 5}


def test_actual_tokens_correct_the_estimate():
    clock = dispatched(FairClock(), Waiter(0, "a", INTERACTIVE, 2.0, 100))
    assert clock.finish["a"] == 50
    assert corrected(clock, "a", 2.0, 300).finish["a"] == 200


def test_interactive_goes_first():
    waiting = waiters("a", BATCH, 3) + waiters("b", INTERACTIVE, 1, start=10)
    assert next_class(waiting, {INTERACTIVE: 0, BATCH: 2}, window=10, policy=SharePolicy()) == INTERACTIVE


def test_batch_cannot_take_the_whole_window():
    """With 8 slots and a 0.75 cap, batch stops at 6 in flight: two slots stay free for live traffic."""
    waiting = waiters("a", BATCH, 10)
    policy = SharePolicy(batch_max_share=0.75, batch_min_share=0.1)
    assert next_class(waiting, {INTERACTIVE: 0, BATCH: 5}, 8, policy) == BATCH
    assert next_class(waiting, {INTERACTIVE: 0, BATCH: 6}, 8, policy) is None


def test_batch_holds_less_of_the_window_while_live_traffic_is_about():
    """With 8 slots: 6 for batch when no one else is about, 2 while interactive work runs or was just seen."""
    waiting = waiters("a", BATCH, 10)
    policy = SharePolicy(batch_max_share=0.75, batch_min_share=0.1, batch_live_share=0.25)
    assert next_class(waiting, {INTERACTIVE: 0, BATCH: 2}, 8, policy) == BATCH
    assert next_class(waiting, {INTERACTIVE: 1, BATCH: 2}, 8, policy) is None
    assert next_class(waiting, {INTERACTIVE: 0, BATCH: 2}, 8, policy, recent_live=True) is None
    assert next_class(waiting, {INTERACTIVE: 0, BATCH: 0}, 8, policy, recent_live=True) == BATCH  # its floor


def test_batch_is_not_starved_by_steady_interactive_load():
    """Interactive always waiting, yet batch keeps its floor of the window (10% of 20 = 2 slots)."""
    waiting = waiters("a", BATCH, 10) + waiters("b", INTERACTIVE, 50, start=100)
    policy = SharePolicy(batch_max_share=0.75, batch_min_share=0.1)
    in_flight = {INTERACTIVE: 0, BATCH: 0}
    for _ in range(20):
        klass = next_class(waiting, in_flight, 20, policy)
        w = next_waiter(waiting, klass, FairClock())
        waiting.remove(w)
        in_flight[klass] += 1
    assert in_flight == {INTERACTIVE: 18, BATCH: 2}


def test_full_window_admits_nothing():
    assert next_class(waiters("a", INTERACTIVE, 1), {INTERACTIVE: 4, BATCH: 0}, 4, SharePolicy()) is None


def test_policy_shares_must_be_ordered():
    with pytest.raises(ValueError):
        SharePolicy(batch_max_share=0.2, batch_min_share=0.5)
    with pytest.raises(ValueError):
        SharePolicy(batch_max_share=0.5, batch_live_share=0.6)


def test_retry_after_grows_with_the_queue_and_is_bounded():
    assert retry_after_s(0, 8, 0.5) == 1
    assert retry_after_s(63, 8, 2.0) == 16
    assert retry_after_s(10_000, 1, 5.0) == 60
