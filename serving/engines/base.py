"""The engine contract: requests, results and the `Engine` protocol every generation adapter implements."""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Literal, Protocol, runtime_checkable

from serving.errors import InvalidRequest, TaskFailed
from serving.vocabulary.kinds import EngineKind

FinishReason = Literal["stop", "length", "error"]
ROLES = frozenset({"system", "user", "assistant"})


@dataclass(frozen=True)
class SamplingParams:
    """How to sample. `temperature == 0` means greedy decoding (deterministic)."""

    max_tokens: int = 256
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int | None = None
    stop: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if isinstance(self.stop, str):
            object.__setattr__(self, "stop", (self.stop,))
        object.__setattr__(self, "stop", tuple(self.stop))
        _check(isinstance(self.max_tokens, int) and 1 <= self.max_tokens <= 32_768, "max_tokens", "must be 1..32768")
        _check(math.isfinite(self.temperature) and 0 <= self.temperature <= 5, "temperature", "must be 0..5")
        _check(math.isfinite(self.top_p) and 0 < self.top_p <= 1, "top_p", "must be in (0, 1]")
        _check(
            all(isinstance(s, str) and s for s in self.stop) and len(self.stop) <= 8,
            "stop",
            "up to 8 non-empty strings",
        )

    @property
    def greedy(self) -> bool:
        return self.temperature == 0


@dataclass(frozen=True)
class GenerationRequest:
    """One generation: exactly one of a raw `prompt` or chat `messages`; optional JSON schema for structured output."""

    prompt: str | None = None
    messages: list[dict[str, str]] | None = None
    sampling: SamplingParams = field(default_factory=SamplingParams)
    json_schema: dict[str, Any] | None = None
    request_id: str | None = None

    def __post_init__(self) -> None:
        _check((self.prompt is None) != (self.messages is None), "prompt", "give exactly one of prompt or messages")
        if self.prompt is not None:
            _check(isinstance(self.prompt, str), "prompt", "must be a string")
        else:
            _check(isinstance(self.messages, list) and bool(self.messages), "messages", "must be a non-empty list")
            for i, message in enumerate(self.messages or []):
                _check_message(i, message)
        _check(self.json_schema is None or isinstance(self.json_schema, dict), "json_schema", "must be an object")

    def chat(self) -> list[dict[str, str]]:
        """The conversation as chat messages (a raw prompt becomes one user turn)."""
        if self.messages is not None:
            return [{"role": m["role"], "content": m["content"]} for m in self.messages]
        return [{"role": "user", "content": self.prompt or ""}]


@dataclass(frozen=True)
class GenerationResult:
    """What came out: text, tokens in (the prompt as the engine saw it) and out, and why generation ended.

    With a json_schema, `parsed` holds the validated value; when the engine retried, the token counts cover every
    attempt (they are what the request cost).
    """

    text: str
    tokens_in: int
    tokens_out: int
    finish_reason: FinishReason
    parsed: Any = None  # the validated JSON value when the request carried a json_schema


@dataclass(frozen=True)
class EngineHealth:
    """Whether an engine can serve now; `detail` says why not."""

    ready: bool
    kind: EngineKind
    model: str
    detail: str = ""


@dataclass
class EngineStats:
    """Counters an engine keeps about its own batching (for tests, metrics and traces)."""

    requests: int = 0
    batches: int = 0
    max_batch_size: int = 0
    cancelled: int = 0  # sequences taken out of a running batch (caller gone, deadline, stop string)
    tokens_after_cancel: int = 0  # tokens they made once cancelled (at most one decoding step each)

    def record_batch(self, size: int) -> None:
        self.requests += size
        self.batches += 1
        self.max_batch_size = max(self.max_batch_size, size)


@runtime_checkable
class Engine(Protocol):
    """A text-generation engine. Errors leave it as `serving.errors` (TaskFailed, ModelNotReady, InvalidRequest)."""

    kind: EngineKind
    stats: EngineStats

    async def generate(self, request: GenerationRequest) -> GenerationResult: ...

    def stream(self, request: GenerationRequest) -> AsyncIterator[str | GenerationResult]:
        """Text chunks, then one final GenerationResult whose text is the chunks joined."""
        ...

    async def health(self) -> EngineHealth: ...

    async def warm_up(self) -> None: ...

    async def close(self) -> None: ...


