"""The router's part of every task request: the task is enabled and deployed here and the input within its limits
(`begin`); the tenant's limits admit it (429); a slot in the deployment's queue (503 when full, see scheduler.py); and
the task's work (serving.tasks.service) within the request's deadline (504). For a stream the deadline covers the wait
for a slot and the whole stream: past it the stream ends with a `deadline_exceeded` error event."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

from fastapi import Request
from pydantic import BaseModel

from serving.errors import DeadlineExceeded, Forbidden, InvalidRequest, NotFound
from serving.profiles.compiler import CompiledProfile
from serving.profiles.model import PriorityClass
from serving.router.context import RouterContext
from serving.router.scheduler import Ticket
from serving.tasks import service
from serving.tasks.catalog import Task
from serving.telemetry import tracing


def begin(request: Request, profile: CompiledProfile, task: Task, body: BaseModel) -> RouterContext:
    """Task enabled for the tenant, deployed here, input within the size limit; tags the access log and trace."""
    ctx: RouterContext = request.app.state.ctx
    service.check(task, profile, body, ctx.settings.max_text_chars)
    if task.value not in ctx.backend.served():
        raise NotFound(f"task {task.value!r} is not deployed on this platform")
    request.scope["state"].setdefault("log", {})["task"] = task.value
    return ctx


DEADLINE_HEADER = "x-switchboard-deadline-ms"
PRIORITY_HEADER = "x-switchboard-priority"
T = TypeVar("T")


async def execute(request: Request, profile: CompiledProfile, task: Task, body: BaseModel) -> BaseModel:
    """begin, then `run` with the request's priority class and deadline; the answer goes to the tenant's own
    caller, so a profile with `redaction.restore` gets its values back."""
    ctx = begin(request, profile, task, body)
    return await run(ctx, profile, task, body, priority_class(request, profile), deadline_s(request, ctx, task),
                     restore=True)


async def run(ctx: RouterContext, profile: CompiledProfile, task: Task, body: BaseModel, klass: str,
              seconds: float, restore: bool = False) -> BaseModel:
    """A checked task request through admission, the deployment's queue and the task (also the bulk path's entry,
    which never restores: batch results are stored)."""
    return await run_admitted(ctx, profile, task, klass, seconds,
                              lambda: service.run(task, profile, body, ctx.backend, restore=restore),
                              _usage, estimate_tokens(body), units=len(getattr(body, "utterances", lambda: [0])()))


async def run_admitted(ctx: RouterContext, profile: CompiledProfile, task: Task, klass: str, seconds: float,
                       work: Callable[[], Awaitable[T]], usage_of: Callable[[T], dict | None], cost: float,
                       units: int = 1) -> T:
    """Tenant limits (429), then a slot in the deployment's queue (503 when full) and the work, both within the
    deadline (504); the tokens the work reports are charged to the tenant's limits and fair share."""
    async with admitted(ctx, profile, task, units) as account:
        async def queued_then_run() -> T:
            async with scheduled(ctx, profile, task, klass, cost) as charge:
                result = await work()
                usage = usage_of(result)
                if usage:
                    account(usage)
                    charge(usage)
                return result

        return await within_deadline(seconds, task, queued_then_run())


def _usage(response: BaseModel) -> dict | None:
    usage = getattr(response, "usage", None)
    return usage.model_dump() if usage is not None else None


def estimate_tokens(body: BaseModel) -> float:
    """A request's token cost before it runs (about four characters a token); corrected by what it reports."""
    return len(body.model_dump_json()) / 4


@contextlib.asynccontextmanager
async def admitted(ctx: RouterContext, profile: CompiledProfile, task: Task, units: int = 1) -> AsyncIterator:
    """The tenant's limits let the request in (else 429); yields `account(usage)`; releases when the request ends.
    `units`: what the request counts against requestsPerSecond (the texts of a many-utterance classify-intent)."""
    limits = profile.spec.limits
    ctx.limiter.admit(profile.tenant_id, limits, units)
    gauge = ctx.metrics.child(ctx.metrics.inflight, task.value)
    gauge.inc()
    used = {"tokens": 0}

    def account(usage: dict) -> None:
        used["tokens"] += _tokens(usage)
        ctx.metrics.count_tokens(profile.tenant_id, task.value, usage)

    try:
        yield account
    finally:
        gauge.dec()
        ctx.limiter.release(profile.tenant_id, limits, used["tokens"])


