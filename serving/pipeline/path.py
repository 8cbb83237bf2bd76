"""The request path behind every entrance (task routes, SSE stream, OpenAI route, batch lines, KServe): one
`Pipeline.handle(call)` runs steps 1-8 of a task request that its entrance has authenticated and parsed into a `Call`.

In order: the task is enabled for the tenant, deployed here and its input within the size limit (checks); the
tenant's limits admit it (429, see admission.py); a slot in the deployment's queue (503 when full, see scheduler.py);
the task's work (steps.py: redact, compose, call, validate) within the call's deadline (504). A stream is redacted and
composed first, then admitted and given its slot (so a refusal is an error status before any byte is sent); its
deadline covers the wait for a slot and the whole stream: past it the stream ends with a `deadline_exceeded` error.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pydantic import BaseModel

from serving.errors import DeadlineExceeded, InvalidRequest, NotFound
from serving.pipeline import steps
from serving.pipeline.admission import TenantLimiter
from serving.pipeline.fairshare import SharePolicy
from serving.pipeline.scheduler import Gates, Ticket
from serving.profiles.compiler import CompiledProfile
from serving.tasks.jobs import TaskBackend
from serving.telemetry import tracing
from serving.telemetry.metrics import RouterMetrics
from serving.vocabulary.catalog import Task
from serving.vocabulary.schemas import ReplyRequest, SummarizeRequest

T = TypeVar("T")
Result = BaseModel | AsyncIterator[dict]
"""What `handle` returns: the task's response body, or for a stream its chunks ({"delta"} items, then
{"done", "finish_reason", "usage"}; an error past the headers is raised from the iterator)."""


@dataclass(frozen=True)
class Call:
    """One authenticated task request as its entrance parsed it."""

    task: Task
    profile: CompiledProfile
    body: BaseModel
    priority: str | None = None  # the priority class; None: the profile's default
    deadline_s: float | None = None  # None: no deadline (KServe leaves it to its caller)
    restore: bool = False  # the caller is the tenant's own client: a profile with `redaction.restore` gets values back
    stream: bool = False  # summarize or reply as chunks
    options: Mapping[str, Any] = field(default_factory=dict)  # generation options (the OpenAI route's temperature)

    def priority_class(self) -> str:
        return self.priority or self.profile.spec.priority.default_class.value


@dataclass
class Pipeline:
    """What the path runs on: the task backend, the size limit, and (behind the router) the tenant limiter, the
    deployments' queues and the metrics. Without a limiter no tenant limits apply (KServe: the mesh decides)."""

    backend: TaskBackend
    max_text_chars: int
    limiter: TenantLimiter | None = None
    gates: Gates = field(default_factory=lambda: Gates({}, SharePolicy()))
    metrics: RouterMetrics | None = None

    async def handle(self, call: Call) -> Result:
        """The call's response body (or stream), or the SwitchboardError that refused or failed it."""
        self.check(call)
        if call.stream:
            return await self._stream(call)
        units = len(getattr(call.body, "utterances", lambda: [0])())
        return await self._admitted_work(
            call,
            lambda: steps.run(
                call.task, call.profile, call.body, self.backend, restore=call.restore, options=call.options
            ),
            estimate_tokens(call.body),
            units,
        )

    def check(self, call: Call) -> None:
        """Step 1: the task is enabled for the tenant, the input within the size limit, the task deployed here."""
        steps.check(call.task, call.profile, call.body, self.max_text_chars)
        if call.task.value not in self.backend.served():
            raise NotFound(f"task {call.task.value!r} is not deployed on this platform")

    async def _admitted_work(
        self, call: Call, work: Callable[[], Awaitable[BaseModel]], cost: float, units: int = 1
    ) -> BaseModel:
        """Tenant limits (429), then a slot in the deployment's queue (503 when full) and the work, both within the
        deadline (504); the tokens the work reports are charged to the tenant's limits and fair share."""
        async with self._admitted(call.profile, call.task, units) as account:

            async def queued_then_run() -> BaseModel:
                async with self._scheduled(call, cost) as charge:
                    result = await work()
                    usage = _usage(result)
                    if usage:
                        account(usage)
                        charge(usage)
                    return result

            return await within_deadline(call.deadline_s, call.task, queued_then_run())

    @contextlib.asynccontextmanager
    async def _admitted(self, profile: CompiledProfile, task: Task, units: int = 1) -> AsyncIterator:
        """The tenant's limits let the request in (else 429); yields `account(usage)`; releases when the request ends.
        `units`: what the request counts against requestsPerSecond (the texts of a many-utterance classify-intent)."""
        limits, limiter, metrics = profile.spec.limits, self.limiter, self.metrics
        if limiter is not None:
            limiter.admit(profile.tenant_id, limits, units)
        gauge = metrics.child(metrics.inflight, task.value) if metrics is not None else None
        if gauge is not None:
            gauge.inc()
        used = {"tokens": 0}

        def account(usage: dict) -> None:
            used["tokens"] += _tokens(usage)
            if metrics is not None:
                metrics.count_tokens(profile.tenant_id, task.value, usage)

        try:
            yield account
        finally:
            if gauge is not None:
                gauge.dec()
            if limiter is not None:
                limiter.release(profile.tenant_id, limits, used["tokens"])

    @contextlib.asynccontextmanager
    async def _scheduled(self, call: Call, cost: float) -> AsyncIterator[Callable[[dict], None]]:
        """Wait for a slot of the task's deployment (see serving.pipeline.scheduler); yields `charge(usage)`."""
        ticket = await self._take_slot(call, cost)
        try:
            yield lambda usage: ticket.charge(_tokens(usage)) if ticket else None
        finally:
            self._release(call.task, ticket)

    def _release(self, task: Task, ticket: Ticket | None) -> None:
        gate = self.gates.for_task(task.value)
        if ticket is not None and gate is not None:
            gate.release(ticket)

    async def _take_slot(self, call: Call, cost: float) -> Ticket | None:
        """A slot in the queue of the task's deployment (None where no queue is configured); counts the admission."""
        profile, task, klass = call.profile, call.task, call.priority_class()
        gate = self.gates.for_task(task.value)
        ticket = None
        if gate is not None:
            with tracing.step("queue", task=task.value, priority=klass) as span:
                started = time.monotonic()
                ticket = await gate.acquire(profile.tenant_id, klass, profile.spec.priority.weight, cost)
                tracing.annotate(span, queue_wait_ms=round((time.monotonic() - started) * 1000, 1))
        if self.metrics is not None:
            self.metrics.child(self.metrics.admitted, profile.tenant_id, task.value, klass).inc()
        return ticket

    async def _stream(self, call: Call) -> AsyncIterator[dict]:
        """Redact and compose, then admit and take a slot now (so a refusal is a 429/503/504 before any byte is sent);
        the chunks are restored last, so admission, metrics and traces only ever see placeholders."""
        body = call.body
        if not isinstance(body, SummarizeRequest | ReplyRequest):
            raise InvalidRequest(f"stream is not supported for task {call.task.value!r}", field="stream")
        job, restorer = await steps.stream_job(call.task, call.profile, body, self.backend, call.options)
        chunks = await self._admitted_stream(call, steps.stream_chunks(call.task, call.profile, job, self.backend))
        return steps.restoring(chunks, restorer if call.restore else None)

    async def _admitted_stream(self, call: Call, chunks: AsyncIterator[dict]) -> AsyncIterator[dict]:
        """Admit and take a slot now; release when the stream ends."""
        seconds, task = call.deadline_s, call.task
        ends = time.monotonic() + seconds if seconds is not None else None  # covers the wait and the whole stream
        admission = self._admitted(call.profile, task)
        account = await admission.__aenter__()
        try:
            ticket = await within_deadline(seconds, task, self._take_slot(call, 0))
        except BaseException:
            await admission.__aexit__(None, None, None)
            raise

        async def stream() -> AsyncIterator[dict]:
            try:
                async for chunk in _until(ends, seconds, task, chunks):
                    usage = chunk.get("usage") or (chunk if "tokens_out" in chunk else None)
                    if usage:
                        account(usage)
                        if ticket:
                            ticket.charge(_tokens(usage))
                    yield chunk
            finally:
                self._release(task, ticket)
                await admission.__aexit__(None, None, None)

        return stream()


