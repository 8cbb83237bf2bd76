"""What the router sends to a task deployment: already authenticated, already redacted where the policy says so."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol

from serving.profiles.model import IntentTaxonomy
from serving.vocabulary.conversation import Turn


@dataclass(frozen=True)
class Traced:
    """Trace context (W3C headers) and dispatch time, set by the backend as a job crosses to a replica."""

    trace: dict | None = None
    dispatched_at: float | None = None


@dataclass(frozen=True)
class RedactJob:
    """One text (`text`; answered with one result dict), or a request's many (`texts`; answered with
    {"results": [...]} in order) sent as one call, so many utterances take one slot of the redact deployment."""

    text: str
    entities: tuple[str, ...]
    mode: str
    score_threshold: float
    salt: str
    traced: Traced = Traced()
    strict: bool = False
    texts: tuple[str, ...] = ()

    def utterances(self) -> tuple[str, ...]:
        return self.texts or (self.text,)


@dataclass(frozen=True)
class IntentJob:
    """One utterance (`text`; answered with one prediction dict), or a request's many (`texts`; answered with
    {"predictions": [...]} in order) sent as one call, so a 256-text request is one job in the replica's queue."""

    text: str
    taxonomy: IntentTaxonomy
    top_k: int
    traced: Traced = Traced()
    texts: tuple[str, ...] = ()

    def utterances(self) -> tuple[str, ...]:
        return self.texts or (self.text,)


@dataclass(frozen=True)
class GenerateJob:
    """One generation: chat messages already composed from the compiled instruction and redacted input."""

    messages: tuple[dict, ...]
    max_tokens: int = 256
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int | None = None
    json_schema: dict | None = None
    traced: Traced = Traced()


@dataclass(frozen=True)
class QualityJob:
    """One score-quality request for a trained head: the (redacted) turns, the rubric's criteria as (id,
    description) and the tenant glossary as (term, definition); answered with {"criteria": [{"criterion", "verdict",
    "evidence", "probability"}], "tokens_in"}."""

    turns: tuple[Turn, ...]
    criteria: tuple[tuple[str, str], ...]
    glossary: tuple[tuple[str, str], ...] = ()
    traced: Traced = Traced()
    absent: tuple[
        str, ...
    ] = ()  # criteria met by what the agent does not do (their text in `criteria` is the violation)


class TaskBackend(Protocol):
    """The router's view of the task deployments: Ray Serve handles in production, in-process objects in tests.

    Results are plain dicts shaped like the task's response (see serving.vocabulary.schemas), so that the router
    never depends on an engine's types.
    """

    async def redact(self, job: RedactJob) -> dict: ...

    async def classify_intent(self, job: IntentJob) -> dict: ...

    async def generate(self, task: str, job: GenerateJob) -> dict:
        """{"text", "tokens_in", "tokens_out", "finish_reason"}"""

    def stream(self, task: str, job: GenerateJob) -> AsyncIterator[dict]:
        """{"delta": str} chunks, then one {"text", "tokens_in", "tokens_out", "finish_reason"}."""

    async def score_quality(self, job: QualityJob) -> dict:
        """A trained head's verdicts (only for a task in `head_tasks()`)."""

    def head_tasks(self) -> frozenset[str]:
        """The served tasks a trained head answers (score_quality) instead of a generative model."""

    def served(self) -> frozenset[str]: ...

    async def ready(self) -> dict[str, bool]: ...

    async def replicas(self) -> dict[str, int]:
        """Running replicas per deployment name; {} where the backend cannot tell (in-process backends)."""
