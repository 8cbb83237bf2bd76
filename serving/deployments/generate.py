"""Ray Serve deployment of a generative model (summarize, score-quality, reply); the engine batches internally."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

from serving.settings import TracingSettings
from serving.tasks import generation
from serving.tasks.jobs import GenerateJob
from serving.telemetry import tracing

_log = logging.getLogger(__name__)


def gated(options: dict[str, Any]) -> dict[str, Any]:
    """The engine options with the adapter dropped when the quality gate refuses it (the base keeps serving)."""
    from pathlib import Path

    from serving.models.adapters import check_adapter

    adapter = options.get("adapter")
    if not adapter:
        return options
    reason = check_adapter(Path(adapter).expanduser())
    if reason is None:
        return {**options, "adapter": str(Path(adapter).expanduser())}
    _log.warning("adapter %s refused: %s; serving the base model", adapter, reason)
    return {k: v for k, v in options.items() if k != "adapter"}


class GenerateDeployment:
    def __init__(self, engine: str, model: str, cache_dir: str, options: dict[str, Any] | None = None,
                 tracing_settings: dict | None = None):
        from serving.engines import create_engine
        from serving.models.store import ModelStore

        tracing.setup_tracing(TracingSettings(**(tracing_settings or {})), "generate")
        self.labels = {"engine": engine, "model": model}
        path = model if engine == "fake" else ModelStore(cache_dir).resolve(model)
        self.engine = create_engine(engine, path, **gated(options or {}))

    async def generate(self, job: GenerateJob) -> dict:
        tracing.record_queue_wait(job.traced.dispatched_at, job.traced.trace, **self.labels)
        with tracing.continued(job.traced.trace, "task generate", **self.labels):
            with tracing.step("engine generate", **self.labels):
                result = await generation.generate(self.engine, job)
                tracing.annotate(tokens_in=result["tokens_in"], tokens_out=result["tokens_out"],
                                 finish_reason=result["finish_reason"])
            return result

    async def stream(self, job: GenerateJob) -> AsyncIterator[dict]:
        tracing.record_queue_wait(job.traced.dispatched_at, job.traced.trace, **self.labels)
        with tracing.continued(job.traced.trace, "task generate (stream)", **self.labels):
            async for chunk in generation.stream(self.engine, job):
                if "delta" not in chunk:
                    tracing.annotate(tokens_in=chunk["tokens_in"], tokens_out=chunk["tokens_out"],
                                     finish_reason=chunk["finish_reason"])
                yield chunk

    async def ping(self) -> bool:
        return (await self.engine.health()).ready
