"""TenantProfile: the pydantic schema of a tenant's profile, the same one the TenantProfile CRD's `spec` uses."""

from __future__ import annotations

import hashlib
from enum import Enum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator, model_validator
from pydantic.alias_generators import to_camel

from serving.vocabulary.catalog import GENERATIVE, Task
from serving.vocabulary.entities import DEFAULT_ENTITIES, SUPPORTED_ENTITIES
from serving.vocabulary.kinds import PriorityClass

API_VERSION = "switchboard.dev/v1alpha1"
KIND = "TenantProfile"

Name = Annotated[str, StringConstraints(pattern=r"^[a-z0-9]([a-z0-9_-]{0,61}[a-z0-9])?$")]
ShortText = Annotated[str, StringConstraints(min_length=1, max_length=500, strip_whitespace=True)]
Instruction = Annotated[str, StringConstraints(min_length=1, max_length=2000, strip_whitespace=True)]


class _Spec(BaseModel):
    """camelCase on the wire (CRD convention), snake_case in Python; unknown fields are errors."""

    model_config = ConfigDict(extra="forbid", alias_generator=to_camel, populate_by_name=True, frozen=True)


class SecretKeyRef(_Spec):
    name: Name = Field(description="Secret in the profile's namespace.")
    key: str = Field("api-key", min_length=1, max_length=253, description="Key inside the Secret.")


class ApiKey(_Spec):
    """Exactly one of: the key's SHA-256 (local mode) or a Secret holding the key (cluster)."""

    sha256: str | None = Field(
        None, pattern=r"^[0-9a-f]{64}$", description="Hex SHA-256 of the API key; never the key."
    )
    secret_ref: SecretKeyRef | None = Field(None, description="Secret that holds the key (Kubernetes).")

    @model_validator(mode="after")
    def _exactly_one(self) -> "ApiKey":
        if (self.sha256 is None) == (self.secret_ref is None):
            raise ValueError("set exactly one of sha256 or secretRef")
        return self


class Priority(_Spec):
    default_class: PriorityClass = Field(PriorityClass.INTERACTIVE, description="Class of requests that name none.")
    allowed_classes: list[PriorityClass] = Field(
        default_factory=lambda: [PriorityClass.INTERACTIVE, PriorityClass.BATCH],
        min_length=1,
        description="Classes a request may ask for.",
    )
    weight: float = Field(1.0, gt=0, le=1000, description="Share of contended capacity relative to other tenants.")

    @model_validator(mode="after")
    def _default_allowed(self) -> "Priority":
        if self.default_class not in self.allowed_classes:
            raise ValueError(f"defaultClass {self.default_class.value!r} must be one of allowedClasses")
        return self


class Limits(_Spec):
    requests_per_second: float = Field(50, gt=0, le=100_000)
    concurrent_requests: int = Field(32, ge=1, le=100_000)
    tokens_per_minute: int = Field(200_000, ge=1, le=1_000_000_000)


class GlossaryEntry(_Spec):
    term: ShortText
    definition: ShortText


class Intent(_Spec):
    name: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_./ -]{0,99}$")]
    description: ShortText
    examples: list[ShortText] = Field(default_factory=list, max_length=50)


class IntentTaxonomy(_Spec):
    threshold: float = Field(
        0.3,
        ge=0,
        le=1,
        description="Below this score (0..1: the best label's mean of nearest-"
        "example and prototype cosine, or the head's probability) the answer is `none`, out of "
        "scope. Pick it with `switchboard calibrate PROFILE`.",
    )
    top_k: int = Field(3, ge=1, le=20, description="How many ranked labels a response carries by default.")
    labels: list[Intent] = Field(min_length=2, max_length=1000, description="The tenant's intents.")
    head: str | None = Field(None, description="Optional trained classifier head artifact (path or URI).")

    @field_validator("labels")
    @classmethod
    def _unique_names(cls, labels: list[Intent]) -> list[Intent]:
        seen: set[str] = set()
        for i, intent in enumerate(labels):
            if intent.name in seen:
                raise ValueError(f"duplicate intent name {intent.name!r} at labels[{i}]")
            seen.add(intent.name)
        return labels


class Criterion(_Spec):
    id: Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$")]
    description: ShortText
    weight: float = Field(1.0, gt=0, le=100)
    violation: ShortText | None = Field(
        None,
        description=(
            "For a criterion met by what the agent does not do (e.g. compliance): the behaviour that breaks it, such as "
            "'The agent gives investment advice.' The trained score-quality head then calls the criterion met unless an "
            "agent sentence does this, and quotes that sentence as the evidence of the not_met."
        ),
    )


class RedactionMode(str, Enum):
    MASK = "mask"
    PLACEHOLDER = "placeholder"
    HASH = "hash"


