"""Ray Serve deployments of the in-process tasks: redaction (Presidio) and intent classification (MiniLM)."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from ray import serve

from serving.errors import SwitchboardError
from serving.replica.runner import TaskRunner
from serving.settings import TracingSettings
from serving.tasks.jobs import IntentJob, QualityJob, RedactJob
from serving.telemetry import tracing

_log = logging.getLogger(__name__)


class RedactDeployment:
    """Presidio + spaCy + customer-service recognizers; batches concurrent requests into one spaCy pass."""

    def __init__(
        self,
        spacy_model: str,
        batch_size: int = 16,
        batch_wait_s: float = 0.005,
        tracing_settings: dict | None = None,
        pii_model: str = "none",
    ):
        from serving.redaction import Redactor

        tracing.setup_tracing(TracingSettings(**(tracing_settings or {})), "redact")
        self.runner = TaskRunner(redactor=Redactor(spacy_model=spacy_model, pii_model=pii_model))
        # ray's stubs type a @serve.batch method as a plain callable; at run time it carries these setters.
        self.redact.set_max_batch_size(batch_size)  # type: ignore[attr-defined]
        self.redact.set_batch_wait_timeout_s(batch_wait_s)  # type: ignore[attr-defined]

    @serve.batch(max_batch_size=16, batch_wait_timeout_s=0.005)
    async def redact(self, jobs: list[RedactJob]) -> list[dict]:
        # Blocking NLP work leaves the event loop free for queue metrics and new requests.
        with tracing.batch_spans(jobs, "task redact", task="redact", engine="presidio"):
            return await asyncio.to_thread(self.runner.redact_many, jobs)

    async def ping(self) -> bool:
        return True


class IntentDeployment:
    """MiniLM embeddings against each tenant's taxonomy (index cached per taxonomy version); batched.

    With `profiles` (the router's profile source, see `intent_profile_source`) the replica reads the profiles itself
    and builds every taxonomy's index before it reports ready, then again whenever a profile changes, so no request
    pays for building one."""

    def __init__(
        self,
        embedding_model: str,
        batch_size: int = 32,
        batch_wait_s: float = 0.005,
        tracing_settings: dict | None = None,
        profiles: dict | None = None,
        precision: str = "auto",
        threads: int | None = None,
        quality_head: str | None = None,
    ):
        from serving.intent import IntentClassifier, SentenceEmbedder
        from serving.intent.warmup import start_warming

        tracing.setup_tracing(TracingSettings(**(tracing_settings or {})), "classify-intent")
        if threads:
            import torch

            torch.set_num_threads(threads)
        classifier = IntentClassifier(SentenceEmbedder(embedding_model, precision=precision))
        quality = None
        if quality_head:  # the score-quality head, on this replica's encoder when it is the head's base model
            from serving.quality import load_head

            quality = load_head(
                quality_head, classifier.embedder, lambda base: SentenceEmbedder(base, precision=precision)
            )
        self.runner = TaskRunner(classifier=classifier, quality=quality)
        # (ray's stubs miss these setters, as above)
        self.classify.set_max_batch_size(batch_size)  # type: ignore[attr-defined]
        self.classify.set_batch_wait_timeout_s(batch_wait_s)  # type: ignore[attr-defined]
        self._followers: list[asyncio.Task] = []
        if profiles is not None:
            source = intent_profile_source(profiles)
            self.warmer = start_warming(
                classifier, source, source.registry, float(profiles.get("interval_s", 0.5)), spawn=self._follow
            )

    def _follow(self, coroutine) -> None:
        """Run a profile follower on the replica's event loop (the constructor runs on it)."""
        self._followers.append(asyncio.get_running_loop().create_task(coroutine))

    @serve.batch(max_batch_size=32, batch_wait_timeout_s=0.005)
    async def classify(self, jobs: list[IntentJob]) -> list[dict]:
        with tracing.batch_spans(jobs, "task classify-intent", task="classify-intent", engine="embedding"):
            return await asyncio.to_thread(self.runner.classify_many, jobs)

    async def score_quality(self, job: QualityJob) -> dict:
        """score-quality by the trained head (one conversation, every criterion, in one encoder pass)."""
        with tracing.batch_spans([job], "task score-quality", task="score-quality", engine="quality-head"):
            return await asyncio.to_thread(self.runner.score_quality, job)

    async def ping(self) -> bool:
        return True


class QualityHeadDeployment:
    """score-quality by the trained head on its own sentence encoder (a cluster's `quality-head` TaskModel; local mode
    hosts the head in the classify replica instead). The head serves only if its held-out figures pass the quality
    gate, else the last accepted head (`fallback`); with neither, score-quality answers 503 saying why. The head runs
    on the encoder its card names; `embedding_model` (the TaskModel's `model`) should be that one (a warning if not)."""

    def __init__(
        self,
        embedding_model: str,
        head: str,
        cache_dir: str,
        fallback: str | None = None,
        tracing_settings: dict | None = None,
        precision: str = "auto",
        threads: int | None = None,
        allow_network: bool = False,
        gate_report: dict[str, str] | None = None,
    ):
        from serving.deployments.gate_report import report, verdict
        from serving.intent import SentenceEmbedder
        from serving.quality import load_head

        tracing.setup_tracing(TracingSettings(**(tracing_settings or {})), "score-quality")
        if threads:
            import torch

            torch.set_num_threads(threads)
        self.choice = choose_head(head, fallback, cache_dir, allow_network)
        report(gate_report, verdict(head, fallback, self.choice, base="none"))
        quality = None
        if self.choice.serving is not None:  # the head runs on the encoder its card names, loaded once
            quality = load_head(self.choice.serving, None, lambda base: SentenceEmbedder(base, precision=precision))
            if quality.base_model != embedding_model:
                _log.warning(
                    "score-quality: the TaskModel's model %s is not the head's base %s; the head's base serves",
                    embedding_model,
                    quality.base_model,
                )
        self.runner = TaskRunner(quality=quality, quality_refused=self.choice.reason)

    async def score_quality(self, job: QualityJob) -> dict:
        with tracing.batch_spans([job], "task score-quality", task="score-quality", engine="quality-head"):
            return await asyncio.to_thread(self.runner.score_quality, job)

    async def adapter_status(self) -> dict:
        """Which head serves and why (requestedAdapter, servingAdapter, adapterAccepted, adapterReason)."""
        return self.choice.status()

    async def ping(self) -> bool:
        return True


def choose_head(requested: str, fallback: str | None, cache_dir: str, allow_network: bool = False):
    """The AdapterChoice for a score-quality head: `requested` when its held-out figures pass the quality gate, else
    `fallback` when it does, else none. s3://, gs:// and pvc:// refs are fetched or found through the model store; a
    head that cannot be fetched is refused like one that fails the gate."""
    from serving.models.adapters import choose_adapter
    from serving.models.store import ModelStore
    from serving.quality import gate, resolve_folder

    def local(ref: str | None) -> str | None:
        if not ref:
            return None
        try:
            if "://" in ref:
                return str(ModelStore(cache_dir, allow_network=allow_network).resolve(ref))
            return str(resolve_folder(ref))
        except (SwitchboardError, OSError):
            return ref  # not fetched or not there: the gate refuses it, saying what is missing

    return choose_adapter(local(requested), local(fallback), check=gate, none_left="no accepted head to fall back to")


def intent_profile_source(args: dict):
    """The profiles a classify replica warms its indexes from: the router's folder, or the namespace's TenantProfiles.
    API keys are not read here (only taxonomies are used): a per-tenant stand-in fills the registry's key slot."""
    from serving.profiles import ProfileRegistry, approximate_counter
    from serving.profiles.source import FolderProfileSource

    registry = ProfileRegistry(approximate_counter, resolve_key=lambda origin, spec: f"unused:{spec.tenant_id}")
    if args.get("source") == "kubernetes":
        from kubernetes import config

        from serving.profiles.kubernetes import KubernetesProfileSource

        config.load_incluster_config()  # the Ray pod's ServiceAccount, as the router's
        return KubernetesProfileSource(registry, args["namespace"])
    return FolderProfileSource(Path(args["folder"]), registry, float(args.get("interval_s", 0.5)))
