"""Ray Serve deployments of the in-process tasks: redaction (Presidio) and intent classification (MiniLM)."""

from __future__ import annotations

import asyncio

from ray import serve

from serving.settings import TracingSettings
from serving.tasks.jobs import IntentJob, RedactJob
from serving.tasks.runner import TaskRunner
from serving.telemetry import tracing


class RedactDeployment:
    """Presidio + spaCy + customer-service recognizers; batches concurrent requests into one spaCy pass."""

    def __init__(self, spacy_model: str, batch_size: int = 16, batch_wait_s: float = 0.005, tracing_settings: dict | None = None,
                 pii_model: str = "none"):
        from serving.redaction import Redactor

        tracing.setup_tracing(TracingSettings(**(tracing_settings or {})), "redact")
        self.runner = TaskRunner(redactor=Redactor(spacy_model=spacy_model, pii_model=pii_model))
        self.redact.set_max_batch_size(batch_size)
        self.redact.set_batch_wait_timeout_s(batch_wait_s)

    @serve.batch(max_batch_size=16, batch_wait_timeout_s=0.005)
    async def redact(self, jobs: list[RedactJob]) -> list[dict]:
        # Blocking NLP work leaves the event loop free for queue metrics and new requests.
        with tracing.batch_spans(jobs, "task redact", task="redact", engine="presidio"):
            return await asyncio.to_thread(self.runner.redact_many, jobs)

    async def ping(self) -> bool:
        return True


class IntentDeployment:
    """MiniLM embeddings against each tenant's taxonomy (index cached per taxonomy version); batched."""

    def __init__(self, embedding_model: str, batch_size: int = 32, batch_wait_s: float = 0.005,
                 tracing_settings: dict | None = None):
        from serving.intent import IntentClassifier, SentenceEmbedder

        tracing.setup_tracing(TracingSettings(**(tracing_settings or {})), "classify-intent")
        self.runner = TaskRunner(classifier=IntentClassifier(SentenceEmbedder(embedding_model)))
        self.classify.set_max_batch_size(batch_size)
        self.classify.set_batch_wait_timeout_s(batch_wait_s)

    @serve.batch(max_batch_size=32, batch_wait_timeout_s=0.005)
    async def classify(self, jobs: list[IntentJob]) -> list[dict]:
        with tracing.batch_spans(jobs, "task classify-intent", task="classify-intent", engine="embedding"):
            return await asyncio.to_thread(self.runner.classify_many, jobs)

    async def ping(self) -> bool:
        return True
