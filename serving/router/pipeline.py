"""Steps every task request shares: checks, redaction of the input, and the task's compiled instruction."""

from __future__ import annotations

import asyncio

from fastapi import Request

from serving.errors import InvalidRequest, NotFound
from serving.profiles.compiler import CompiledProfile
from serving.router.auth import require_task
from serving.router.context import RouterContext
from serving.tasks.catalog import Task
from serving.tasks.conversation import Turn
from serving.tasks.jobs import RedactJob
from serving.tasks.schemas import Usage
from serving.telemetry import tracing


def begin(request: Request, profile: CompiledProfile, task: Task, chars: int) -> RouterContext:
    """Task enabled for the tenant, deployed here, input within the size limit; tags the access log."""
    ctx: RouterContext = request.app.state.ctx
    require_task(profile, task)
    if task.value not in ctx.backend.served():
        raise NotFound(f"task {task.value!r} is not deployed on this platform")
    limit = ctx.settings.max_text_chars
    if chars > limit:
        raise InvalidRequest(f"body: {chars} characters of text is over the limit of {limit}", field="body")
    request.scope["state"].setdefault("log", {})["task"] = task.value
    return ctx


def redact_job(profile: CompiledProfile, text: str) -> RedactJob:
    policy = profile.spec.redaction
    return RedactJob(text, tuple(policy.entities), policy.mode.value, policy.score_threshold, profile.tenant_id)


async def redacted_text(ctx: RouterContext, profile: CompiledProfile, text: str) -> tuple[str, int]:
    """Apply the tenant's redaction before any model sees the text (unless the tenant turned it off)."""
    if not profile.spec.redaction.apply_to_tasks:
        return text, 0
    with tracing.step("redact input"):
        result = await ctx.backend.redact(redact_job(profile, text))
        tracing.annotate(redacted_entities=len(result["entities"]))
    return result["text"], len(result["entities"])


async def redacted_turns(ctx: RouterContext, profile: CompiledProfile, turns: list[Turn]) -> tuple[list[Turn], int]:
    """Each turn redacted (concurrently, so the redact deployment batches them)."""
    results = await asyncio.gather(*(redacted_text(ctx, profile, t.text) for t in turns))
    return [Turn(speaker=t.speaker, text=text) for t, (text, _) in zip(turns, results, strict=True)], sum(n for _, n in results)


def instruction(profile: CompiledProfile, task: Task) -> tuple[str, int]:
    compiled = profile.instructions.get(task)
    return (compiled.text, compiled.tokens) if compiled else ("", 0)


def usage(profile: CompiledProfile, task: Task, result: dict | None = None) -> Usage:
    result = result or {}
    return Usage(instruction_tokens=instruction(profile, task)[1], tokens_in=result.get("tokens_in", 0),
                 tokens_out=result.get("tokens_out", 0))
