"""The batch worker of one router process: runs queued batches' lines with bounded concurrency, resumes after restart.

Each line goes through an injected `execute(tenant_id, task, body) -> response dict` (the router's own task path) and
its outcome is appended to the batch's results. Refusals that mean "not now" (RateLimited, Overloaded, ModelNotReady)
are retried with backoff, at least as long as their `retry_after`, and are not failures unless they outlast
`retry_for_s`. Other domain errors become the line's error record.

Delivery: a line whose result was appended is never run again; a line in flight when the process died runs again on
resume (at-least-once execution), and reading results keeps one record per line (exactly-once results).

One runner per store folder runs batches (a file lock decides); any process may accept, read, cancel and delete
batches, and the runner picks up new batches, cancellations and deletions from disk every `poll_s` seconds. Cancelling
or deleting a batch cancels its lines in flight, and with them their requests on the replicas (Ray Serve cancels a
request whose caller's task is cancelled; the engines then drop the sequence from their running batch). The runner
also removes finished batches `quota.retention_s` after they finished.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import random
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import BinaryIO

from serving.batches.parsing import DEFAULT_MAX_LINE_BYTES, DEFAULT_MAX_LINES, BatchLine, LineError, parse_batch
from serving.batches.quota import Quota, check_room, expired
from serving.batches.records import BatchView, Progress, cancelled_records, error_record, progress_of
from serving.batches.store import BatchMeta, BatchStatus, BatchStore
from serving.errors import ModelNotReady, NotFound, Overloaded, RateLimited, SwitchboardError

log = logging.getLogger(__name__)

Execute = Callable[[str, str, dict], Awaitable[dict]]
"""`execute(tenant_id, task, body)`: the task's response body, or a SwitchboardError."""

Observer = Callable[[str, str, str], None]
"""`observe(tenant_id, task, outcome)`, outcome one of `completed`, `failed`, `retried`; for metrics."""

RETRYABLE = (RateLimited, Overloaded, ModelNotReady)
UNEXPECTED = "internal error while running this line"


@dataclass
class _Active:
    meta: BatchMeta
    completed: int = 0
    failed: int = 0
    cancelled: bool = False
    driver: asyncio.Task | None = None
    lines: set[asyncio.Task] = field(default_factory=set)

    def view(self) -> BatchView:
        return BatchView(self.meta, Progress(self.meta.total, self.completed, self.failed))

    def tasks(self) -> list[asyncio.Task]:
        """The driver (once started) and the lines in flight."""
        return [*([self.driver] if self.driver is not None else []), *self.lines]


