"""TaskBackend that runs the engines in this process (threads): for tests and tools that need no Ray."""

from __future__ import annotations

import asyncio
from typing import Any

from serving.errors import NotFound
from serving.replica import generation
from serving.replica.runner import TaskRunner
from serving.tasks.jobs import GenerateJob, IntentJob, QualityJob, RedactJob
from serving.vocabulary.catalog import GENERATIVE, Task


class LocalBackend:
    def __init__(self, runner: TaskRunner, engine: Any = None):
        self.runner = runner
        self.engine = engine

    async def replicas(self) -> dict[str, int]:
        return {}

    def served(self) -> frozenset[str]:
        tasks = set()
        if self.runner.redactor is not None:
            tasks.add(Task.REDACT.value)
        if self.runner.classifier is not None:
            tasks.add(Task.CLASSIFY_INTENT.value)
        if self.engine is not None:
            tasks.update(t.value for t in GENERATIVE)
        return frozenset(tasks) | self.head_tasks()

    def head_tasks(self) -> frozenset[str]:
        return (
            frozenset({Task.SCORE_QUALITY.value}) if getattr(self.runner, "quality", None) is not None else frozenset()
        )

    async def score_quality(self, job: QualityJob) -> dict:
        if Task.SCORE_QUALITY.value not in self.head_tasks():
            raise NotFound("score-quality has no trained head on this platform")
        return await asyncio.to_thread(self.runner.score_quality, job)

    async def redact(self, job: RedactJob) -> dict:
        return (await asyncio.to_thread(self.runner.redact_many, [job]))[0]

    async def classify_intent(self, job: IntentJob) -> dict:
        return (await asyncio.to_thread(self.runner.classify_many, [job]))[0]

    async def generate(self, task: str, job: GenerateJob) -> dict:
        return await generation.generate(self._engine(task), job)

    async def stream(self, task: str, job: GenerateJob):
        async for chunk in generation.stream(self._engine(task), job):
            yield chunk

    def _engine(self, task: str) -> Any:
        if task not in self.served() or self.engine is None:
            raise NotFound(f"task {task!r} is not deployed on this platform")
        return self.engine

    async def ready(self) -> dict[str, bool]:
        return dict.fromkeys(self.served(), True)
