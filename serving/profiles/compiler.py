"""Turns a validated profile into the short per-task instructions the tasks receive; pure and cached per version."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import yaml
from pydantic import ValidationError

from serving.errors import ProfileError
from serving.profiles.model import TenantProfileDocument, TenantProfileSpec, spec_version
from serving.vocabulary.catalog import Task
from serving.vocabulary.entities import not_redacted
from serving.vocabulary.validation import describe, first_field

TokenCounter = Callable[[str], int]

_TASK_LEADS = {
    Task.SUMMARIZE: "Summarize for {name}.",
    Task.SCORE_QUALITY: "Score the agent for {name} against the rubric.",
    Task.REPLY: "Write the next agent reply for {name}.",
}


@dataclass(frozen=True)
class CompiledInstruction:
    text: str
    tokens: int


@dataclass(frozen=True)
class CompiledProfile:
    """Everything the router needs of one profile version."""

    name: str
    spec: TenantProfileSpec
    version: str
    instructions: Mapping[Task, CompiledInstruction] = field(default_factory=dict)
    not_redacted: tuple[str, ...] = ()
    """Personal-data types of the default policy that this profile leaves in clear (its status lists them)."""

    @property
    def tenant_id(self) -> str:
        return self.spec.tenant_id

    def instruction_tokens(self) -> dict[str, int]:
        return {task.value: c.tokens for task, c in self.instructions.items()}

    def redaction_status(self) -> dict[str, Any]:
        """The redaction policy as the tenant's status shows it (camelCase), with `notRedacted`: the default
        policy's personal-data types this profile leaves in clear."""
        return {**self.spec.redaction.model_dump(by_alias=True, mode="json"), "notRedacted": list(self.not_redacted)}


def parse_document(data: Any, source: str = "<profile>") -> TenantProfileDocument:
    """Validate a decoded YAML/JSON object; the error names the field (`spec.intents.labels[3].name`)."""
    if not isinstance(data, dict):
        raise ProfileError(f"{source}: a TenantProfile must be a mapping, got {type(data).__name__}")
    try:
        return TenantProfileDocument.model_validate(data)
    except ValidationError as exc:
        raise ProfileError(f"{source}: {describe(exc)}", field=first_field(exc)) from None


def load_documents(text: str, source: str) -> list[TenantProfileDocument]:
    """Parse every TenantProfile in a (multi-document) YAML text."""
    try:
        docs = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as exc:
        raise ProfileError(f"{source}: not valid YAML: {exc}".replace("\n", " ")) from None
    if not docs:
        raise ProfileError(f"{source}: no TenantProfile document in file")
    return [parse_document(d, source) for d in docs]


def compile_profile(name: str, spec: TenantProfileSpec, count_tokens: TokenCounter) -> CompiledProfile:
    """Build the per-task instruction texts and measure each in tokens."""
    instructions = {task: _instruction(spec, task) for task in spec.tasks}
    compiled = {task: CompiledInstruction(text, count_tokens(text)) for task, text in instructions.items()}
    return CompiledProfile(
        name=name, spec=spec, version=spec_version(spec), instructions=compiled, not_redacted=not_redacted_by(spec)
    )


def not_redacted_by(spec: TenantProfileSpec) -> tuple[str, ...]:
    """The default policy's types that this profile's `redaction.entities` leave out (in clear wherever it redacts;
    with `applyToTasks: false` the other tasks' models see every type, which the status says beside this list)."""
    return not_redacted(spec.redaction.entities)


def _instruction(spec: TenantProfileSpec, task: Task) -> str:
    if task is Task.REDACT:
        return f"Redact {', '.join(spec.redaction.entities)} ({spec.redaction.mode.value})."
    if task is Task.CLASSIFY_INTENT:
        assert spec.intents is not None  # guaranteed by the spec validator
        return "Intents: " + "; ".join(f"{i.name}: {i.description}" for i in spec.intents.labels)
    return _generative_instruction(spec, task)


def _generative_instruction(spec: TenantProfileSpec, task: Task) -> str:
    lines = [_TASK_LEADS[task].format(name=spec.display_name or spec.tenant_id)]
    if task in spec.instructions:
        lines.append(spec.instructions[task])
    if spec.glossary:
        lines.append("Terms: " + "; ".join(f"{g.term} = {g.definition}" for g in spec.glossary))
    if task is Task.SCORE_QUALITY:
        lines.append("Rubric: " + "; ".join(f"{c.id} (w{c.weight:g}): {c.description}" for c in spec.rubric))
    return "\n".join(lines)


@lru_cache(maxsize=4)
def wordpiece_counter(tokenizer_file: str) -> TokenCounter:
    """Token counter from a `tokenizer.json` (Hugging Face tokenizers), cached per file."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(tokenizer_file)
    tokenizer.no_truncation()  # the embedding model's file truncates at 128 tokens; a count must not
    tokenizer.no_padding()
    return lambda text: len(tokenizer.encode(text, add_special_tokens=False).ids)


def approximate_counter(text: str) -> int:
    """Fallback when no tokenizer file is at hand: about 4 characters a token."""
    return max(1, (len(text) + 3) // 4)
