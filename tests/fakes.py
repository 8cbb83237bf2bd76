"""Test doubles for what cannot or need not run in a router test. Each says what it stands in for."""

from __future__ import annotations

import re

from serving.replica import generation
from serving.vocabulary.catalog import GENERATIVE

EMAIL = re.compile(r"\S+@\S+\.\w+")


class RecordingBackend:
    """Stands in for the task deployments behind the router: records what reached them and answers like them.

    Redaction replaces e-mail addresses only (Presidio has its own tests); classification answers the first label of
    the taxonomy it was sent. Generation, when an engine is given, runs through the real job -> engine code path
    (normally with the deterministic FakeEngine); `scripted` texts, when set, are returned instead, one per call.
    """

    def __init__(self, engine=None):
        self.engine = engine
        self.jobs = []
        self.fail_with = None
        self.scripted: list[str] = []

    def served(self):
        tasks = {"redact", "classify-intent"}
        if self.engine is not None:
            tasks.update(t.value for t in GENERATIVE)
        return frozenset(tasks)

    def head_tasks(self):
        return frozenset()  # as a platform without a trained head: score-quality goes to `generate`

    async def ready(self):
        return {task: True for task in self.served()}

    async def replicas(self):
        return {}

    async def redact(self, job):
        self.jobs.append(("redact", job))
        if self.fail_with:
            raise self.fail_with
        if job.texts:
            return {"results": [self._redacted(t) for t in job.texts]}
        return self._redacted(job.text)

    @staticmethod
    def _redacted(text):
        entities = [{"type": "EMAIL_ADDRESS", "start": m.start(), "end": m.end(), "score": 1.0, "replacement": "<EMAIL_ADDRESS_1>"}
                    for m in EMAIL.finditer(text)]
        return {"text": EMAIL.sub("<EMAIL_ADDRESS_1>", text), "entities": entities}

    async def classify_intent(self, job):
        self.jobs.append(("classify-intent", job))
        first = job.taxonomy.labels[0].name
        answer = {"label": first, "score": 0.9, "top_k": [{"label": first, "score": 0.9}][: job.top_k]}
        return {"predictions": [answer for _ in job.texts]} if job.texts else answer

    async def generate(self, task, job):
        self.jobs.append((task, job))
        if self.scripted:
            text = self.scripted.pop(0)
            return {"text": text, "tokens_in": 10, "tokens_out": len(text.split()), "finish_reason": "stop"}
        return await generation.generate(self.engine, job)

    async def stream(self, task, job):
        self.jobs.append((task, job))
        async for chunk in generation.stream(self.engine, job):
            yield chunk
