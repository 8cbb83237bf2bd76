"""Steps 4-7 of the request path for each task (serving.pipeline.path runs them): redaction per the tenant's policy
before any model, prompt composition, the call, validation of what comes back, and the response body.

It reaches the engines only through a TaskBackend (Ray handles behind the router, in-process engines in KServe).
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

from pydantic import BaseModel

from serving.errors import Forbidden, InvalidRequest, TaskFailed
from serving.profiles.compiler import CompiledProfile
from serving.tasks.jobs import GenerateJob, IntentJob, QualityJob, RedactJob, TaskBackend
from serving.tasks.prompts import compose
from serving.tasks.quality import evidence_quotes, head_scores, output_schema, parse_scores
from serving.tasks.restore import Restorer, renumbered, restored_stream
from serving.telemetry import tracing
from serving.vocabulary.catalog import GENERATIVE, Task
from serving.vocabulary.conversation import ConversationInput, Turn, render
from serving.vocabulary.schemas import (
    ClassifyIntentRequest,
    ClassifyIntentResponse,
    CriterionResult,
    IntentResult,
    RedactRequest,
    RedactResponse,
    RedactResult,
    ReplyRequest,
    ReplyResponse,
    ScoreQualityRequest,
    ScoreQualityResponse,
    SummarizeRequest,
    SummarizeResponse,
    Usage,
)

DEFAULT_MAX_TOKENS = {Task.SUMMARIZE: 160, Task.SCORE_QUALITY: 256, Task.REPLY: 160}
SCORE_ATTEMPTS = 2


def check(task: Task, profile: CompiledProfile, body: BaseModel, max_text_chars: int) -> None:
    """The task is enabled for the tenant and the input is within the size limit."""
    if task not in profile.spec.tasks:
        raise Forbidden(f"task {task.value!r} is not enabled for tenant {profile.tenant_id!r}")
    chars = text_chars(body)
    if chars > max_text_chars:
        raise InvalidRequest(f"body: {chars} characters of text is over the limit of {max_text_chars}", field="body")


def text_chars(body: BaseModel) -> int:
    if isinstance(body, (ClassifyIntentRequest, RedactRequest)):  # each text is within the limit, not their sum
        return max(len(t) for t in body.utterances())
    if isinstance(body, ConversationInput):
        return sum(len(t.text) for t in body.as_turns())
    return len(getattr(body, "text", ""))


async def run(
    task: Task,
    profile: CompiledProfile,
    body: BaseModel,
    backend: TaskBackend,
    restore: bool = False,
    options: Mapping[str, Any] | None = None,
) -> BaseModel:
    """The response body of one (already checked) task request. `restore`: the caller is the tenant's own client,
    so a profile with `redaction.restore` gets its values back in summarize and reply answers (a batch stores what
    it runs, so it never asks). `options`: generation options of summarize and reply (the OpenAI route's
    `temperature`)."""
    if task in _GENERATING:
        return await _GENERATING[task](profile, body, backend, restore=restore, options=options)
    return await _HANDLERS[task](profile, body, backend)


# --- steps the tasks share ---------------------------------------------------------------------------------------------


def redact_job(profile: CompiledProfile, text: str) -> RedactJob:
    policy = profile.spec.redaction
    return RedactJob(
        text, tuple(policy.entities), policy.mode.value, policy.score_threshold, profile.tenant_id, strict=policy.strict
    )


async def redacted_turns(
    backend: TaskBackend, profile: CompiledProfile, body: ConversationInput
) -> tuple[list[Turn], int]:
    turns, count, _ = await redacted_conversation(backend, profile, body)
    return turns, count


async def redacted_conversation(
    backend: TaskBackend, profile: CompiledProfile, body: ConversationInput
) -> tuple[list[Turn], int, Restorer | None]:
    """The turns redacted before any model sees them. In placeholder mode a value keeps one placeholder across the
    turns; the Restorer (in this request's memory only) maps them back, returned only when the profile restores."""
    turns = body.as_turns()
    originals = [t.text for t in turns]
    policy = profile.spec.redaction
    if not policy.apply_to_tasks:
        return turns, 0, None
    with tracing.step("redact input"):  # all turns in one job: one slot of the redact deployment, however many turns
        job = dataclasses.replace(redact_job(profile, ""), texts=tuple(originals))
        results = (await backend.redact(job))["results"]
        count = sum(len(r["entities"]) for r in results)
        tracing.annotate(redacted_entities=count)
    if policy.mode.value == "placeholder":
        texts, restorer = renumbered(originals, results)
    else:
        texts, restorer = [r["text"] for r in results], None
    turns = [Turn(speaker=t.speaker, text=text) for t, text in zip(turns, texts, strict=True)]
    return turns, count, restorer if policy.restore else None


def restored(text: str, restorer: Restorer | None) -> str:
    return restorer.restore(text) if restorer is not None else text


def instruction(profile: CompiledProfile, task: Task) -> tuple[str, int]:
    compiled = profile.instructions.get(task)
    return (compiled.text, compiled.tokens) if compiled else ("", 0)


def usage(profile: CompiledProfile, task: Task, result: dict | None = None) -> Usage:
    """What the request cost in model tokens. Redaction and classification read no prompt (the taxonomy is embedded
    once per profile version), so their instruction tokens are 0; the compiled size is in the tenant's status."""
    result = result or {}
    instruction_tokens = instruction(profile, task)[1] if task in GENERATIVE else 0
    return Usage(
        instruction_tokens=instruction_tokens,
        tokens_in=result.get("tokens_in", 0),
        tokens_out=result.get("tokens_out", 0),
    )


def job_for(
    profile: CompiledProfile, task: Task, turns: list[Turn], max_tokens: int | None, **options: Any
) -> GenerateJob:
    text, tokens = instruction(profile, task)
    rubric = [c.id for c in profile.spec.rubric] if task is Task.SCORE_QUALITY else None
    with tracing.step("compose prompt", instruction_tokens=tokens):
        messages = compose(task, text, turns, rubric)
    return GenerateJob(tuple(messages), max_tokens or DEFAULT_MAX_TOKENS[task], **options)


# --- the tasks ---------------------------------------------------------------------------------------------------------


async def _redact(profile: CompiledProfile, body: RedactRequest, backend: TaskBackend) -> RedactResponse:
    """`texts` go to the replica as one job (one slot of the deployment, one spaCy pass with other requests' texts)."""
    shared = {"tenant": profile.tenant_id, "profile_version": profile.version, "usage": usage(profile, Task.REDACT)}
    if body.text is not None:
        return RedactResponse(**await backend.redact(redact_job(profile, body.text)), **shared)
    job = dataclasses.replace(redact_job(profile, ""), texts=tuple(body.utterances()))
    results = (await backend.redact(job))["results"]
    return RedactResponse(**results[0], results=[RedactResult(**r) for r in results], **shared)


async def _classify(
    profile: CompiledProfile, body: ClassifyIntentRequest, backend: TaskBackend
) -> ClassifyIntentResponse:
    """The utterances go to the replica as one job, which its batcher embeds together with other requests' jobs."""
    texts, counts = await redacted_each(backend, profile, body.utterances())
    taxonomy = profile.spec.intents
    assert taxonomy is not None  # the profile validator requires intents where classify-intent is enabled
    top_k = body.top_k or taxonomy.top_k
    if body.text is not None:
        results = [await backend.classify_intent(IntentJob(texts[0], taxonomy, top_k))]
    else:  # one call for all of them: the replica's queue holds requests, not utterances
        results = (await backend.classify_intent(IntentJob("", taxonomy, top_k, texts=tuple(texts))))["predictions"]
    tokens_in = sum(r.get("tokens_in", 0) for r in results)  # the embedder's tokenizer, per text, on the replica
    shared = {
        "tenant": profile.tenant_id,
        "profile_version": profile.version,
        "redacted_entities": sum(counts),
        "usage": usage(profile, Task.CLASSIFY_INTENT, {"tokens_in": tokens_in}),
    }
    if body.text is not None:
        return ClassifyIntentResponse(**results[0], **shared)
    indexes = body.turn_indexes()
    turns: list[int | None] = list(indexes) if indexes is not None else [None] * len(results)
    predictions = [
        IntentResult(**r, turn=turn, redacted_entities=n) for r, turn, n in zip(results, turns, counts, strict=True)
    ]
    return ClassifyIntentResponse(**results[0], predictions=predictions, **shared)


async def redacted_each(
    backend: TaskBackend, profile: CompiledProfile, texts: list[str]
) -> tuple[list[str], list[int]]:
    """Each text redacted before any model sees it (all in one job, which the deployment batches with others), unless
    the tenant turned it off; with the count of redacted entities per text."""
    if not profile.spec.redaction.apply_to_tasks:
        return texts, [0] * len(texts)
    with tracing.step("redact input"):  # one job for all texts: one slot of the redact deployment, one spaCy pass
        job = dataclasses.replace(redact_job(profile, ""), texts=tuple(texts))
        results = (await backend.redact(job))["results"]
        counts = [len(r["entities"]) for r in results]
        tracing.annotate(redacted_entities=sum(counts))
    return [r["text"] for r in results], counts


async def _generate(
    task: Task,
    profile: CompiledProfile,
    body: SummarizeRequest | ReplyRequest,
    backend: TaskBackend,
    restore: bool,
    options: Mapping[str, Any] | None,
) -> tuple[str, dict]:
    """Redact the turns, compose, generate; returns the answer (restored when asked and the profile restores) and
    the response fields the two text tasks share."""
    turns, redacted, restorer = await redacted_conversation(backend, profile, body)
    result = await backend.generate(task.value, job_for(profile, task, turns, body.max_tokens, **(options or {})))
    shared = {
        "tenant": profile.tenant_id,
        "profile_version": profile.version,
        "finish_reason": result["finish_reason"],
        "redacted_entities": redacted,
        "usage": usage(profile, task, result),
    }
    return restored(result["text"].strip(), restorer if restore else None), shared


async def _summarize(
    profile: CompiledProfile,
    body: SummarizeRequest,
    backend: TaskBackend,
    restore: bool = False,
    options: Mapping[str, Any] | None = None,
) -> SummarizeResponse:
    text, shared = await _generate(Task.SUMMARIZE, profile, body, backend, restore, options)
    return SummarizeResponse(summary=text, **shared)


async def _reply(
    profile: CompiledProfile,
    body: ReplyRequest,
    backend: TaskBackend,
    restore: bool = False,
    options: Mapping[str, Any] | None = None,
) -> ReplyResponse:
    text, shared = await _generate(Task.REPLY, profile, body, backend, restore, options)
    return ReplyResponse(reply=text, **shared)


async def _score(profile: CompiledProfile, body: ScoreQualityRequest, backend: TaskBackend) -> ScoreQualityResponse:
    turns, redacted = await redacted_turns(backend, profile, body)
    if Task.SCORE_QUALITY.value in backend.head_tasks():
        return await head_score_turns(profile, turns, redacted, backend)
    return await score_turns(profile, turns, redacted, backend, body.max_tokens)


async def head_score_turns(
    profile: CompiledProfile, turns: list[Turn], redacted: int, backend: TaskBackend
) -> ScoreQualityResponse:
    """score-quality by the trained head: one call, verdicts in rubric order with verbatim evidence, validated as a
    model's answer is (serving.tasks.quality.head_scores). It reads no instruction and writes no tokens."""
    rubric = list(profile.spec.rubric)
    job = QualityJob(
        tuple(turns),
        tuple((c.id, c.violation or c.description) for c in rubric),
        tuple((g.term, g.definition) for g in profile.spec.glossary),
        absent=tuple(c.id for c in rubric if c.violation),
    )
    with tracing.step("score by head"):
        result = await backend.score_quality(job)
    scores = head_scores(result["criteria"], rubric, render(turns))
    criteria = [
        CriterionResult(criterion=c.criterion, verdict=c.verdict, score=c.score, weight=c.weight, evidence=c.evidence)
        for c in scores.criteria
    ]
    return ScoreQualityResponse(
        tenant=profile.tenant_id,
        profile_version=profile.version,
        criteria=criteria,
        overall=scores.overall,
        attempts=1,
        redacted_entities=redacted,
        usage=Usage(instruction_tokens=0, tokens_in=result.get("tokens_in", 0), tokens_out=0),
    )


async def score_turns(
    profile: CompiledProfile, turns: list[Turn], redacted: int, backend: TaskBackend, max_tokens: int | None = None
) -> ScoreQualityResponse:
    """score-quality on redacted turns; invalid model output is retried once, then reported, never passed through."""
    rubric = list(profile.spec.rubric)
    schema = output_schema(rubric, evidence_quotes(turns))
    tokens_in = tokens_out = 0
    for attempt in range(1, SCORE_ATTEMPTS + 1):
        # A second attempt samples, so that it does not repeat the first one's invalid answer.
        options = (
            {"json_schema": schema} if attempt == 1 else {"json_schema": schema, "temperature": 0.7, "seed": attempt}
        )
        try:  # an engine that cannot meet the schema (TaskFailed) gets the same second chance as a bad rubric answer
            with tracing.step("score attempt", attempt=attempt):
                job = job_for(profile, Task.SCORE_QUALITY, turns, max_tokens, **options)
                result = await backend.generate(Task.SCORE_QUALITY.value, job)
            tokens_in, tokens_out = tokens_in + result["tokens_in"], tokens_out + result["tokens_out"]
            scores = parse_scores(result["text"], rubric, render(turns))
            break
        except TaskFailed as exc:
            if attempt == SCORE_ATTEMPTS:
                raise TaskFailed(f"{exc.message} (after {attempt} attempts)") from None
    criteria = [
        CriterionResult(criterion=c.criterion, verdict=c.verdict, score=c.score, weight=c.weight, evidence=c.evidence)
        for c in scores.criteria
    ]
    tokens = Usage(
        instruction_tokens=instruction(profile, Task.SCORE_QUALITY)[1], tokens_in=tokens_in, tokens_out=tokens_out
    )
    return ScoreQualityResponse(
        tenant=profile.tenant_id,
        profile_version=profile.version,
        criteria=criteria,
        overall=scores.overall,
        attempts=attempt,
        redacted_entities=redacted,
        usage=tokens,
    )


async def stream_job(
    task: Task,
    profile: CompiledProfile,
    body: SummarizeRequest | ReplyRequest,
    backend: TaskBackend,
    options: Mapping[str, Any] | None = None,
) -> tuple[GenerateJob, Restorer | None]:
    """The redacted, composed job of a summarize or reply stream (redaction errors surface before any byte is sent),
    and the Restorer when the profile restores."""
    turns, _, restorer = await redacted_conversation(backend, profile, body)
    return job_for(profile, task, turns, body.max_tokens, **(options or {})), restorer


async def stream_chunks(
    task: Task, profile: CompiledProfile, job: GenerateJob, backend: TaskBackend
) -> AsyncIterator[dict]:
    """Stream chunks: {"delta"} items, then {"done", "finish_reason", "usage"}."""
    async for chunk in backend.stream(task.value, job):
        if "delta" in chunk:
            yield chunk
        else:
            yield {
                "done": True,
                "finish_reason": chunk["finish_reason"],
                "usage": usage(profile, task, chunk).model_dump(),
            }


def restoring(chunks: AsyncIterator[dict], restorer: Restorer | None) -> AsyncIterator[dict]:
    """The stream as the caller receives it: deltas restored when there is a Restorer (the outermost wrapper, so
    admission, metrics and traces only ever see placeholders)."""
    return restored_stream(chunks, restorer) if restorer is not None else chunks


_HANDLERS: dict[Task, Callable[[CompiledProfile, Any, TaskBackend], Awaitable[BaseModel]]] = {
    Task.REDACT: _redact,
    Task.CLASSIFY_INTENT: _classify,
    Task.SUMMARIZE: _summarize,
    Task.SCORE_QUALITY: _score,
    Task.REPLY: _reply,
}
_GENERATING: dict[Task, Callable[..., Awaitable[BaseModel]]] = {Task.SUMMARIZE: _summarize, Task.REPLY: _reply}
