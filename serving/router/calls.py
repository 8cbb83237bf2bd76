"""From an HTTP task request to a serving.pipeline `Call`: the priority class and deadline from the request's headers
(or the tenant's and the task's defaults), the task tagged on the access log; then the one request path runs it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any, TypeVar, cast

from fastapi import Request
from pydantic import BaseModel

from serving.errors import Forbidden, InvalidRequest
from serving.pipeline import Call
from serving.profiles.compiler import CompiledProfile
from serving.router.context import RouterContext
from serving.vocabulary.catalog import Task
from serving.vocabulary.kinds import PriorityClass

DEADLINE_HEADER = "x-switchboard-deadline-ms"
PRIORITY_HEADER = "x-switchboard-priority"
R = TypeVar("R", bound=BaseModel)


def call_for(
    request: Request,
    profile: CompiledProfile,
    task: Task,
    body: BaseModel,
    *,
    stream: bool = False,
    options: Mapping[str, Any] | None = None,
) -> Call:
    """The call of a task request from the tenant's own client (so a profile with `redaction.restore` gets its
    values back); tags the access log with the task."""
    ctx: RouterContext = request.app.state.ctx
    request.scope["state"].setdefault("log", {})["task"] = task.value
    return Call(
        task,
        profile,
        body,
        priority_class(request, profile),
        deadline_s(request, ctx, task),
        restore=True,
        stream=stream,
        options=options or {},
    )


async def execute(
    request: Request,
    profile: CompiledProfile,
    task: Task,
    body: BaseModel,
    returns: type[R],
    options: Mapping[str, Any] | None = None,
) -> R:
    """The response body of a task request, of the type the task returns (`returns`)."""
    result = await request.app.state.ctx.pipeline.handle(call_for(request, profile, task, body, options=options))
    assert isinstance(result, returns), f"{task.value} answered {type(result).__name__}"
    return result


async def stream(
    request: Request, profile: CompiledProfile, task: Task, body: BaseModel, options: Mapping[str, Any] | None = None
) -> AsyncIterator[dict]:
    """The chunks of a streamed task request (a refusal is raised here, before any byte is sent)."""
    call = call_for(request, profile, task, body, stream=True, options=options)
    return cast(AsyncIterator[dict], await request.app.state.ctx.pipeline.handle(call))


def priority_class(request: Request, profile: CompiledProfile) -> str:
    """The client's `X-Switchboard-Priority`, if the tenant's profile allows it; else the profile's default class."""
    priority = profile.spec.priority
    raw = request.headers.get(PRIORITY_HEADER)
    if raw is None:
        return priority.default_class.value
    try:
        klass = PriorityClass(raw.strip().lower())
    except ValueError:
        raise InvalidRequest(
            f"header {PRIORITY_HEADER}: one of {[c.value for c in PriorityClass]}, got {raw[:20]!r}",
            field=f"header.{PRIORITY_HEADER}",
        ) from None
    if klass not in priority.allowed_classes:
        raise Forbidden(
            f"priority class {klass.value!r} is not allowed for this tenant; allowed: "
            f"{[c.value for c in priority.allowed_classes]}"
        )
    return klass.value


def deadline_s(request: Request, ctx: RouterContext, task: Task) -> float:
    """The client's `X-Switchboard-Deadline-Ms`, or the task's default from settings."""
    raw = request.headers.get(DEADLINE_HEADER)
    if raw is None:
        return ctx.settings.deadlines.for_task(task.value)
    if not raw.isdigit() or not 1 <= int(raw) <= 3_600_000:
        raise InvalidRequest(
            f"header {DEADLINE_HEADER}: milliseconds from 1 to 3600000, got {raw[:20]!r}",
            field=f"header.{DEADLINE_HEADER}",
        )
    return int(raw) / 1000
