"""Task endpoints of the generative tasks: summarize, score-quality, reply (streaming as server-sent events)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

from fastapi import FastAPI, Request
from fastapi.responses import StreamingResponse

from serving.errors import SwitchboardError
from serving.router.auth import Tenant
from serving.router.errors import SSE_DOC
from serving.router.pipeline import admitted_stream, begin, deadline_s, execute, priority_class
from serving.tasks import service
from serving.tasks.catalog import Task
from serving.tasks.schemas import (
    ReplyRequest,
    ReplyResponse,
    ScoreQualityRequest,
    ScoreQualityResponse,
    SummarizeRequest,
    SummarizeResponse,
)


def register(app: FastAPI) -> None:
    @app.post("/v1/tasks/summarize", tags=["tasks"], response_model=SummarizeResponse,
              summary="Summarize a support conversation with the tenant's summary instructions.")
    async def summarize(body: SummarizeRequest, profile: Tenant, request: Request) -> SummarizeResponse:
        return await execute(request, profile, Task.SUMMARIZE, body)

    @app.post("/v1/tasks/score-quality", tags=["tasks"], response_model=ScoreQualityResponse,
              summary="Score the agent against the tenant's rubric: verdict, score and evidence per criterion.")
    async def score_quality(body: ScoreQualityRequest, profile: Tenant, request: Request) -> ScoreQualityResponse:
        return await execute(request, profile, Task.SCORE_QUALITY, body)

    @app.post("/v1/tasks/reply", tags=["tasks"], response_model=ReplyResponse, responses=SSE_DOC,
              summary="Suggest the next agent reply, following the tenant's tone and policy; `stream: true` for SSE.")
    async def reply(body: ReplyRequest, profile: Tenant, request: Request):
        if not body.stream:
            return await execute(request, profile, Task.REPLY, body)
        ctx = begin(request, profile, Task.REPLY, body)
        job, restorer = await service.reply_job(profile, body, ctx.backend)
        chunks = await admitted_stream(ctx, profile, Task.REPLY, service.stream_reply(profile, job, ctx.backend),
                                       priority_class(request, profile), deadline_s(request, ctx, Task.REPLY))
        return StreamingResponse(_sse(service.restoring(chunks, restorer)), media_type="text/event-stream")


async def _sse(chunks: AsyncIterator[dict]) -> AsyncIterator[str]:
    try:
        async for chunk in chunks:
            yield f"data: {json.dumps(chunk)}\n\n"
    except SwitchboardError as exc:  # headers are sent already: the error travels as the last event
        yield f"data: {json.dumps({'error': {'type': exc.code, 'message': exc.message}})}\n\n"
