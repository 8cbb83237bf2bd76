"""TaskBackend that runs the engines in this process (threads): for tests and tools that need no Ray."""

from __future__ import annotations

import asyncio

from serving.tasks.catalog import Task
from serving.tasks.jobs import IntentJob, RedactJob
from serving.tasks.runner import TaskRunner


class LocalBackend:
    def __init__(self, runner: TaskRunner):
        self.runner = runner

    def served(self) -> frozenset[str]:
        tasks = set()
        if self.runner.redactor is not None:
            tasks.add(Task.REDACT.value)
        if self.runner.classifier is not None:
            tasks.add(Task.CLASSIFY_INTENT.value)
        return frozenset(tasks)

    async def redact(self, job: RedactJob) -> dict:
        return (await asyncio.to_thread(self.runner.redact_many, [job]))[0]

    async def classify_intent(self, job: IntentJob) -> dict:
        return (await asyncio.to_thread(self.runner.classify_many, [job]))[0]

    async def ready(self) -> dict[str, bool]:
        return {task: True for task in self.served()}
