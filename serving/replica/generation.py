"""Runs a GenerateJob on an Engine and shapes the result as the dicts the router reads (no Ray, no HTTP)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from serving.tasks.jobs import GenerateJob


def to_request(job: GenerateJob) -> Any:
    from serving.engines import GenerationRequest, SamplingParams

    sampling = SamplingParams(max_tokens=job.max_tokens, temperature=job.temperature, top_p=job.top_p, seed=job.seed)
    return GenerationRequest(messages=[dict(m) for m in job.messages], sampling=sampling, json_schema=job.json_schema)


def result_dict(result: Any) -> dict:
    return {
        "text": result.text,
        "tokens_in": result.tokens_in,
        "tokens_out": result.tokens_out,
        "finish_reason": result.finish_reason,
    }


async def generate(engine: Any, job: GenerateJob) -> dict:
    return result_dict(await engine.generate(to_request(job)))


async def stream(engine: Any, job: GenerateJob) -> AsyncIterator[dict]:
    async for item in engine.stream(to_request(job)):
        yield {"delta": item} if isinstance(item, str) else result_dict(item)