class RedactionPolicy(_Spec):
    entities: list[str] = Field(
        default_factory=lambda: list(DEFAULT_ENTITIES),
        min_length=1,
        description="Entity types to redact; the default is the complete contact-centre set.",
    )
    mode: RedactionMode = RedactionMode.PLACEHOLDER
    score_threshold: float = Field(0.4, ge=0, le=1, description="Detections below this confidence are ignored.")
    apply_to_tasks: bool = Field(True, description="Redact the input of every other task before a model sees it.")
    strict: bool = Field(False, description="Also redact every remaining run of 4 or more digits (PCI style).")
    restore: bool = Field(
        False,
        description="Put the original values back into generative answers for the caller "
        "(placeholder mode only; the model never sees them).",
    )

    @model_validator(mode="after")
    def _restore_needs_placeholders(self) -> "RedactionPolicy":
        if self.restore and self.mode is not RedactionMode.PLACEHOLDER:
            raise ValueError(
                f"restore: needs mode placeholder (a {self.mode.value} value cannot be put back); "
                "set mode: placeholder or restore: false"
            )
        if self.restore and not self.apply_to_tasks:
            raise ValueError("restore: needs applyToTasks: true (nothing is redacted before the model to put back)")
        return self

    @field_validator("entities")
    @classmethod
    def _known_entities(cls, entities: list[str]) -> list[str]:
        unknown = sorted(set(entities) - set(SUPPORTED_ENTITIES))
        if unknown:
            raise ValueError(f"unknown entity types {unknown}; supported: {list(SUPPORTED_ENTITIES)}")
        if len(set(entities)) != len(entities):
            raise ValueError("entity types must not repeat")
        return entities


class TenantProfileSpec(_Spec):
    tenant_id: Name = Field(description="Stable tenant identifier, used in metrics and traces.")
    display_name: ShortText | None = None
    api_key: ApiKey
    tasks: list[Task] = Field(
        default_factory=lambda: list(Task), min_length=1, description="Tasks this tenant may call."
    )
    instructions: dict[Task, Instruction] = Field(default_factory=dict, description="Short per-task instruction.")
    glossary: list[GlossaryEntry] = Field(default_factory=list, max_length=200)
    intents: IntentTaxonomy | None = None
    rubric: list[Criterion] = Field(default_factory=list, max_length=100)
    redaction: RedactionPolicy = RedactionPolicy()
    limits: Limits = Limits()
    priority: Priority = Priority()

    @field_validator("instructions")
    @classmethod
    def _generative_only(cls, instructions: dict[Task, str]) -> dict[Task, str]:
        wrong = [t.value for t in instructions if t not in GENERATIVE]
        if wrong:
            raise ValueError(f"instructions apply to {[t.value for t in GENERATIVE]} only, not {wrong}")
        return instructions

    @field_validator("glossary")
    @classmethod
    def _unique_terms(cls, glossary: list[GlossaryEntry]) -> list[GlossaryEntry]:
        return _unique(glossary, lambda e: e.term.lower(), "glossary term")

    @field_validator("rubric")
    @classmethod
    def _unique_criteria(cls, rubric: list[Criterion]) -> list[Criterion]:
        return _unique(rubric, lambda c: c.id, "rubric criterion id")

    @model_validator(mode="after")
    def _tasks_have_what_they_need(self) -> "TenantProfileSpec":
        if Task.CLASSIFY_INTENT in self.tasks and self.intents is None:
            raise ValueError("intents: required when tasks include classify-intent (or drop it from tasks)")
        if Task.SCORE_QUALITY in self.tasks and not self.rubric:
            raise ValueError("rubric: required when tasks include score-quality (or drop it from tasks)")
        return self


def _unique(items, key, what):
    seen = set()
    for i, item in enumerate(items):
        k = key(item)
        if k in seen:
            raise ValueError(f"duplicate {what} {k!r} at [{i}]")
        seen.add(k)
    return items


class Metadata(BaseModel):
    """The part of Kubernetes object metadata a profile file carries; other keys are tolerated."""

    model_config = ConfigDict(extra="allow")

    name: Name
    namespace: str | None = None
    generation: int | None = None
    resource_version: str | None = Field(None, alias="resourceVersion")


class TenantProfileDocument(BaseModel):
    """A whole TenantProfile object as written in YAML or returned by the API server."""

    model_config = ConfigDict(extra="ignore")

    api_version: str = Field(alias="apiVersion")
    kind: str
    metadata: Metadata
    spec: TenantProfileSpec

    @field_validator("api_version")
    @classmethod
    def _api_version(cls, value: str) -> str:
        if value != API_VERSION:
            raise ValueError(f"must be {API_VERSION!r}")
        return value

    @field_validator("kind")
    @classmethod
    def _kind(cls, value: str) -> str:
        if value != KIND:
            raise ValueError(f"must be {KIND!r}")
        return value


def hash_api_key(key: str) -> str:
    """The form in which keys are stored and compared: hex SHA-256 (keys are random, high-entropy tokens)."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def spec_version(spec: TenantProfileSpec) -> str:
    """A short content hash of a spec: the profile version used in caches, traces and status."""
    canonical = spec.model_dump_json(by_alias=True, exclude_none=True)
    return hashlib.sha256(canonical.encode()).hexdigest()[:12]