@contextlib.asynccontextmanager
async def scheduled(ctx: RouterContext, profile: CompiledProfile, task: Task, klass: str,
                    cost: float) -> AsyncIterator[Callable[[dict], None]]:
    """Wait for a slot of the task's deployment (see serving.router.scheduler); yields `charge(usage)`."""
    ticket = await take_slot(ctx, profile, task, klass, cost)
    try:
        yield lambda usage: ticket.charge(_tokens(usage)) if ticket else None
    finally:
        _release(ctx, task, ticket)


def _release(ctx: RouterContext, task: Task, ticket: Ticket | None) -> None:
    gate = ctx.gates.for_task(task.value)
    if ticket is not None and gate is not None:
        gate.release(ticket)


async def take_slot(ctx: RouterContext, profile: CompiledProfile, task: Task, klass: str, cost: float) -> Ticket | None:
    """A slot in the queue of the task's deployment (None where no queue is configured); counts the admission."""
    gate = ctx.gates.for_task(task.value)
    ticket = None
    if gate is not None:
        with tracing.step("queue", task=task.value, priority=klass) as span:
            started = time.monotonic()
            ticket = await gate.acquire(profile.tenant_id, klass, profile.spec.priority.weight, cost)
            tracing.annotate(span, queue_wait_ms=round((time.monotonic() - started) * 1000, 1))
    ctx.metrics.child(ctx.metrics.admitted, profile.tenant_id, task.value, klass).inc()
    return ticket


def _tokens(usage: dict) -> int:
    return usage.get("tokens_in", 0) + usage.get("tokens_out", 0)


async def within_deadline(seconds: float, task: Task, work: Awaitable):
    """The work, or DeadlineExceeded (504) when it outlives its deadline (see `deadline_s`). `asyncio.timeout`, not
    `wait_for`: on Python 3.11 wait_for runs the work as a task of its own, an extra task and loop pass a request."""
    try:
        async with asyncio.timeout(seconds):
            return await work
    except TimeoutError:
        raise DeadlineExceeded(f"task {task.value!r} did not finish within its deadline of {seconds:g} s") from None


def priority_class(request: Request, profile: CompiledProfile) -> str:
    """The client's `X-Switchboard-Priority`, if the tenant's profile allows it; else the profile's default class."""
    priority = profile.spec.priority
    raw = request.headers.get(PRIORITY_HEADER)
    if raw is None:
        return priority.default_class.value
    try:
        klass = PriorityClass(raw.strip().lower())
    except ValueError:
        raise InvalidRequest(f"header {PRIORITY_HEADER}: one of {[c.value for c in PriorityClass]}, got {raw[:20]!r}",
                             field=f"header.{PRIORITY_HEADER}") from None
    if klass not in priority.allowed_classes:
        raise Forbidden(f"priority class {klass.value!r} is not allowed for this tenant; allowed: "
                        f"{[c.value for c in priority.allowed_classes]}")
    return klass.value


async def _until(ends: float, seconds: float, task: Task, chunks: AsyncIterator[dict]) -> AsyncIterator[dict]:
    """The chunks until the deadline, then DeadlineExceeded (an error event); closing `chunks` cancels the work."""
    loop = asyncio.get_running_loop()
    when = loop.time() + (ends - time.monotonic())  # the same deadline on the loop's clock
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


def deadline_s(request: Request, ctx: RouterContext, task: Task) -> float:
    """The client's `X-Switchboard-Deadline-Ms`, or the task's default from settings."""
    raw = request.headers.get(DEADLINE_HEADER)
    if raw is None:
        return ctx.settings.deadlines.for_task(task.value)
    if not raw.isdigit() or not 1 <= int(raw) <= 3_600_000:
        raise InvalidRequest(f"header {DEADLINE_HEADER}: milliseconds from 1 to 3600000, got {raw[:20]!r}",
                             field=f"header.{DEADLINE_HEADER}")
    return int(raw) / 1000


async def admitted_stream(ctx: RouterContext, profile: CompiledProfile, task: Task, chunks: AsyncIterator[dict],
                          klass: str, seconds: float) -> AsyncIterator[dict]:
    """Admit and take a slot now (so a refusal is a 429/503/504 before any byte is sent); release when it ends."""
    ends = time.monotonic() + seconds  # the deadline covers the wait for a slot and the whole stream
    admission = admitted(ctx, profile, task)
    account = await admission.__aenter__()
    try:
        ticket = await within_deadline(seconds, task, take_slot(ctx, profile, task, klass, 0))
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
            _release(ctx, task, ticket)
            await admission.__aexit__(None, None, None)

    return stream()
