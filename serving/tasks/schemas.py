"""Typed request and response bodies of the task endpoints (the public HTTP contract, shown in the OpenAPI docs)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from serving.tasks.conversation import ConversationInput

# The router enforces the configured `max_text_chars` on top of this hard ceiling.
Text = Annotated[str, StringConstraints(min_length=1, max_length=1_000_000)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RedactRequest(_Body):
    text: Text = Field(description="Text or transcript to redact.", examples=["My card is 4111 1111 1111 1111."])


class Entity(BaseModel):
    type: str = Field(description="Entity type, e.g. EMAIL_ADDRESS.")
    start: int = Field(description="Start offset (characters) in the submitted text.")
    end: int = Field(description="End offset (exclusive) in the submitted text.")
    score: float = Field(description="Detector confidence, 0..1.")
    replacement: str = Field(description="What replaced the value in `text`.")


class Usage(BaseModel):
    instruction_tokens: int = Field(0, description="Tokens of the compiled tenant instruction used for this task.")
    tokens_in: int = Field(0, description="Tokens the model read.")
    tokens_out: int = Field(0, description="Tokens the model wrote.")


class RedactResponse(BaseModel):
    tenant: str
    profile_version: str
    text: str = Field(description="The redacted text.")
    entities: list[Entity]
    usage: Usage = Usage()


class ClassifyIntentRequest(_Body):
    text: Text = Field(description="Customer utterance.", examples=["I still haven't received my new card"])
    top_k: int | None = Field(None, ge=1, le=20, description="Ranked labels to return; default from the tenant profile.")


class ScoredLabel(BaseModel):
    label: str
    score: float


class ClassifyIntentResponse(BaseModel):
    tenant: str
    profile_version: str
    label: str | None = Field(description="Best intent, or null when no intent clears the tenant's threshold.")
    score: float = Field(description="Score of the best intent, 0..1.")
    top_k: list[ScoredLabel]
    redacted_entities: int = Field(0, description="Entities redacted from the input before classification.")
    usage: Usage = Usage()


class TaskInfo(BaseModel):
    task: str
    description: str
    served: bool = Field(description="A deployment for this task runs here.")
    enabled: bool = Field(description="The caller's tenant profile allows this task.")


class TenantInfo(BaseModel):
    tenant: str
    display_name: str | None
    accepted: bool = Field(description="Whether the latest version of the profile was accepted.")
    message: str = Field(description="`accepted`, or why the latest version was rejected.")
    serving_version: str | None = Field(description="Profile version in use (the last good one).")
    source: str
    tasks: list[str]
    instruction_tokens: dict[str, int]
    limits: dict
    priority: dict


class ErrorDetail(BaseModel):
    type: str
    message: str
    field: str | None = None
    request_id: str | None = None


class ErrorBody(BaseModel):
    error: ErrorDetail


# --- generative tasks ----------------------------------------------------------------------------------------------


class _Generative(ConversationInput):
    max_tokens: int | None = Field(None, ge=1, le=2048, description="Upper bound on generated tokens.")


class SummarizeRequest(_Generative):
    pass


class SummarizeResponse(BaseModel):
    tenant: str
    profile_version: str
    summary: str
    finish_reason: str
    redacted_entities: int = 0
    usage: Usage


class ScoreQualityRequest(_Generative):
    pass


class CriterionResult(BaseModel):
    criterion: str
    verdict: str = Field(description="met | not_met | not_applicable")
    score: float | None = Field(description="1 met, 0 not met, null not applicable.")
    weight: float
    evidence: str = Field(description="A quote from the (redacted) conversation; empty when the model's quote was not found in it.")


class ScoreQualityResponse(BaseModel):
    tenant: str
    profile_version: str
    criteria: list[CriterionResult]
    overall: float | None = Field(description="Weighted mean over applicable criteria, 0..1.")
    attempts: int = Field(description="Model calls needed for a valid answer (invalid output is retried once).")
    redacted_entities: int = 0
    usage: Usage


class ReplyRequest(_Generative):
    stream: bool = Field(False, description="Stream the reply as server-sent events.")


class ReplyResponse(BaseModel):
    tenant: str
    profile_version: str
    reply: str
    finish_reason: str
    redacted_entities: int = 0
    usage: Usage
