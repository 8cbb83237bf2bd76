"""Batches on disk and their worker: a restart mid-batch loses no line and runs no finished line twice, results keep
input order, refusals are retried, errors are recorded per line, one worker per folder, cancellation.

Faked: the task path (`execute`), by small async functions that answer, block or raise on cue, because what is under
test is the scheduling and the state on disk; the router's real task path runs in test_batch_routes.py. Real: the
store on a temporary folder (files, fsync, rename, the folder lock), asyncio, the parser.
"""

from __future__ import annotations

import asyncio
import json

import pytest

from serving.batches import BatchRunner, BatchStatus, BatchStore
from serving.errors import Forbidden, NotFound, Overloaded, RateLimited

TENANT = "shopright"


def upload(*texts: str) -> bytes:
    return b"".join(json.dumps({"custom_id": f"c{i}", "task": "redact", "body": {"text": t}}).encode() + b"\n"
                    for i, t in enumerate(texts, start=1))


async def answer(tenant_id: str, task: str, body: dict) -> dict:
    return {"text": body["text"].upper(), "tenant": tenant_id}


async def until(check, timeout: float = 20.0) -> None:
    async with asyncio.timeout(timeout):
        while not await check():
            await asyncio.sleep(0.01)


async def finished(runner: BatchRunner, batch_id: str):
    async def check():
        return (await runner.status(batch_id, TENANT)).meta.status.finished
    await until(check)
    return await runner.results(batch_id, TENANT)


@pytest.fixture
def store(tmp_path):
    return BatchStore(tmp_path / "batches")


def runner_for(store, execute=answer, **options) -> BatchRunner:
    return BatchRunner(store, execute, poll_s=0.05, backoff_s=0.001, **options)


async def test_results_come_back_in_input_order_with_custom_ids(store):
    async def uneven(tenant_id, task, body):  # later lines finish first
        await asyncio.sleep(0.05 / len(body["text"]))
        return await answer(tenant_id, task, body)

    runner = runner_for(store, uneven, concurrency=4)
    await runner.start()
    try:
        view = await runner.submit(TENANT, upload("a", "bb", "ccc", "dddd", "eeeee"))
        done, records = await finished(runner, view.meta.id)
    finally:
        await runner.stop()
    assert done.meta.status is BatchStatus.COMPLETED and (done.progress.completed, done.progress.failed) == (5, 0)
    assert sorted(p.name for p in (store.root / view.meta.id).iterdir()) == ["meta.json", "results.jsonl"]  # no upload
    assert [(r["line"], r["custom_id"], r["response"]["text"]) for r in records] == [
        (1, "c1", "A"), (2, "c2", "BB"), (3, "c3", "CCC"), (4, "c4", "DDDD"), (5, "c5", "EEEEE")]


async def test_a_restart_mid_batch_loses_no_line_and_repeats_no_finished_line(store):
    gate = asyncio.Event()

    async def blocks_some(tenant_id, task, body):
        if body["text"].startswith("slow"):
            await gate.wait()  # never set: these lines are in flight when the "process" stops
        return await answer(tenant_id, task, body)

    first = runner_for(store, blocks_some, concurrency=3)
    await first.start()
    view = await first.submit(TENANT, upload("one", "slow two", "three", "four", "slow five", "six"))
    batch_id = view.meta.id

    async def four_done():
        return (await first.status(batch_id, TENANT)).progress.completed == 4
    await until(four_done)
    await first.stop()  # like a crash: two lines in flight, unrecorded
    assert store.meta(batch_id).status is BatchStatus.RUNNING
    assert [r["line"] for r in store.results(batch_id)] == [1, 3, 4, 6]

    ran = []

    async def records_calls(tenant_id, task, body):
        ran.append(body["text"])
        return await answer(tenant_id, task, body)

    second = runner_for(store, records_calls)
    await second.start()  # resumes what is on disk
    try:
        done, records = await finished(second, batch_id)
    finally:
        await second.stop()
    assert sorted(ran) == ["slow five", "slow two"]  # only the unfinished lines ran again
    assert [r["line"] for r in records] == [1, 2, 3, 4, 5, 6]
    assert [r["response"]["text"] for r in records] == ["ONE", "SLOW TWO", "THREE", "FOUR", "SLOW FIVE", "SIX"]
    assert done.meta.status is BatchStatus.COMPLETED and done.progress.completed == 6


