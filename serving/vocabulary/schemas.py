"""Typed request and response bodies of the task endpoints (the public HTTP contract, shown in the OpenAPI docs)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictBool, StringConstraints, model_validator
from pydantic.json_schema import JsonDict

from serving.vocabulary.catalog import Task
from serving.vocabulary.conversation import ConversationInput, Speaker, Turn

# The router enforces the configured `max_text_chars` on top of this hard ceiling.
Text = Annotated[str, StringConstraints(min_length=1, max_length=1_000_000)]


def _json_number(value: object) -> object:
    """JSON numbers only: no booleans (`true` is not 1) and no numeric strings, as the document's types say."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError("Input should be a number, not " + type(value).__name__.replace("NoneType", "null"))
    return value


# Integers (1 or 1.0) and floats as JSON Schema means them, within bounds; pydantic's lax mode would also take true, "1".
TopK = Annotated[int, Field(ge=1, le=20), BeforeValidator(_json_number)]
MaxTokens = Annotated[int, Field(ge=1, le=2048), BeforeValidator(_json_number)]
Temperature = Annotated[float, Field(ge=0, le=2), BeforeValidator(_json_number)]
One = Annotated[int, Field(ge=1, le=1), BeforeValidator(_json_number)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


MAX_REDACT_TEXTS = 256  # texts in one redact request (`texts`)


class RedactRequest(_Body):
    """Exactly one of `text` (one text) or `texts` (up to 256, answered in order): a contact centre redacts every turn
    of a conversation, or a page of transcripts, in one call that the redact deployment runs as one spaCy pass."""

    model_config = ConfigDict(
        json_schema_extra={
            "oneOf": [
                {"required": ["text"], "properties": {"text": {"type": "string"}, "texts": {"type": "null"}}},
                {"required": ["texts"], "properties": {"texts": {"type": "array"}, "text": {"type": "null"}}},
            ]
        }
    )

    text: Text | None = Field(
        None, description="Text or transcript to redact.", examples=["My card is 4111 1111 1111 1111."]
    )
    texts: list[Text] | None = Field(
        None,
        min_length=1,
        max_length=MAX_REDACT_TEXTS,
        description=f"Up to {MAX_REDACT_TEXTS} texts; one result each, in order.",
    )

    @model_validator(mode="after")
    def _exactly_one(self) -> RedactRequest:
        if (self.text is None) == (self.texts is None):
            raise ValueError("send exactly one of `text` or `texts`")
        return self

    def utterances(self) -> list[str]:
        """The texts to redact, in order (what the request counts against the tenant's requestsPerSecond)."""
        return list(self.texts) if self.texts is not None else [self.text or ""]


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


class RedactResult(BaseModel):
    text: str = Field(description="The redacted text.")
    entities: list[Entity]


class RedactResponse(BaseModel):
    """For `text`: `text` and `entities`. For `texts`: `results`, one per text, in order, and `text`/`entities` are
    those of the first."""

    tenant: str
    profile_version: str
    text: str = Field(description="The redacted text.")
    entities: list[Entity]
    results: list[RedactResult] | None = Field(None, description="One per text of `texts`, in order.")
    usage: Usage = Usage()


MAX_INTENT_TEXTS = 256  # utterances in one classify-intent request (`texts` or customer `turns`)
_NULL: JsonDict = {"type": "null"}
_CUSTOMER: JsonDict = {"properties": {"speaker": {"const": "customer"}}, "required": ["speaker"]}


class ClassifyIntentRequest(_Body):
    """Exactly one of `text` (one utterance), `texts` (up to 256, answered in order) or `turns` (a conversation:
    each customer turn is labelled)."""

    # The OpenAPI document states the validator's rule: exactly one of the three is set (not null); `turns` holds a
    # customer turn.
    model_config = ConfigDict(
        json_schema_extra={
            "oneOf": [
                {"required": ["text"], "properties": {"text": {"type": "string"}, "texts": _NULL, "turns": _NULL}},
                {"required": ["texts"], "properties": {"texts": {"type": "array"}, "text": _NULL, "turns": _NULL}},
                {
                    "required": ["turns"],
                    "properties": {"turns": {"type": "array", "contains": _CUSTOMER}, "text": _NULL, "texts": _NULL},
                },
            ]
        }
    )

    text: Text | None = Field(
        None, description="Customer utterance.", examples=["I still haven't received my new card"]
    )
    texts: list[Text] | None = Field(
        None,
        min_length=1,
        max_length=MAX_INTENT_TEXTS,
        description=f"Up to {MAX_INTENT_TEXTS} utterances; one prediction each, in order.",
    )
    turns: list[Turn] | None = Field(
        None, min_length=1, max_length=500, description="A conversation; each customer turn is labelled."
    )
    top_k: TopK | None = Field(None, description="Ranked labels to return; default from the tenant profile.")

    @model_validator(mode="after")
    def _exactly_one(self) -> ClassifyIntentRequest:
        if sum(x is not None for x in (self.text, self.texts, self.turns)) != 1:
            raise ValueError("send exactly one of `text`, `texts` or `turns`")
        if self.turns is not None:
            customer = sum(t.speaker is Speaker.CUSTOMER for t in self.turns)
            if not 1 <= customer <= MAX_INTENT_TEXTS:
                raise ValueError(f"`turns` needs 1 to {MAX_INTENT_TEXTS} customer turns, got {customer}")
        return self

    def utterances(self) -> list[str]:
        """The texts to classify, in order (customer turns only for `turns`)."""
        if self.texts is not None:
            return list(self.texts)
        if self.turns is not None:
            return [t.text for t in self.turns if t.speaker is Speaker.CUSTOMER]
        return [self.text or ""]

    def turn_indexes(self) -> list[int] | None:
        return None if self.turns is None else [i for i, t in enumerate(self.turns) if t.speaker is Speaker.CUSTOMER]


class ScoredLabel(BaseModel):
    label: str
    score: float


class IntentResult(BaseModel):
    label: str | None = Field(description="Best intent, or null when no intent clears the tenant's threshold.")
    score: float = Field(description="Score of the best intent, 0..1.")
    top_k: list[ScoredLabel]
    turn: int | None = Field(None, description="Index of the customer turn in `turns` (conversation form only).")
    redacted_entities: int = Field(0, description="Entities redacted from this utterance.")
    tokens_in: int = Field(0, description="Tokens of this (redacted) utterance the encoder read, by its own tokenizer.")


class ClassifyIntentResponse(BaseModel):
    """For `text`: `label`, `score`, `top_k`. For `texts` / `turns`: `predictions`, one per utterance, in order, and
    `label`/`score`/`top_k` are those of the first."""

    tenant: str
    profile_version: str
    label: str | None = Field(description="Best intent, or null when no intent clears the tenant's threshold.")
    score: float = Field(description="Score of the best intent, 0..1.")
    top_k: list[ScoredLabel]
    predictions: list[IntentResult] | None = Field(None, description="One per utterance of `texts` or customer turn.")
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
    redaction: dict = Field(
        default_factory=dict,
        description="The redaction policy in use; `notRedacted` lists the "
        "default policy's personal-data types this profile leaves in clear.",
    )


class ErrorDetail(BaseModel):
    type: str
    message: str
    field: str | None = None
    request_id: str | None = None


class ErrorBody(BaseModel):
    error: ErrorDetail


# --- generative tasks ----------------------------------------------------------------------------------------------


class _Generative(ConversationInput):
    max_tokens: MaxTokens | None = Field(None, description="Upper bound on generated tokens.")


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
    evidence: str = Field(
        description="A quote from the (redacted) conversation; empty when the model's quote was not found in it."
    )


class ScoreQualityResponse(BaseModel):
    tenant: str
    profile_version: str
    criteria: list[CriterionResult]
    overall: float | None = Field(description="Weighted mean over applicable criteria, 0..1.")
    attempts: int = Field(description="Model calls needed for a valid answer (invalid output is retried once).")
    redacted_entities: int = 0
    usage: Usage


class ReplyRequest(_Generative):
    stream: StrictBool = Field(False, description="Stream the reply as server-sent events.")


class ReplyResponse(BaseModel):
    tenant: str
    profile_version: str
    reply: str
    finish_reason: str
    redacted_entities: int = 0
    usage: Usage


REQUEST_BODIES: dict[Task, type[BaseModel]] = {
    Task.REDACT: RedactRequest,
    Task.CLASSIFY_INTENT: ClassifyIntentRequest,
    Task.SUMMARIZE: SummarizeRequest,
    Task.SCORE_QUALITY: ScoreQualityRequest,
    Task.REPLY: ReplyRequest,
}
"""The request body of each task (what a task route, a batch line and a KServe request are validated against)."""
