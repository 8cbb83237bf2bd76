"""Task endpoints of the generative tasks: summarize, score-quality, reply (streaming as server-sent events)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

from fastapi import FastAPI, Request
from fastapi.responses import StreamingResponse

from serving.errors import SwitchboardError
from serving.router.auth import Tenant
from serving.router.calls import execute, stream
from serving.router.errors import SSE_DOC
from serving.vocabulary.catalog import Task
from serving.vocabulary.schemas import (
    ReplyRequest,
    ReplyResponse,
    ScoreQualityRequest,
    ScoreQualityResponse,
    SummarizeRequest,
    SummarizeResponse,
)


def register(app: FastAPI) -> None:
    @app.post(
        "/v1/tasks/summarize",
        tags=["tasks"],
        response_model=SummarizeResponse,
        summary="Summarize a support conversation with the tenant's summary instructions.",
    )
    async def summarize(body: SummarizeRequest, profile: Tenant, request: Request) -> SummarizeResponse:
        return await execute(request, profile, Task.SUMMARIZE, body, SummarizeResponse)

    @app.post(
        "/v1/tasks/score-quality",
        tags=["tasks"],
        response_model=ScoreQualityResponse,
        summary="Score the agent against the tenant's rubric: verdict, score and evidence per criterion.",
    )
    async def score_quality(body: ScoreQualityRequest, profile: Tenant, request: Request) -> ScoreQualityResponse:
        return await execute(request, profile, Task.SCORE_QUALITY, body, ScoreQualityResponse)

    @app.post(
        "/v1/tasks/reply",
        tags=["tasks"],
        response_model=ReplyResponse,
        responses=SSE_DOC,
        summary="Suggest the next agent reply, following the tenant's tone and policy; `stream: true` for SSE.",
    )
    async def reply(body: ReplyRequest, profile: Tenant, request: Request):
        if not body.stream:
            return await execute(request, profile, Task.REPLY, body, ReplyResponse)
        chunks = await stream(request, profile, Task.REPLY, body)
        return StreamingResponse(_sse(chunks), media_type="text/event-stream")


async def _sse(chunks: AsyncIterator[dict]) -> AsyncIterator[str]:
    try:
        async for chunk in chunks:
            yield f"data: {json.dumps(chunk)}\n\n"
    except SwitchboardError as exc:  # headers are sent already: the error travels as the last event
        yield f"data: {json.dumps({'error': {'type': exc.code, 'message': exc.message}})}\n\n"