def estimate_tokens(body: BaseModel) -> float:
    """A request's token cost before it runs (about four characters a token); corrected by what it reports."""
    return len(body.model_dump_json()) / 4


def _usage(response: BaseModel) -> dict | None:
    usage = getattr(response, "usage", None)
    return usage.model_dump() if usage is not None else None


def _tokens(usage: dict) -> int:
    return usage.get("tokens_in", 0) + usage.get("tokens_out", 0)


async def within_deadline(seconds: float | None, task: Task, work: Awaitable[T]) -> T:
    """The work, or DeadlineExceeded (504) when it outlives its deadline (None: no deadline). `asyncio.timeout`, not
    `wait_for`: on Python 3.11 wait_for runs the work as a task of its own, an extra task and loop pass a request."""
    try:
        async with asyncio.timeout(seconds):
            return await work
    except TimeoutError:
        raise DeadlineExceeded(f"task {task.value!r} did not finish within its deadline of {seconds:g} s") from None


async def _until(
    ends: float | None, seconds: float | None, task: Task, chunks: AsyncIterator[dict]
) -> AsyncIterator[dict]:
    """The chunks until the deadline, then DeadlineExceeded (an error event); closing `chunks` cancels the work."""
    loop = asyncio.get_running_loop()
    when = loop.time() + (ends - time.monotonic()) if ends is not None else None  # the deadline on the loop's clock
    try:
        while True:
            try:
                async with asyncio.timeout_at(when):  # around the wait only: a timeout must not span a `yield`
                    chunk = await anext(chunks)
            except StopAsyncIteration:
                return
            except TimeoutError:
                raise DeadlineExceeded(f"task {task.value!r} stream ran past its deadline of {seconds:g} s") from None
            yield chunk
    finally:
        close = getattr(chunks, "aclose", None)
        if close is not None:
            await close()
