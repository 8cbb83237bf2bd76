"""Generation with Hugging Face transformers on CPU: micro-batched, streamed, off the event loop.

Beside it: transformers_rows.py (a request's row in the running batch), transformers_guided.py (constrained decoding
of a schema), transformers_loading.py (the model, its adapter and EOS ids from local files).
"""

from __future__ import annotations

import asyncio
import json
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any, AsyncIterator

from serving.engines import structured
from serving.engines._batching import MicroBatcher
from serving.engines.base import (
    EngineHealth,
    EngineStats,
    FinishReason,
    GenerationRequest,
    GenerationResult,
    SamplingParams,
    StopScanner,
    check_schema,
    cut_at_stop,
    parse_json_output,
    with_json_instruction,
)
from serving.engines.transformers_guided import GuidedDecoder, Vocab, build_vocab, plan_for
from serving.engines.transformers_loading import eos_ids, load_model
from serving.engines.transformers_rows import Job, Rows
from serving.errors import InvalidRequest, ModelNotReady, SwitchboardError, TaskFailed
from serving.vocabulary.kinds import EngineKind

_FALLBACK_TEMPLATE = "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}assistant:"


class TransformersEngine:
    """A causal LM from a local folder (safetensors + tokenizer), run with `model.generate` on one worker thread.

    Concurrent `generate` and `stream` calls are collected for `batch_wait_s` and run as one left-padded batch
    (grouped by sampling settings): N streams progress together, each fed its row's tokens step by step. A caller
    that goes away (cancelled task, deadline, closed stream, stop string) takes its row out at the next decoding step.

    Structured output: a schema inside the subset of `serving.engines.structured` is decoded under constraint (the
    skeleton is written, enums are chosen by likelihood, strings and numbers are masked to the grammar), so the output
    is schema-valid by construction; one request at a time, with a KV cache. Other schemas: the schema is put in the
    system turn, the answer is prefilled with `{"first_required_key": `, validated with jsonschema and retried
    `json_retries` times with the validation error; still invalid -> TaskFailed.
    """

    kind = EngineKind.TRANSFORMERS

    def __init__(
        self,
        model_path: str | os.PathLike,
        *,
        max_batch_size: int = 8,
        batch_wait_s: float = 0.01,
        json_retries: int = 1,
        dtype: str = "float32",
        num_threads: int | None = None,
        max_model_len: int | None = None,
        adapter: str | os.PathLike | None = None,
    ):
        self.model = str(model_path)
        self.adapter = str(adapter) if adapter else None
        self.json_retries = json_retries
        self.stats = EngineStats()
        self._closed = False
        self._tokenizer, self._model = load_model(
            Path(model_path), dtype, num_threads, Path(adapter) if adapter else None
        )
        self._eos_ids = eos_ids(self._model, self._tokenizer)
        self._vocab: Vocab | None = None  # built on the worker thread by the first structured request
        # The model's own limit, or a shorter one from the TaskModel (maxModelLen): prompts past it are refused.
        known = getattr(self._model.config, "max_position_embeddings", None)
        self._context = min(filter(None, (known, max_model_len)), default=None)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sb-transformers")
        self._batcher = MicroBatcher(
            self._run_batch, max_batch_size=max_batch_size, max_wait_s=batch_wait_s, stats=self.stats
        )

    # ---- the contract ----------------------------------------------------------------------------------------------

    async def generate(self, request: GenerationRequest) -> GenerationResult:
        plan = plan_for(request.json_schema)
        if plan is not None:
            return await self._generate_guided(request, plan)
        job = self._prepare(request)
        result = await self._submit(job)
        if request.json_schema is None:
            return result
        return await self._validated(request, result)

    async def stream(self, request: GenerationRequest) -> AsyncIterator[str | GenerationResult]:
        if plan_for(request.json_schema) is not None:  # structured output arrives whole: one chunk, then the result
            result = await self.generate(request)
            yield result.text
            yield result
            return
        loop = asyncio.get_running_loop()
        tokens: asyncio.Queue[int | None] = asyncio.Queue()
        job = replace(self._prepare(request), sink=lambda token: loop.call_soon_threadsafe(tokens.put_nowait, token))
        # A stream is one row of the shared micro-batch, next to non-streamed requests and other streams.
        done = asyncio.ensure_future(self._batcher.submit(job))
        scanner, chunks = StopScanner(job.sampling.stop), [job.prefix] if job.prefix else []
        ids: list[int] = []
        try:
            if job.prefix:
                yield job.prefix
            async for piece in self._pieces(tokens, done, ids):
                out = scanner.feed(piece)
                if out:
                    chunks.append(out)
                    yield out
                if scanner.stopped:
                    job.cancel.set()
                    break
            tail = scanner.flush()
            if tail:
                chunks.append(tail)
                yield tail
            if not scanner.stopped:
                await done  # raises what the batch raised
        finally:
            job.cancel.set()  # closed early (client gone, deadline): the row stops at the next decoding step
            if not done.done():
                done.cancel()
        yield self._stream_result(request, job, "".join(chunks), ids, scanner.stopped)

    async def _pieces(self, tokens: asyncio.Queue, done: asyncio.Future, ids: list[int]) -> AsyncIterator[str]:
        """Text as the row's tokens arrive (decoded whole each time, so multi-token characters come out right)."""
        text = ""
        while True:
            getter = asyncio.ensure_future(tokens.get())
            await asyncio.wait({getter, done}, return_when=asyncio.FIRST_COMPLETED)
            if not getter.done():
                getter.cancel()
                if done.exception() is not None or tokens.empty():
                    return
                getter = asyncio.ensure_future(tokens.get())
            token = await getter
            if token is None:
                return
            ids.append(token)
            end = next((k for k, t in enumerate(ids) if t in self._eos_ids), None)
            full = self._tokenizer.decode(ids[:end], skip_special_tokens=True)
            if full.endswith("\ufffd"):  # half a multi-byte character: wait for the rest
                continue
            if len(full) > len(text):
                yield full[len(text) :]
                text = full

    async def _submit(self, job: Job) -> GenerationResult:
        """One row of the micro-batch; a caller that goes away (cancelled, deadline) takes its row out of the batch."""
        try:
            return await self._batcher.submit(job)
        finally:
            job.cancel.set()

    async def health(self) -> EngineHealth:
        detail = "closed" if self._closed else ""
        return EngineHealth(ready=not self._closed, kind=self.kind, model=self.model, detail=detail)

    async def warm_up(self) -> None:
        """A short padded batch: the first passes over new shapes are several times slower on CPU."""
        warm = [
            GenerationRequest(prompt=text, sampling=SamplingParams(max_tokens=4)) for text in ("Hello", "Hi there!")
        ]
        await asyncio.gather(*(self.generate(request) for request in warm))

    async def close(self) -> None:
        self._closed = True
        self._executor.shutdown(wait=False, cancel_futures=True)

    # ---- preparing requests ----------------------------------------------------------------------------------------

    def _prepare(
        self, request: GenerationRequest, correction: tuple[str, str] | None = None, guided: bool = False
    ) -> Job:
        if self._closed:
            raise ModelNotReady(f"engine for {self.model} is closed")
        check_schema(request.json_schema)
        raw = request.prompt is not None and request.json_schema is None
        text, prefix = (request.prompt or "", "") if raw else self._render_chat(request, correction)
        if guided:  # the constrained decoder writes the whole answer itself
            text, prefix = text[: len(text) - len(prefix)], ""
        tokens_in = len(self._tokenizer(text, add_special_tokens=raw).input_ids)
        if self._context and tokens_in + request.sampling.max_tokens > self._context:
            raise InvalidRequest(
                f"prompt ({tokens_in} tokens) + max_tokens ({request.sampling.max_tokens}) exceed the model's "
                f"context of {self._context} tokens",
                field="max_tokens",
            )
        return Job(text, tokens_in, request.sampling, raw, prefix)

    def _render_chat(self, request: GenerationRequest, correction: tuple[str, str] | None) -> tuple[str, str]:
        messages = request.chat()
        if request.json_schema is not None:
            messages = with_json_instruction(messages, request.json_schema)
        if correction is not None:
            bad, why = correction
            fix = f"That answer was rejected: {why}. Reply again with only the corrected JSON object."
            messages += [{"role": "assistant", "content": bad}, {"role": "user", "content": fix}]
        template = None if self._tokenizer.chat_template else _FALLBACK_TEMPLATE
        text = self._tokenizer.apply_chat_template(
            messages, tokenize=False, add_generation_prompt=True, chat_template=template
        )
        prefix = _json_prefix(request.json_schema)
        return text + prefix, prefix

    async def _generate_guided(self, request: GenerationRequest, plan: structured.Node) -> GenerationResult:
        job = self._prepare(request, guided=True)
        self.stats.record_batch(1)
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor, self._decode_guided, job, plan, request.json_schema)
        except RuntimeError as exc:  # executor shut down
            raise ModelNotReady(f"engine for {self.model} is closed") from exc

    async def _validated(self, request: GenerationRequest, result: GenerationResult) -> GenerationResult:
        spent_in, spent_out = 0, 0
        for attempt in range(self.json_retries + 1):
            spent_in, spent_out = spent_in + result.tokens_in, spent_out + result.tokens_out
            try:
                parsed = parse_json_output(result.text, request.json_schema or {})
            except TaskFailed as exc:
                if attempt == self.json_retries:
                    raise TaskFailed(f"{exc.message} (after {attempt + 1} attempts)") from None
                result = await self._submit(self._prepare(request, (result.text, exc.message)))
                continue
            text = json.dumps(parsed, ensure_ascii=False)
            return replace(result, text=text, parsed=parsed, tokens_in=spent_in, tokens_out=spent_out)
        raise AssertionError("unreachable")

    # ---- running the model (worker thread) -------------------------------------------------------------------------

    async def _run_batch(self, jobs: list[Job]) -> list[GenerationResult | BaseException]:
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor, self._generate_batch, jobs)
        except RuntimeError as exc:  # executor shut down
            raise ModelNotReady(f"engine for {self.model} is closed") from exc

    def _generate_batch(self, jobs: list[Job]) -> list[GenerationResult | BaseException]:
        results: dict[int, GenerationResult | BaseException] = {}
        groups: dict[tuple, list[int]] = {}
        for i, job in enumerate(jobs):
            groups.setdefault(job.group_key(), []).append(i)
        for indexes in groups.values():
            group = [jobs[i] for i in indexes]
            outputs: list[GenerationResult | BaseException]
            try:
                outputs = list(self._generate_group(group))
            except SwitchboardError as exc:
                outputs = [exc] * len(group)
            results.update(zip(indexes, outputs))
        return [results[i] for i in range(len(jobs))]

    def _generate_group(self, jobs: list[Job]) -> list[GenerationResult]:
        encoded = self._tokenizer(
            [job.text for job in jobs], return_tensors="pt", padding=True, add_special_tokens=jobs[0].raw_prompt
        )
        max_new = max(job.sampling.max_tokens for job in jobs)
        rows = Rows(jobs, self._eos_ids, encoded["input_ids"].shape[1], self.stats)
        try:
            generated = self._run_generate(
                encoded, jobs[0].sampling, max_new, streamer=rows, stopping_criteria=rows.criteria()
            )
        finally:
            rows.end()
        return [self._row_result(job, row.tolist()) for job, row in zip(jobs, generated)]

    def _run_generate(self, encoded: Any, sampling: SamplingParams, max_new: int, **extra: Any) -> Any:
        import torch

        options: dict[str, Any] = {"max_new_tokens": max_new, "pad_token_id": self._tokenizer.pad_token_id}
        if sampling.greedy:
            options.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        else:
            options.update(do_sample=True, temperature=sampling.temperature, top_p=sampling.top_p, top_k=None)
            if sampling.seed is not None:
                torch.manual_seed(sampling.seed)
        try:
            with torch.inference_mode():
                out = self._model.generate(**encoded, **options, **extra)
        except (RuntimeError, ValueError, IndexError) as exc:
            raise TaskFailed(f"generation failed in the transformers engine: {type(exc).__name__}") from exc
        return out[:, encoded["input_ids"].shape[1] :]

    def _row_result(self, job: Job, ids: list[int]) -> GenerationResult:
        ids = ids[: job.sampling.max_tokens]
        end = next((k for k, token in enumerate(ids) if token in self._eos_ids), None)
        body = self._tokenizer.decode(ids[:end], skip_special_tokens=True)
        tokens_out = len(ids) if end is None else end + 1
        finish: FinishReason = "stop" if end is not None else "length"
        text, stopped = cut_at_stop(job.prefix + body, job.sampling.stop)
        if stopped:
            finish, tokens_out = "stop", self._count(text[len(job.prefix) :])
        return GenerationResult(text, job.tokens_in, tokens_out, finish)

    def _stream_result(
        self, request: GenerationRequest, job: Job, text: str, ids: list[int], stopped: bool
    ) -> GenerationResult:
        end = next((k for k, token in enumerate(ids) if token in self._eos_ids), None)
        tokens_out = len(ids) if end is None else end + 1
        if stopped:
            tokens_out = self._count(text[len(job.prefix) :])
        finish: FinishReason = "stop" if stopped or end is not None else "length"
        parsed = parse_json_output(text, request.json_schema) if request.json_schema is not None else None
        return GenerationResult(text, job.tokens_in, tokens_out, finish, parsed=parsed)

    def _count(self, text: str) -> int:
        return len(self._tokenizer(text, add_special_tokens=False).input_ids)

    def _decode_guided(self, job: Job, plan: structured.Node, schema: dict[str, Any] | None) -> GenerationResult:
        import torch

        if self._vocab is None:
            self._vocab = build_vocab(self._tokenizer, self._model, self._eos_ids)
        prompt = self._tokenizer(job.text, add_special_tokens=False).input_ids
        decoder = GuidedDecoder(self._model, self._tokenizer, self._vocab, prompt, job.sampling)
        try:
            with torch.inference_mode():
                text, _ = structured.run(plan, decoder.answer)
        except (RuntimeError, ValueError, IndexError) as exc:
            raise TaskFailed(f"structured generation failed in the transformers engine: {type(exc).__name__}") from exc
        parsed = parse_json_output(text, schema or {})  # valid by construction; checked all the same
        finish: FinishReason = "length" if decoder.cut_short else "stop"
        return GenerationResult(text, job.tokens_in, self._count(text), finish, parsed=parsed)


def _json_prefix(schema: dict[str, Any] | None) -> str:
    """The start of the answer, written for the model: `{"first_required_key": ` (and `"` for a string)."""
    if not schema or schema.get("type") != "object":
        return ""
    required = schema.get("required") or []
    if not required:
        return "{"
    first = (schema.get("properties") or {}).get(required[0], {})
    opening = '"' if first.get("type") == "string" and "enum" not in first else ""
    return "{" + f"{json.dumps(required[0])}: {opening}"
