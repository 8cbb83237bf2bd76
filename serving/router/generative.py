"""Task endpoints of the generative tasks: summarize, score-quality, reply (streaming as server-sent events)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

from fastapi import FastAPI, Request
from fastapi.responses import StreamingResponse

from serving.errors import SwitchboardError, TaskFailed
from serving.profiles.compiler import CompiledProfile
from serving.router import pipeline
from serving.router.auth import Tenant
from serving.router.context import RouterContext
from serving.tasks.catalog import Task
from serving.tasks.conversation import ConversationInput, Turn, render
from serving.tasks.jobs import GenerateJob
from serving.tasks.prompts import compose
from serving.tasks.quality import output_schema, parse_scores
from serving.tasks.schemas import (
    CriterionResult,
    ReplyRequest,
    ReplyResponse,
    ScoreQualityRequest,
    ScoreQualityResponse,
    SummarizeRequest,
    SummarizeResponse,
    Usage,
)
from serving.telemetry import tracing

DEFAULT_MAX_TOKENS = {Task.SUMMARIZE: 160, Task.SCORE_QUALITY: 400, Task.REPLY: 160}
SCORE_ATTEMPTS = 2


async def prepare(request: Request, profile: CompiledProfile, task: Task, body: ConversationInput) -> tuple[RouterContext, list[Turn], int]:
    turns = body.as_turns()
    ctx = pipeline.begin(request, profile, task, sum(len(t.text) for t in turns))
    redacted, count = await pipeline.redacted_turns(ctx, profile, turns)
    return ctx, redacted, count


def job_for(profile: CompiledProfile, task: Task, turns: list[Turn], max_tokens: int | None, **options) -> GenerateJob:
    text, tokens = pipeline.instruction(profile, task)
    rubric = [c.id for c in profile.spec.rubric] if task is Task.SCORE_QUALITY else None
    with tracing.step("compose prompt", instruction_tokens=tokens):
        messages = compose(task, text, turns, rubric)
    return GenerateJob(tuple(messages), max_tokens or DEFAULT_MAX_TOKENS[task], **options)


def register(app: FastAPI) -> None:
    @app.post("/v1/tasks/summarize", tags=["tasks"], response_model=SummarizeResponse,
              summary="Summarize a support conversation with the tenant's summary instructions.")
    async def summarize(body: SummarizeRequest, profile: Tenant, request: Request) -> SummarizeResponse:
        ctx, turns, redacted = await prepare(request, profile, Task.SUMMARIZE, body)
        result = await ctx.backend.generate(Task.SUMMARIZE.value, job_for(profile, Task.SUMMARIZE, turns, body.max_tokens))
        return SummarizeResponse(tenant=profile.tenant_id, profile_version=profile.version, summary=result["text"].strip(),
                                 finish_reason=result["finish_reason"], redacted_entities=redacted,
                                 usage=pipeline.usage(profile, Task.SUMMARIZE, result))

    @app.post("/v1/tasks/score-quality", tags=["tasks"], response_model=ScoreQualityResponse,
              summary="Score the agent against the tenant's rubric: verdict, score and evidence per criterion.")
    async def score_quality(body: ScoreQualityRequest, profile: Tenant, request: Request) -> ScoreQualityResponse:
        ctx, turns, redacted = await prepare(request, profile, Task.SCORE_QUALITY, body)
        return await _score(ctx, profile, turns, redacted)

    @app.post("/v1/tasks/reply", tags=["tasks"], response_model=ReplyResponse,
              summary="Suggest the next agent reply, following the tenant's tone and policy; `stream: true` for SSE.")
    async def reply(body: ReplyRequest, profile: Tenant, request: Request):
        ctx, turns, redacted = await prepare(request, profile, Task.REPLY, body)
        job = job_for(profile, Task.REPLY, turns, body.max_tokens)
        if body.stream:
            return StreamingResponse(_sse(ctx, profile, job), media_type="text/event-stream")
        result = await ctx.backend.generate(Task.REPLY.value, job)
        return ReplyResponse(tenant=profile.tenant_id, profile_version=profile.version, reply=result["text"].strip(),
                             finish_reason=result["finish_reason"], redacted_entities=redacted,
                             usage=pipeline.usage(profile, Task.REPLY, result))


async def _score(ctx: RouterContext, profile: CompiledProfile, turns: list[Turn], redacted: int) -> ScoreQualityResponse:
    rubric = list(profile.spec.rubric)
    schema = output_schema(rubric)
    tokens_in = tokens_out = 0
    for attempt in range(1, SCORE_ATTEMPTS + 1):
        # A second attempt samples, so that it does not repeat the first one's invalid answer.
        options = {"json_schema": schema} if attempt == 1 else {"json_schema": schema, "temperature": 0.7, "seed": attempt}
        result = await ctx.backend.generate(Task.SCORE_QUALITY.value, job_for(profile, Task.SCORE_QUALITY, turns, None, **options))
        tokens_in, tokens_out = tokens_in + result["tokens_in"], tokens_out + result["tokens_out"]
        try:
            scores = parse_scores(result["text"], rubric, render(turns))
            break
        except TaskFailed as exc:
            if attempt == SCORE_ATTEMPTS:
                raise TaskFailed(f"{exc.message} (after {attempt} attempts)") from None
    usage = Usage(instruction_tokens=pipeline.instruction(profile, Task.SCORE_QUALITY)[1], tokens_in=tokens_in, tokens_out=tokens_out)
    criteria = [CriterionResult(criterion=c.criterion, verdict=c.verdict, score=c.score, weight=c.weight, evidence=c.evidence)
                for c in scores.criteria]
    return ScoreQualityResponse(tenant=profile.tenant_id, profile_version=profile.version, criteria=criteria,
                                overall=scores.overall, attempts=attempt, redacted_entities=redacted, usage=usage)


async def _sse(ctx: RouterContext, profile: CompiledProfile, job: GenerateJob) -> AsyncIterator[str]:
    try:
        async for chunk in ctx.backend.stream(Task.REPLY.value, job):
            if "delta" in chunk:
                yield f"data: {json.dumps({'delta': chunk['delta']})}\n\n"
            else:
                usage = pipeline.usage(profile, Task.REPLY, chunk).model_dump()
                yield f"data: {json.dumps({'done': True, 'finish_reason': chunk['finish_reason'], 'usage': usage})}\n\n"
    except SwitchboardError as exc:  # headers are sent already: the error travels as the last event
        yield f"data: {json.dumps({'error': {'type': exc.code, 'message': exc.message}})}\n\n"
