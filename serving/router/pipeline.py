"""The router's part of every task request: the task is deployed here, the request passes the task's checks."""

from __future__ import annotations

from fastapi import Request
from pydantic import BaseModel

from serving.errors import NotFound
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


async def execute(request: Request, profile: CompiledProfile, task: Task, body: BaseModel) -> BaseModel:
    """begin, run the task, account its tokens to the tenant."""
    ctx = begin(request, profile, task, body)
    gauge = ctx.metrics.inflight.labels(task.value)
    gauge.inc()
    try:
        response = await service.run(task, profile, body, ctx.backend)
    finally:
        gauge.dec()
    usage = getattr(response, "usage", None)
    if usage is not None:
        ctx.metrics.count_tokens(profile.tenant_id, task.value, usage.model_dump())
    return response