def _check(ok: bool, name: str, why: str) -> None:
    if not ok:
        raise InvalidRequest(f"{name}: {why}", field=name)


def _check_message(i: int, message: Any) -> None:
    where = f"messages[{i}]"
    _check(isinstance(message, dict), where, "must be an object with role and content")
    _check(message.get("role") in ROLES, f"{where}.role", f"must be one of {sorted(ROLES)}")
    _check(isinstance(message.get("content"), str), f"{where}.content", "must be a string")


# ---- helpers shared by the adapters --------------------------------------------------------------------------------


def check_schema(schema: dict[str, Any] | None) -> None:
    """Raise InvalidRequest when a json_schema is not itself a valid JSON Schema."""
    if schema is None:
        return
    from jsonschema import Draft202012Validator, SchemaError

    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        raise InvalidRequest(f"json_schema is not a valid JSON Schema: {exc.message}", field="json_schema") from None


def json_instruction(schema: dict[str, Any]) -> str:
    """The instruction that asks a model for JSON matching `schema` (keys spelled out: small models parrot schemas)."""
    properties = schema.get("properties") if schema.get("type") == "object" else None
    if not properties:
        return f"Answer with JSON only, no prose. It must validate against this JSON Schema: {json.dumps(schema)}"
    required = set(schema.get("required") or [])
    keys = "; ".join(
        f"{name} ({_describe(spec)}{', required' if name in required else ''})" for name, spec in properties.items()
    )
    return f"Answer with one JSON object only, no prose and no code fences. Its keys: {keys}."


def _describe(spec: dict[str, Any]) -> str:
    if spec.get("enum"):
        return "one of " + ", ".join(json.dumps(v) for v in spec["enum"])
    kind = spec.get("type", "any")
    if kind == "array":
        return f"array of {_describe(spec.get('items', {}))}"
    return " or ".join(kind) if isinstance(kind, list) else str(kind)


def with_json_instruction(messages: list[dict[str, str]], schema: dict[str, Any]) -> list[dict[str, str]]:
    """Messages with the JSON instruction merged into (or added as) the system turn."""
    note = json_instruction(schema)
    if messages and messages[0]["role"] == "system":
        return [{"role": "system", "content": f"{messages[0]['content']}\n\n{note}"}, *messages[1:]]
    return [{"role": "system", "content": note}, *messages]


_FENCE = re.compile(r"^\s*```(?:json)?\s*|\s*```\s*$", re.IGNORECASE)


def parse_json_output(text: str, schema: dict[str, Any]) -> Any:
    """The JSON value in `text`, validated against `schema`; TaskFailed (without echoing the text) otherwise."""
    from jsonschema import Draft202012Validator

    candidate = _FENCE.sub("", text).strip()
    try:
        start = min((i for i in (candidate.find("{"), candidate.find("[")) if i >= 0), default=0)
        value = json.JSONDecoder().raw_decode(candidate[start:])[0]
    except (ValueError, json.JSONDecodeError) as exc:
        raise TaskFailed(
            f"model output is not valid JSON ({type(exc).__name__} at char {getattr(exc, 'pos', '?')})"
        ) from None
    error = next(iter(Draft202012Validator(schema).iter_errors(value)), None)
    if error is not None:
        raise TaskFailed(f"model output does not match the schema: {error.validator!r} failed at {error.json_path}")
    return value


def cut_at_stop(text: str, stop: tuple[str, ...]) -> tuple[str, bool]:
    """`text` up to the first stop string, and whether one was found."""
    hits = [i for i in (text.find(s) for s in stop) if i >= 0]
    return (text[: min(hits)], True) if hits else (text, False)


class StopScanner:
    """Streams text while holding back just enough to never emit (part of) a stop string."""

    def __init__(self, stop: tuple[str, ...]):
        self._stop = stop
        self._hold = max((len(s) for s in stop), default=1) - 1
        self._buffer = ""
        self.stopped = False

    def feed(self, chunk: str) -> str:
        if self.stopped:
            return ""
        self._buffer += chunk
        text, self.stopped = cut_at_stop(self._buffer, self._stop)
        if self.stopped:
            self._buffer = ""
            return text
        safe = len(self._buffer) - self._hold if self._hold else len(self._buffer)
        out, self._buffer = self._buffer[:safe], self._buffer[safe:]
        return out

    def flush(self) -> str:
        out, self._buffer = ("" if self.stopped else self._buffer), ""
        return out
