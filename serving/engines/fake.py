"""A deterministic fake engine for tests of everything above the engine (tasks, router, deployments)."""

from __future__ import annotations

import asyncio
import json
from typing import Any, AsyncIterator

from serving.engines._batching import MicroBatcher
from serving.engines.base import (
    EngineHealth,
    EngineStats,
    FinishReason,
    GenerationRequest,
    GenerationResult,
    check_schema,
    cut_at_stop,
    parse_json_output,
)
from serving.errors import InvalidRequest, ModelNotReady, SwitchboardError
from serving.vocabulary.kinds import EngineKind


class FakeEngine:
    """Echoes the last user turn, one whitespace-separated word per token, so counts are predictable.

    - tokens_in: words of every message plus one per message (the role marker);
    - text: "echo: " + the last user turn, cut to `max_tokens` words (finish "length") or at a stop string;
    - json_schema: a schema-valid value built from the schema (finish "length" when it is over max_tokens);
    - `latency_s` per batch and `token_latency_s` per streamed word; `error` makes every call raise it;
    - `received` keeps every request, so tests can assert on exactly what reached the engine.
    """

    kind = EngineKind.FAKE

    def __init__(
        self,
        model_path: str = "fake",
        *,
        latency_s: float = 0.0,
        token_latency_s: float = 0.0,
        max_batch_size: int = 16,
        batch_wait_s: float = 0.005,
        max_context_tokens: int = 4096,
        error: SwitchboardError | None = None,
    ):
        self.model = str(model_path)
        self.latency_s = latency_s
        self.token_latency_s = token_latency_s
        self.max_context_tokens = max_context_tokens
        self.error = error
        self.received: list[GenerationRequest] = []
        self.stats = EngineStats()
        self._closed = False
        self._batcher = MicroBatcher(
            self._run_batch, max_batch_size=max_batch_size, max_wait_s=batch_wait_s, stats=self.stats
        )

    async def generate(self, request: GenerationRequest) -> GenerationResult:
        self._admit(request)
        return await self._batcher.submit(request)

    async def stream(self, request: GenerationRequest) -> AsyncIterator[str | GenerationResult]:
        self._admit(request)
        self.stats.record_batch(1)
        if self.latency_s:
            await asyncio.sleep(self.latency_s)
        result = self._answer(request)
        words = result.text.split(" ")
        for i, word in enumerate(words):
            await asyncio.sleep(self.token_latency_s)  # even 0 yields: concurrent streams interleave, as in a batch
            yield word if i == len(words) - 1 else word + " "
        yield result

    async def health(self) -> EngineHealth:
        detail = "closed" if self._closed else ""
        return EngineHealth(ready=not self._closed, kind=self.kind, model=self.model, detail=detail)

    async def warm_up(self) -> None:
        await self.generate(GenerationRequest(prompt="warm up"))

    async def close(self) -> None:
        self._closed = True

    def _admit(self, request: GenerationRequest) -> None:
        if self._closed:
            raise ModelNotReady(f"engine for {self.model} is closed")
        check_schema(request.json_schema)
        tokens_in = _tokens_in(request)
        if tokens_in + request.sampling.max_tokens > self.max_context_tokens:
            raise InvalidRequest(
                f"prompt ({tokens_in} tokens) + max_tokens ({request.sampling.max_tokens}) exceed the context "
                f"of {self.max_context_tokens} tokens",
                field="max_tokens",
            )
        self.received.append(request)

    async def _run_batch(self, requests: list[GenerationRequest]) -> list[GenerationResult | BaseException]:
        if self.latency_s:
            await asyncio.sleep(self.latency_s)
        results: list[GenerationResult | BaseException] = []
        for request in requests:
            try:
                results.append(self._answer(request))
            except SwitchboardError as exc:
                results.append(exc)
        return results

    def _answer(self, request: GenerationRequest) -> GenerationResult:
        if self.error is not None:
            raise self.error
        if request.json_schema is not None:
            return self._answer_json(request)
        max_tokens = request.sampling.max_tokens
        words = ["echo:", *_last_user(request).split()]
        finish: FinishReason = "length" if len(words) > max_tokens else "stop"
        text, stopped = cut_at_stop(" ".join(words[:max_tokens]), request.sampling.stop)
        if stopped:
            finish = "stop"
        return GenerationResult(text, _tokens_in(request), len(text.split()), finish)

    def _answer_json(self, request: GenerationRequest) -> GenerationResult:
        value = example_for_schema(request.json_schema or {}, _last_user(request))
        text = json.dumps(value)
        # As the transformers engine's constrained decoding does, the answer is closed and valid even when it needs
        # more than max_tokens; it then reports "length".
        words = len(text.split())
        parsed = parse_json_output(text, request.json_schema or {})
        finish: FinishReason = "length" if words > request.sampling.max_tokens else "stop"
        return GenerationResult(
            text, _tokens_in(request), min(words, request.sampling.max_tokens), finish, parsed=parsed
        )


def _tokens_in(request: GenerationRequest) -> int:
    return sum(len(m["content"].split()) + 1 for m in request.chat())


def _last_user(request: GenerationRequest) -> str:
    users = [m["content"] for m in request.chat() if m["role"] == "user"]
    return users[-1] if users else ""


def example_for_schema(schema: dict[str, Any], seed_text: str = "") -> Any:
    """A small deterministic value that validates against common JSON Schemas (no $ref)."""
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    for key in ("anyOf", "oneOf", "allOf"):
        if schema.get(key):
            return example_for_schema(schema[key][0], seed_text)
    kind = schema.get("type", "object")
    kind = next((k for k in kind if k != "null"), "null") if isinstance(kind, list) else kind
    return _EXAMPLES.get(kind, lambda s, t: None)(schema, seed_text)


def _example_object(schema: dict[str, Any], seed_text: str) -> dict[str, Any]:
    properties = schema.get("properties", {})
    names = schema.get("required") or list(properties)
    return {name: example_for_schema(properties.get(name, {"type": "string"}), seed_text) for name in names}


def _example_array(schema: dict[str, Any], seed_text: str) -> list[Any]:
    prefix = [example_for_schema(item, seed_text) for item in schema.get("prefixItems", [])]
    more = max(0, schema.get("minItems", 0 if prefix else 1) - len(prefix))
    return prefix + [example_for_schema(schema.get("items") or {"type": "string"}, seed_text)] * more


def _example_string(schema: dict[str, Any], seed_text: str) -> str:
    text = " ".join(seed_text.split()[:3]) or "echo"
    text = text.ljust(schema.get("minLength", 0), ".")
    return text[: schema["maxLength"]] if "maxLength" in schema else text


def _example_number(schema: dict[str, Any], _: str) -> float | int:
    low = schema.get("minimum", schema.get("exclusiveMinimum", 0))
    value = low + (1 if "exclusiveMinimum" in schema else 0)
    value = min(value, schema.get("maximum", value))
    return int(value) if schema.get("type") == "integer" else float(value)


_EXAMPLES = {
    "object": _example_object,
    "array": _example_array,
    "string": _example_string,
    "integer": _example_number,
    "number": _example_number,
    "boolean": lambda s, t: True,
    "null": lambda s, t: None,
}
