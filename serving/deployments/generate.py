"""Ray Serve deployment of a generative model (summarize, score-quality, reply); the engine batches internally."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from serving.tasks import generation
from serving.tasks.jobs import GenerateJob


class GenerateDeployment:
    def __init__(self, engine: str, model: str, cache_dir: str, options: dict[str, Any] | None = None):
        from serving.engines import create_engine
        from serving.models.store import ModelStore

        path = model if engine == "fake" else ModelStore(cache_dir).resolve(model)
        self.engine = create_engine(engine, path, **(options or {}))

    async def generate(self, job: GenerateJob) -> dict:
        return await generation.generate(self.engine, job)

    async def stream(self, job: GenerateJob) -> AsyncIterator[dict]:
        async for chunk in generation.stream(self.engine, job):
            yield chunk

    async def ping(self) -> bool:
        return (await self.engine.health()).ready