class BatchRunner:
    """Start with `await start()` in the app's lifespan and `await stop()` at its end."""

    def __init__(
        self,
        store: BatchStore,
        execute: Execute,
        *,
        concurrency: int = 4,
        max_lines: int = DEFAULT_MAX_LINES,
        max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
        quota: Quota | None = None,
        poll_s: float = 2.0,
        retry_for_s: float = 900.0,
        backoff_s: float = 0.5,
        max_backoff_s: float = 30.0,
        observe: Observer | None = None,
    ):
        self.store = store
        self.execute = execute
        self.concurrency = concurrency
        self.max_lines = max_lines
        self.max_line_bytes = max_line_bytes
        self.quota = quota or Quota()
        self.poll_s = poll_s
        self.retry_for_s = retry_for_s
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.observe = observe or (lambda tenant, task, outcome: None)
        self._active: dict[str, _Active] = {}
        self._claim: BinaryIO | None = None
        self._slots: asyncio.Semaphore | None = None
        self._poller: asyncio.Task | None = None
        self._accepting = asyncio.Lock()

    def _started_slots(self) -> asyncio.Semaphore:
        """The line slots, created by `start()` (inside the running event loop)."""
        if self._slots is None:
            raise RuntimeError("BatchRunner.start() has not run")
        return self._slots

    # --- lifecycle ---------------------------------------------------------------------------------------------------
    async def start(self) -> None:
        """Claim the folder (when free) and resume its queued and running batches; keep watching it."""
        self._slots = asyncio.Semaphore(self.concurrency)
        await self._scan()
        self._poller = asyncio.create_task(self._poll())

    async def stop(self) -> None:
        """Stop scheduling; lines in flight are abandoned unrecorded and run again on the next start."""
        tasks = [self._poller] if self._poller else []
        for active in self._active.values():
            tasks += active.tasks()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._active.clear()
        self._poller = None
        if self._claim is not None:
            self._claim.close()
            self._claim = None

    @property
    def running(self) -> bool:
        """Whether this process runs the folder's batches (holds its lock)."""
        return self._claim is not None

    # --- what the routes call ----------------------------------------------------------------------------------------
    async def check_room(self, tenant_id: str, incoming_bytes: int) -> None:
        """RateLimited (429) or PayloadTooLarge (413) when the tenant may not store one more batch of that size."""
        kept = await asyncio.to_thread(self._kept, tenant_id)
        check_room(tenant_id, kept, incoming_bytes, self.quota, time.time())

    async def submit(self, tenant_id: str, raw: bytes, task: str | None = None) -> BatchView:
        """Accept an upload (InvalidRequest when it is empty, PayloadTooLarge when it has too many lines, RateLimited
        when the tenant is at a cap); lines that do not parse fail at once."""
        lines = await asyncio.to_thread(parse_batch, raw, task, self.max_lines, self.max_line_bytes)
        errors = [line for line in lines if isinstance(line, LineError)]
        async with self._accepting:  # the caps are checked and the batch created as one step in this process
            await self.check_room(tenant_id, len(raw))
            meta = await asyncio.to_thread(
                self.store.create, tenant_id, raw, len(lines), task, [e.record() for e in errors]
            )
        for error in errors:
            self.observe(tenant_id, error.task or "unknown", "failed")
        log.info(
            "batch accepted",
            extra={"batch_id": meta.id, "tenant": tenant_id, "lines": len(lines), "invalid": len(errors)},
        )
        if self.running:
            self._launch(meta)
        return BatchView(meta, Progress(len(lines), 0, len(errors)))

    async def status(self, batch_id: str, tenant_id: str) -> BatchView:
        meta = await asyncio.to_thread(self.store.meta, batch_id, tenant_id)
        active = self._active.get(batch_id)
        if active is not None:
            return active.view()
        return BatchView(meta, progress_of(meta, await asyncio.to_thread(self.store.results, batch_id)))

    async def batches(self, tenant_id: str) -> list[BatchView]:
        metas = await asyncio.to_thread(self.store.batches, tenant_id)
        return [await self.status(meta.id, tenant_id) for meta in metas]

    async def results(self, batch_id: str, tenant_id: str) -> tuple[BatchView, list[dict]]:
        """Records of the finished lines in line order; for a cancelled batch, the lines it never ran as errors."""
        meta = await asyncio.to_thread(self.store.meta, batch_id, tenant_id)
        records = await asyncio.to_thread(self.store.results, batch_id)
        view = BatchView(meta, progress_of(meta, records))
        if meta.status is BatchStatus.CANCELLED:
            records = await asyncio.to_thread(self._with_unrun, meta, records)
        return view, records

    async def cancel(self, batch_id: str, tenant_id: str) -> BatchView:
        """Stop a queued or running batch: no new lines start, lines in flight are dropped; finished ones stay."""
        meta = await asyncio.to_thread(self.store.meta, batch_id, tenant_id)
        if not meta.status.finished:
            # Marked first, so that no scan (here or in another process) starts it again while it stops.
            meta = await asyncio.to_thread(self.store.set_status, batch_id, BatchStatus.CANCELLED)
            await self._stop_here(batch_id)
            await asyncio.to_thread(self._seal, meta)
            log.info("batch cancelled", extra={"batch_id": batch_id, "tenant": tenant_id})
        return await self.status(batch_id, tenant_id)

    async def delete(self, batch_id: str, tenant_id: str) -> None:
        """Stop the batch if it runs (its lines in flight are cancelled) and remove its upload and results."""
        meta = await asyncio.to_thread(self.store.meta, batch_id, tenant_id)
        if not meta.status.finished:  # marked first, so that no scan starts it again while it stops
            await asyncio.to_thread(self.store.set_status, batch_id, BatchStatus.CANCELLED)
        await self._stop_here(batch_id)
        await asyncio.to_thread(self.store.delete, batch_id)
        log.info("batch deleted", extra={"batch_id": batch_id, "tenant": tenant_id})

    def pending_lines(self) -> dict[str, int]:
        """Lines not yet finished in the batches this process runs, per tenant (for a gauge)."""
        pending: dict[str, int] = {}
        for active in self._active.values():
            pending[active.meta.tenant_id] = pending.get(active.meta.tenant_id, 0) + active.view().progress.pending
        return pending

    # --- scheduling --------------------------------------------------------------------------------------------------
    async def _poll(self) -> None:
        await asyncio.to_thread(self.store.sweep)
        while True:
            await asyncio.sleep(self.poll_s)
            try:
                await self._scan()
            except OSError as exc:  # a full or missing disk must not end the worker; the next scan tries again
                log.error("batch scan failed", extra={"error_type": type(exc).__name__})

    async def _scan(self) -> None:
        """Claim the folder if free; start unfinished batches not running yet; halt batches cancelled or deleted
        elsewhere; remove finished batches past their retention."""
        if self._claim is None:
            self._claim = await asyncio.to_thread(self.store.claim)
            if self._claim is None:
                return
        metas = await asyncio.to_thread(self.store.batches)
        for gone in set(self._active) - {meta.id for meta in metas}:
            self._halt(gone)
        now = time.time()
        for meta in metas:
            if meta.id in self._active and meta.status is BatchStatus.CANCELLED:
                self._halt(meta.id)
            elif meta.id not in self._active and not meta.status.finished:
                self._launch(meta)
            elif expired(meta, self.quota.retention_s, now):
                await asyncio.to_thread(self._expire, meta)
            elif meta.status.finished and meta.id not in self._active:
                await asyncio.to_thread(self._seal, meta)  # what a crash between finishing and dropping left

    def _expire(self, meta: BatchMeta) -> None:
        with contextlib.suppress(NotFound):  # deleted meanwhile
            self.store.delete(meta.id)
        log.info("batch expired", extra={"batch_id": meta.id, "tenant": meta.tenant_id})

    def _kept(self, tenant_id: str) -> list[tuple[BatchMeta, int]]:
        return [(meta, self.store.size(meta.id)) for meta in self.store.batches(tenant_id)]

    async def _stop_here(self, batch_id: str) -> None:
        """Halt the batch if this process runs it, and wait until its lines in flight have let go."""
        active = self._active.get(batch_id)
        self._halt(batch_id)
        if active is not None:
            await asyncio.gather(*active.tasks(), return_exceptions=True)

    def _launch(self, meta: BatchMeta) -> None:
        if meta.id not in self._active:
            active = self._active[meta.id] = _Active(meta)
            # A fresh context: a batch accepted during a request must not run inside that request's trace.
            active.driver = asyncio.create_task(self._drive(active), context=contextvars.Context())

    def _halt(self, batch_id: str) -> None:
        active = self._active.pop(batch_id, None)
        if active is not None:
            active.cancelled = True
            for task in active.tasks():
                task.cancel()

    async def _drive(self, active: _Active) -> None:
        """Run a batch's unfinished lines, at most `concurrency` lines at once across all batches."""
        batch_id = active.meta.id
        try:
            pending = await asyncio.to_thread(self._load, active)
            if pending is None:
                return
            log.info(
                "batch running",
                extra={
                    "batch_id": batch_id,
                    "tenant": active.meta.tenant_id,
                    "lines": active.meta.total,
                    "pending": len(pending),
                },
            )
            for line in pending:
                await self._started_slots().acquire()
                task = asyncio.create_task(self._run_line(active, line))
                active.lines.add(task)
                task.add_done_callback(self._line_done(active))  # also when cancelled before it started
            while active.lines:
                await asyncio.gather(*active.lines)
            if not active.cancelled:
                await asyncio.to_thread(self.store.set_status, batch_id, BatchStatus.COMPLETED)
                await asyncio.to_thread(self.store.drop_input, batch_id)
                log.info(
                    "batch completed",
                    extra={
                        "batch_id": batch_id,
                        "tenant": active.meta.tenant_id,
                        "completed": active.completed,
                        "failed": active.failed,
                    },
                )
        except Exception as exc:  # noqa: BLE001 - e.g. a full disk; the batch stays unfinished and the next scan resumes it
            log.error("batch stopped by an error", extra={"batch_id": batch_id, "error_type": type(exc).__name__})
            for task in active.lines:
                task.cancel()
        finally:
            if self._active.get(batch_id) is active:
                del self._active[batch_id]

    def _load(self, active: _Active) -> list[BatchLine | LineError] | None:
        """(In a thread) the lines still to run, with progress counted from the results; None when already finished."""
        batch_id = active.meta.id
        meta = self.store.meta(batch_id)
        if meta.status.finished:
            return None
        self.store.repair(batch_id)
        records = self.store.results(batch_id)
        done = {r["line"] for r in records}
        progress = progress_of(meta, records)
        active.completed, active.failed = progress.completed, progress.failed
        if meta.status is BatchStatus.QUEUED:
            meta = self.store.set_status(batch_id, BatchStatus.RUNNING)
        active.meta = meta
        lines = parse_batch(self.store.input(batch_id), meta.task, sys.maxsize)
        return [line for line in lines if line.line not in done]

    def _line_done(self, active: _Active) -> Callable[[asyncio.Task], None]:
        def done(task: asyncio.Task) -> None:
            active.lines.discard(task)
            self._started_slots().release()

        return done

    async def _run_line(self, active: _Active, line: BatchLine | LineError) -> None:
        tenant = active.meta.tenant_id
        record = line.record() if isinstance(line, LineError) else await self._outcome(tenant, line)
        await asyncio.to_thread(self.store.append, active.meta.id, record)
        failed = "error" in record
        active.failed += failed
        active.completed += not failed
        self.observe(tenant, record.get("task") or "unknown", "failed" if failed else "completed")

    async def _outcome(self, tenant_id: str, line: BatchLine) -> dict:
        """The line's result record: its response, or its error after retrying refusals for up to `retry_for_s`."""
        head = {"line": line.line, "custom_id": line.custom_id, "task": line.task}
        give_up = time.monotonic() + self.retry_for_s
        for attempt in range(sys.maxsize):
            try:
                return {**head, "response": await self.execute(tenant_id, line.task, line.body)}
            except RETRYABLE as exc:
                wait = self._backoff(exc, attempt)
                if time.monotonic() + wait > give_up:
                    return {**head, "error": error_record(exc)}
                self.observe(tenant_id, line.task, "retried")
                await asyncio.sleep(wait)
            except SwitchboardError as exc:
                return {**head, "error": error_record(exc)}
            except Exception as exc:  # noqa: BLE001 - a bug must fail its line, not the batch; no message: it may quote text
                log.error(
                    "batch line failed unexpectedly",
                    extra={"tenant": tenant_id, "task": line.task, "error_type": type(exc).__name__},
                )
                return {**head, "error": {"type": SwitchboardError.code, "message": UNEXPECTED}}
        raise AssertionError("unreachable")

    def _backoff(self, exc: SwitchboardError, attempt: int) -> float:
        """Exponential backoff with jitter, never shorter than the refusal's `retry_after`."""
        wait = min(self.max_backoff_s, self.backoff_s * 2**attempt) * random.uniform(1.0, 1.25)
        return max(wait, exc.retry_after or 0.0)

    def _with_unrun(self, meta: BatchMeta, records: list[dict]) -> list[dict]:
        """(In a thread) the records plus a `cancelled` error for every line that never ran, in line order (already
        among the records once the batch is sealed)."""
        done = {r["line"]: r for r in records}
        done.update({r["line"]: r for r in self._unrun(meta, done)})
        return [done[n] for n in sorted(done)]

    def _unrun(self, meta: BatchMeta, done: dict[int, dict]) -> list[dict]:
        try:
            lines = parse_batch(self.store.input(meta.id), meta.task, sys.maxsize)
        except FileNotFoundError:  # sealed: its unrun lines are in the results
            return []
        return cancelled_records(lines, done)

    def _seal(self, meta: BatchMeta) -> None:
        """(In a thread) a finished batch keeps no upload: a cancelled one first records its unrun lines."""
        with contextlib.suppress(NotFound):  # deleted meanwhile
            if not self.store.has_input(meta.id):
                return
            if meta.status is BatchStatus.CANCELLED:
                unrun = self._unrun(meta, {r["line"]: r for r in self.store.results(meta.id)})
                if unrun:
                    self.store.append_many(meta.id, unrun)
            self.store.drop_input(meta.id)
