"""The router's part of every task request: the task is deployed here, the request passes the task's checks."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable

from fastapi import Request
from pydantic import BaseModel

from serving.errors import DeadlineExceeded, InvalidRequest, NotFound
from serving.profiles.compiler import CompiledProfile
from serving.router.context import RouterContext
from serving.tasks import service
from serving.tasks.catalog import Task


def begin(request: Request, profile: CompiledProfile, task: Task, body: BaseModel) -> RouterContext:
    """Task enabled for the tenant, deployed here, input within the size limit; tags the access log and trace."""
    ctx: RouterContext = request.app.state.ctx
    service.check(task, profile, body, ctx.settings.max_text_chars)
    if task.value not in ctx.backend.served():
        raise NotFound(f"task {task.value!r} is not deployed on this platform")
    request.scope["state"].setdefault("log", {})["task"] = task.value
    return ctx


DEADLINE_HEADER = "x-switchboard-deadline-ms"


async def execute(request: Request, profile: CompiledProfile, task: Task, body: BaseModel) -> BaseModel:
    """begin, admit, run the task within its deadline, account its tokens to the tenant."""
    ctx = begin(request, profile, task, body)
    seconds = deadline_s(request, ctx, task)
    async with admitted(ctx, profile, task) as account:
        response = await within_deadline(seconds, task, service.run(task, profile, body, ctx.backend))
        usage = getattr(response, "usage", None)
        if usage is not None:
            account(usage.model_dump())
    return response


@contextlib.asynccontextmanager
async def admitted(ctx: RouterContext, profile: CompiledProfile, task: Task) -> AsyncIterator:
    """The tenant's limits let the request in (else 429); yields `account(usage)`; releases when the request ends."""
    limits = profile.spec.limits
    ctx.limiter.admit(profile.tenant_id, limits)
    gauge = ctx.metrics.inflight.labels(task.value)
    gauge.inc()
    used = {"tokens": 0}

    def account(usage: dict) -> None:
        used["tokens"] += usage.get("tokens_in", 0) + usage.get("tokens_out", 0)
        ctx.metrics.count_tokens(profile.tenant_id, task.value, usage)

    try:
        yield account
    finally:
        gauge.dec()
        ctx.limiter.release(profile.tenant_id, limits, used["tokens"])


async def within_deadline(seconds: float, task: Task, work: Awaitable):
    """The work, or DeadlineExceeded (504) when it outlives its deadline (see `deadline_s`)."""
    try:
        return await asyncio.wait_for(work, seconds)
    except TimeoutError:
        raise DeadlineExceeded(f"task {task.value!r} did not finish within its deadline of {seconds:g} s") from None


def deadline_s(request: Request, ctx: RouterContext, task: Task) -> float:
    """The client's `X-Switchboard-Deadline-Ms`, or the task's default from settings."""
    raw = request.headers.get(DEADLINE_HEADER)
    if raw is None:
        return ctx.settings.deadlines.for_task(task.value)
    if not raw.isdigit() or not 1 <= int(raw) <= 3_600_000:
        raise InvalidRequest(f"header {DEADLINE_HEADER}: milliseconds from 1 to 3600000, got {raw[:20]!r}",
                             field=f"header.{DEADLINE_HEADER}")
    return int(raw) / 1000


async def admitted_stream(ctx: RouterContext, profile: CompiledProfile, task: Task,
                          chunks: AsyncIterator[dict]) -> AsyncIterator[dict]:
    """Admit now (so a refusal is a 429 before any byte is sent); release when the stream ends."""
    admission = admitted(ctx, profile, task)
    account = await admission.__aenter__()

    async def stream() -> AsyncIterator[dict]:
        try:
            async for chunk in chunks:
                if "usage" in chunk:
                    account(chunk["usage"])
                elif "tokens_out" in chunk:
                    account(chunk)
                yield chunk
        finally:
            await admission.__aexit__(None, None, None)

    return stream()