async def test_a_crash_between_append_and_bookkeeping_cannot_duplicate_a_line(store):
    """A record appended twice (the line re-ran after a crash) reads once; a torn last record is dropped and re-run."""
    batch_id = store.create(TENANT, upload("one", "two", "three"), 3).id
    store.append(batch_id, {"line": 1, "custom_id": "c1", "task": "redact", "response": {"text": "first"}})
    store.append(batch_id, {"line": 1, "custom_id": "c1", "task": "redact", "response": {"text": "second"}})
    with open(store.root / batch_id / "results.jsonl", "ab") as f:
        f.write(b'{"line": 2, "custom_id": "c2", "resp')  # the process died mid-write
    assert [r["line"] for r in store.results(batch_id)] == [1]

    ran = []

    async def records_calls(tenant_id, task, body):
        ran.append(body["text"])
        return await answer(tenant_id, task, body)

    runner = runner_for(store, records_calls)
    await runner.start()
    try:
        done, records = await finished(runner, batch_id)
    finally:
        await runner.stop()
    assert sorted(ran) == ["three", "two"]
    assert [(r["line"], r["response"]["text"]) for r in records] == [(1, "first"), (2, "TWO"), (3, "THREE")]
    assert done.progress.completed == 3


async def test_refusals_are_retried_not_recorded(store):
    calls = {"n": 0}
    seen = []

    async def refuses_twice(tenant_id, task, body):
        calls["n"] += 1
        if calls["n"] == 1:
            raise RateLimited("over requestsPerSecond", retry_after=0.01)
        if calls["n"] == 2:
            raise Overloaded("no capacity", retry_after=0.01)
        return await answer(tenant_id, task, body)

    runner = runner_for(store, refuses_twice, observe=lambda *event: seen.append(event))
    await runner.start()
    try:
        done, records = await finished(runner, (await runner.submit(TENANT, upload("x"))).meta.id)
    finally:
        await runner.stop()
    assert records[0]["response"]["text"] == "X" and done.progress.failed == 0
    assert seen == [(TENANT, "redact", "retried"), (TENANT, "redact", "retried"), (TENANT, "redact", "completed")]


async def test_a_refusal_that_outlasts_the_retry_budget_is_recorded(store):
    async def always_limited(tenant_id, task, body):
        raise RateLimited("tenant 'shopright' is over its tokensPerMinute", retry_after=5)

    runner = runner_for(store, always_limited, retry_for_s=1)
    await runner.start()
    try:
        done, (record,) = await finished(runner, (await runner.submit(TENANT, upload("x"))).meta.id)
    finally:
        await runner.stop()
    assert record["error"] == {"type": "rate_limited", "message": "tenant 'shopright' is over its tokensPerMinute"}
    assert done.progress.failed == 1


async def test_errors_are_recorded_per_line_without_customer_text(store, caplog):
    async def mixed(tenant_id, task, body):
        if body["text"] == "forbidden":
            raise Forbidden("task 'redact' is not enabled for tenant 'shopright'")
        if body["text"].startswith("bug"):
            raise KeyError(body["text"])
        return await answer(tenant_id, task, body)

    raw = upload("ok", "forbidden", "bug with jo@example.com") + b"{oops\n"
    runner = runner_for(store, mixed)
    await runner.start()
    try:
        view = await runner.submit(TENANT, raw)
        assert (view.progress.total, view.progress.failed) == (4, 1)  # the unparsable line failed at once
        done, records = await finished(runner, view.meta.id)
    finally:
        await runner.stop()
    assert "response" in records[0]
    assert records[1]["error"]["type"] == "forbidden"
    assert records[2]["error"] == {"type": "internal_error", "message": "internal error while running this line"}
    assert records[3]["error"]["type"] == "invalid_request" and records[3]["error"]["message"].startswith("line 4: not JSON")
    assert (done.progress.completed, done.progress.failed) == (1, 3)
    assert "jo@example.com" not in caplog.text


async def test_concurrency_is_bounded_across_batches(store):
    now = {"in": 0, "max": 0}

    async def counts(tenant_id, task, body):
        now["in"] += 1
        now["max"] = max(now["max"], now["in"])
        await asyncio.sleep(0.01)
        now["in"] -= 1
        return await answer(tenant_id, task, body)

    runner = runner_for(store, counts, concurrency=2)
    await runner.start()
    try:
        ids = [(await runner.submit(TENANT, upload(*"abcdef"))).meta.id for _ in range(2)]
        for batch_id in ids:
            await finished(runner, batch_id)
    finally:
        await runner.stop()
    assert now["max"] == 2


async def test_one_runner_per_folder_and_the_other_takes_over(store):
    gate = asyncio.Event()
    ran = {"first": 0, "second": 0}

    def counting(name):
        async def execute(tenant_id, task, body):
            ran[name] += 1
            await gate.wait()
            return await answer(tenant_id, task, body)
        return execute

    first, second = runner_for(store, counting("first")), runner_for(store, counting("second"))
    await first.start()
    await second.start()
    try:
        assert first.running and not second.running
        batch_id = (await second.submit(TENANT, upload("a", "b"))).meta.id  # accepted anywhere, run by the owner

        async def first_runs():
            return ran["first"] == 2
        await until(first_runs)
        await first.stop()

        async def second_took_over():
            return second.running and ran["second"] == 2
        await until(second_took_over)
        gate.set()
        _, records = await finished(second, batch_id)
    finally:
        await second.stop()
    assert [r["line"] for r in records] == [1, 2]


