"""OpenAI-compatible `POST /v1/chat/completions` (and `GET /v1/models`), where `model` names a task: `switchboard/reply`.

The messages become the task's own request body, which runs through the one request path (serving.pipeline); the
task's answer is then shaped as a chat completion (score-quality's as JSON)."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Literal

from fastapi import FastAPI, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, StrictBool

from serving.errors import InvalidRequest, NotFound, SwitchboardError
from serving.router.auth import Tenant
from serving.router.calls import execute, stream
from serving.router.errors import SSE_DOC
from serving.vocabulary.catalog import GENERATIVE, Task
from serving.vocabulary.conversation import Speaker, Turn
from serving.vocabulary.schemas import (
    REQUEST_BODIES,
    MaxTokens,
    One,
    ReplyResponse,
    ScoreQualityResponse,
    SummarizeResponse,
    Temperature,
)

PREFIX = "switchboard/"
ROLES = {"user": Speaker.CUSTOMER, "assistant": Speaker.AGENT}


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")

    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | None = Field(None, max_length=200_000)


class ChatCompletionRequest(BaseModel):
    """The OpenAI request body; parameters this platform does not use are accepted and ignored."""

    # `contains` states in the OpenAPI document what the handler needs: a user or assistant message with content.
    model_config = ConfigDict(
        extra="ignore",
        json_schema_extra=lambda schema: schema["properties"]["messages"].update(
            contains={
                "required": ["role", "content"],
                "properties": {"role": {"enum": ["user", "assistant"]}, "content": {"type": "string", "minLength": 1}},
            }
        ),
    )

    model: str = Field(examples=["switchboard/reply"])
    messages: list[ChatMessage] = Field(min_length=1, max_length=500)
    stream: StrictBool = False
    max_tokens: MaxTokens | None = None
    max_completion_tokens: MaxTokens | None = None
    temperature: Temperature | None = None
    n: One = 1


def openai_models() -> list[str]:
    return [PREFIX + t.value for t in GENERATIVE]


def register(app: FastAPI) -> None:
    @app.get("/v1/models", tags=["openai"], summary="Tasks usable as OpenAI `model` names.")
    async def models(profile: Tenant, request: Request) -> dict:
        served = request.app.state.ctx.backend.served()
        data = [
            {"id": PREFIX + t.value, "object": "model", "created": 0, "owned_by": "switchboard"}
            for t in GENERATIVE
            if t.value in served and t in profile.spec.tasks
        ]
        return {"object": "list", "data": data}

    @app.post(
        "/v1/chat/completions",
        tags=["openai"],
        responses=SSE_DOC,
        summary="OpenAI-compatible chat completions; `model` names a task.",
    )
    async def chat_completions(body: ChatCompletionRequest, profile: Tenant, request: Request):
        task = _task(body.model)
        if body.stream and task is Task.SCORE_QUALITY:
            raise InvalidRequest("stream is not supported for switchboard/score-quality", field="stream")
        task_body = REQUEST_BODIES[task](
            turns=_turns(body.messages), max_tokens=body.max_completion_tokens or body.max_tokens
        )
        options = {"temperature": body.temperature} if body.temperature is not None else {}
        if body.stream:
            chunks = await stream(request, profile, task, task_body, options)
            return StreamingResponse(_chunks(chunks, body.model), media_type="text/event-stream")
        return _completion(body.model, _result(await execute(request, profile, task, task_body, BaseModel, options)))


def _result(response: BaseModel) -> dict:
    """The task's answer as the completion's text, finish reason and tokens; score-quality's as JSON."""
    if isinstance(response, ScoreQualityResponse):
        content = json.dumps({"criteria": [c.model_dump() for c in response.criteria], "overall": response.overall})
        return {"text": content, "finish_reason": "stop", **response.usage.model_dump()}
    assert isinstance(response, SummarizeResponse | ReplyResponse)
    text = response.summary if isinstance(response, SummarizeResponse) else response.reply
    return {"text": text, "finish_reason": response.finish_reason, **response.usage.model_dump()}


def _task(model: str) -> Task:
    name = model.removeprefix(PREFIX)
    for task in GENERATIVE:
        if task.value == name:
            return task
    raise NotFound(f"model {model!r} does not exist; models: {openai_models()}", field="model")


def _turns(messages: list[ChatMessage]) -> list[Turn]:
    """User and assistant messages become the conversation; the tenant's compiled instruction is the system prompt."""
    turns = [Turn(speaker=ROLES[m.role], text=m.content) for m in messages if m.role in ROLES and m.content]
    if not turns:
        raise InvalidRequest(
            "messages: at least one user or assistant message with content is required", field="messages"
        )
    return turns


def _completion(model: str, result: dict) -> dict:
    usage = {"prompt_tokens": result.get("tokens_in", 0), "completion_tokens": result.get("tokens_out", 0)}
    usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": result["text"].strip()},
                "finish_reason": result.get("finish_reason", "stop"),
            }
        ],
        "usage": usage,
    }


async def _chunks(chunks: AsyncIterator[dict], model: str) -> AsyncIterator[str]:
    base = {
        "id": f"chatcmpl-{uuid.uuid4().hex}",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
    }

    def event(delta: dict, finish: str | None = None) -> str:
        return f"data: {json.dumps({**base, 'choices': [{'index': 0, 'delta': delta, 'finish_reason': finish}]})}\n\n"

    yield event({"role": "assistant", "content": ""})
    try:
        async for chunk in chunks:
            yield (
                event({"content": chunk["delta"]})
                if "delta" in chunk
                else event({}, chunk.get("finish_reason", "stop"))
            )
    except SwitchboardError as exc:
        yield f"data: {json.dumps({'error': {'message': exc.message, 'type': exc.code, 'param': None, 'code': exc.code}})}\n\n"
    yield "data: [DONE]\n\n"