async def test_cancel_keeps_finished_lines_and_marks_the_rest(store):
    gate = asyncio.Event()

    async def blocks_some(tenant_id, task, body):
        if body["text"] == "slow":
            await gate.wait()
        return await answer(tenant_id, task, body)

    runner = runner_for(store, blocks_some, concurrency=1)
    await runner.start()
    try:
        batch_id = (await runner.submit(TENANT, upload("fast", "slow", "never"))).meta.id

        async def one_done():
            return (await runner.status(batch_id, TENANT)).progress.completed == 1
        await until(one_done)
        view = await runner.cancel(batch_id, TENANT)
        assert view.meta.status is BatchStatus.CANCELLED and view.meta.finished_at
        assert (view.progress.completed, view.progress.pending) == (1, 2)
        _, records = await runner.results(batch_id, TENANT)
    finally:
        await runner.stop()
    assert records[0]["response"]["text"] == "FAST"
    assert [(r["line"], r["custom_id"], r["error"]["type"]) for r in records[1:]] == [
        (2, "c2", "cancelled"), (3, "c3", "cancelled")]

    # Sealed: the unrun lines are recorded and the upload (text before redaction) is gone.
    assert not (store.root / batch_id / "input.jsonl").exists()
    again = runner_for(store, answer)
    await again.start()  # a cancelled batch is not resumed
    try:
        await asyncio.sleep(0.1)
        assert [("response" in r, r["line"]) for r in store.results(batch_id)] == [(True, 1), (False, 2), (False, 3)]
        assert (await again.status(batch_id, TENANT)).progress.pending == 2
    finally:
        await again.stop()


def test_a_batch_is_visible_to_its_tenant_only(store):
    meta = store.create(TENANT, upload("x"), 1)
    assert store.meta(meta.id, TENANT).tenant_id == TENANT
    with pytest.raises(NotFound):
        store.meta(meta.id, "northbank")
    for bad in ("../batches", "batch_" + "0" * 24, meta.id + "/../x"):
        with pytest.raises(NotFound):
            store.meta(bad, TENANT)
    assert [m.id for m in store.batches(TENANT)] == [meta.id] and store.batches("northbank") == []


def test_status_is_replaced_atomically_and_survives_a_new_store(store):
    meta = store.create(TENANT, upload("x"), 1, task="redact")
    store.set_status(meta.id, BatchStatus.COMPLETED)
    reopened = BatchStore(store.root).meta(meta.id)
    assert reopened.status is BatchStatus.COMPLETED and reopened.finished_at and reopened.task == "redact"
    assert sorted(p.name for p in (store.root / meta.id).iterdir()) == ["input.jsonl", "meta.json", "results.jsonl"]
    assert (store.root / meta.id / "input.jsonl").read_bytes() == upload("x")


async def test_a_batch_deleted_by_another_process_stops_running_here(store):
    """The runner's scan notices the folder is gone and cancels its lines in flight (the work, not only the wait)."""
    started, cancelled = asyncio.Event(), []

    async def blocks(tenant_id, task, body):
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.append(body["text"])
            raise

    runner = runner_for(store, blocks)
    await runner.start()
    try:
        batch_id = (await runner.submit(TENANT, upload("a"))).meta.id
        await asyncio.wait_for(started.wait(), 5)
        BatchStore(store.root).delete(batch_id)  # another router process's DELETE

        async def halted():
            return not runner.pending_lines()
        await until(halted)
    finally:
        await runner.stop()
    assert cancelled == ["a"]
    assert store.batches() == [] and [p.name for p in store.root.iterdir()] == [".runner.lock"]
    with pytest.raises(NotFound):
        store.delete(batch_id)


def test_sweep_removes_what_a_crash_left_of_deletions_and_creations(store):
    kept = store.create(TENANT, upload("x"), 1)
    (store.root / ".deleted-batch_x-1234").mkdir()
    (store.root / ".new-batch_y").mkdir()  # a creation in progress: kept until it is an hour old
    store.sweep()
    assert sorted(p.name for p in store.root.iterdir()) == [".new-batch_y", kept.id]
    store.sweep(older_than_s=-1)
    assert [p.name for p in store.root.iterdir()] == [kept.id]
    assert store.size(kept.id) == len(upload("x")) + len(store.meta(kept.id).to_json())
