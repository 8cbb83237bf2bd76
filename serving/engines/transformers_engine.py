"""Generation with Hugging Face transformers on CPU: micro-batched, streamed, off the event loop."""

from __future__ import annotations

import asyncio
import inspect
import json
import os
import random
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, AsyncIterator

from serving.engines import structured
from serving.engines._batching import MicroBatcher
from serving.engines.base import (
    EngineHealth,
    EngineStats,
    GenerationRequest,
    GenerationResult,
    SamplingParams,
    StopScanner,
    check_schema,
    cut_at_stop,
    parse_json_output,
    with_json_instruction,
)
from serving.errors import InvalidRequest, ModelNotReady, SwitchboardError, TaskFailed

_FALLBACK_TEMPLATE = "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}assistant:"


@dataclass(frozen=True)
class _Job:
    """A request rendered for the model: the text to tokenize and what to prepend to the output."""

    text: str
    tokens_in: int
    sampling: SamplingParams
    raw_prompt: bool
    prefix: str = ""
    # Set by the caller (cancelled, deadline, client gone, stop string seen): the row leaves the batch at the next step.
    cancel: threading.Event = field(default_factory=threading.Event, compare=False)
    # For a stream: called on the worker thread with each new token id of this row (None when the row has ended).
    sink: Any = field(default=None, compare=False)

    def group_key(self) -> tuple:
        s = self.sampling
        return (s.greedy, s.temperature, s.top_p, s.seed, self.raw_prompt)


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

    kind = "transformers"

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
        self._tokenizer, self._model = _load(Path(model_path), dtype, num_threads, Path(adapter) if adapter else None)
        self._eos_ids = _eos_ids(self._model, self._tokenizer)
        self._vocab: _Vocab | None = None  # built on the worker thread by the first structured request
        # The model's own limit, or a shorter one from the TaskModel (maxModelLen): prompts past it are refused.
        known = getattr(self._model.config, "max_position_embeddings", None)
        self._context = min(filter(None, (known, max_model_len)), default=None)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sb-transformers")
        self._batcher = MicroBatcher(
            self._run_batch, max_batch_size=max_batch_size, max_wait_s=batch_wait_s, stats=self.stats
        )

    # ---- the contract ----------------------------------------------------------------------------------------------

    async def generate(self, request: GenerationRequest) -> GenerationResult:
        plan = _plan(request.json_schema)
        if plan is not None:
            return await self._generate_guided(request, plan)
        job = self._prepare(request)
        result = await self._submit(job)
        if request.json_schema is None:
            return result
        return await self._validated(request, result)

    async def stream(self, request: GenerationRequest) -> AsyncIterator[str | GenerationResult]:
        if _plan(request.json_schema) is not None:  # structured output arrives whole: one chunk, then the result
            result = await self.generate(request)
            yield result.text
            yield result
            return
        loop = asyncio.get_running_loop()
        tokens: asyncio.Queue[int | None] = asyncio.Queue()
        job = replace(self._prepare(request), sink=lambda token: loop.call_soon_threadsafe(tokens.put_nowait, token))
        # A stream is one row of the shared micro-batch, next to non-streamed requests and other streams.
        done = asyncio.ensure_future(self._batcher.submit(job))
        scanner, chunks, ids = StopScanner(job.sampling.stop), [job.prefix] if job.prefix else [], []
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

    async def _submit(self, job: _Job) -> GenerationResult:
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
        warm = [GenerationRequest(prompt=text, sampling=SamplingParams(max_tokens=4)) for text in ("Hello", "Hi there!")]
        await asyncio.gather(*(self.generate(request) for request in warm))

    async def close(self) -> None:
        self._closed = True
        self._executor.shutdown(wait=False, cancel_futures=True)

    # ---- preparing requests ----------------------------------------------------------------------------------------

    def _prepare(
        self, request: GenerationRequest, correction: tuple[str, str] | None = None, guided: bool = False
    ) -> _Job:
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
        return _Job(text, tokens_in, request.sampling, raw, prefix)

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

    async def _run_batch(self, jobs: list[_Job]) -> list[GenerationResult | BaseException]:
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor, self._generate_batch, jobs)
        except RuntimeError as exc:  # executor shut down
            raise ModelNotReady(f"engine for {self.model} is closed") from exc

    def _generate_batch(self, jobs: list[_Job]) -> list[GenerationResult | BaseException]:
        results: dict[int, GenerationResult | BaseException] = {}
        groups: dict[tuple, list[int]] = {}
        for i, job in enumerate(jobs):
            groups.setdefault(job.group_key(), []).append(i)
        for indexes in groups.values():
            group = [jobs[i] for i in indexes]
            try:
                outputs = self._generate_group(group)
            except SwitchboardError as exc:
                outputs = [exc] * len(group)
            results.update(zip(indexes, outputs))
        return [results[i] for i in range(len(jobs))]

    def _generate_group(self, jobs: list[_Job]) -> list[GenerationResult]:
        encoded = self._tokenizer(
            [job.text for job in jobs], return_tensors="pt", padding=True, add_special_tokens=jobs[0].raw_prompt
        )
        max_new = max(job.sampling.max_tokens for job in jobs)
        rows = _Rows(jobs, self._eos_ids, encoded["input_ids"].shape[1], self.stats)
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

    def _row_result(self, job: _Job, ids: list[int]) -> GenerationResult:
        ids = ids[: job.sampling.max_tokens]
        end = next((k for k, token in enumerate(ids) if token in self._eos_ids), None)
        body = self._tokenizer.decode(ids[:end], skip_special_tokens=True)
        tokens_out = len(ids) if end is None else end + 1
        finish = "stop" if end is not None else "length"
        text, stopped = cut_at_stop(job.prefix + body, job.sampling.stop)
        if stopped:
            finish, tokens_out = "stop", self._count(text[len(job.prefix) :])
        return GenerationResult(text, job.tokens_in, tokens_out, finish)

    def _stream_result(
        self, request: GenerationRequest, job: _Job, text: str, ids: list[int], stopped: bool
    ) -> GenerationResult:
        end = next((k for k, token in enumerate(ids) if token in self._eos_ids), None)
        tokens_out = len(ids) if end is None else end + 1
        if stopped:
            tokens_out = self._count(text[len(job.prefix) :])
        finish = "stop" if stopped or end is not None else "length"
        parsed = parse_json_output(text, request.json_schema) if request.json_schema is not None else None
        return GenerationResult(text, job.tokens_in, tokens_out, finish, parsed=parsed)

    def _count(self, text: str) -> int:
        return len(self._tokenizer(text, add_special_tokens=False).input_ids)

    def _decode_guided(self, job: _Job, plan: structured.Node, schema: dict[str, Any] | None) -> GenerationResult:
        import torch

        if self._vocab is None:
            self._vocab = _build_vocab(self._tokenizer, self._model, self._eos_ids)
        prompt = self._tokenizer(job.text, add_special_tokens=False).input_ids
        decoder = _Guided(self._model, self._tokenizer, self._vocab, prompt, job.sampling)
        try:
            with torch.inference_mode():
                text, _ = structured.run(plan, decoder.answer)
        except (RuntimeError, ValueError, IndexError) as exc:
            raise TaskFailed(f"structured generation failed in the transformers engine: {type(exc).__name__}") from exc
        parsed = parse_json_output(text, schema or {})  # valid by construction; checked all the same
        finish = "length" if decoder.cut_short else "stop"
        return GenerationResult(text, job.tokens_in, self._count(text), finish, parsed=parsed)


def _plan(schema: dict[str, Any] | None) -> structured.Node | None:
    """The constrained-decoding plan for a schema, or None (no schema, or one outside the supported subset)."""
    if schema is None:
        return None
    check_schema(schema)
    try:
        return structured.compile_schema(schema)
    except structured.UnsupportedSchema:
        return None


@dataclass(frozen=True)
class _Vocab:
    """What the structured decoder needs to know about every token, computed once per engine."""

    string_kinds: list[tuple[str, str]]
    texts: list[str]
    string_plain: Any  # bool tensors over the logits' vocabulary
    string_close: Any
    number: Any
    after_number: Any


def _build_vocab(tokenizer: Any, model: Any, eos_ids: set[int]) -> _Vocab:
    import torch

    size = model.get_output_embeddings().weight.shape[0]
    special = set(tokenizer.all_special_ids)
    texts = tokenizer.batch_decode([[i] for i in range(min(size, len(tokenizer)))]) + [""] * max(0, size - len(tokenizer))
    texts = ["" if i in special else text for i, text in enumerate(texts)]
    kinds = [structured.string_token(text) for text in texts]
    for eos in eos_ids:
        kinds[eos] = (structured.CLOSE, "")  # the model wanting to stop ends the string
    mask = lambda test: torch.tensor([test(i) for i in range(size)], dtype=torch.bool)  # noqa: E731
    return _Vocab(
        string_kinds=kinds,
        texts=texts,
        string_plain=mask(lambda i: kinds[i][0] == structured.PLAIN),
        string_close=mask(lambda i: kinds[i][0] == structured.CLOSE),
        number=mask(lambda i: structured.number_token(texts[i])),
        after_number=mask(lambda i: i in eos_ids or texts[i][:1] in (",", "}", "]", " ", "\n")),
    )


class _Guided:
    """Answers a structured plan's steps with the model, on the worker thread, over one growing KV cache.

    Text the plan fixes is kept as pending text and tokenized in one piece just before the model must look at it;
    tokens the model chose are fed as they are. A token that would close a string (`",`) or overrun maxLength is not
    fed: the part that belongs to the string joins the pending text instead.
    """

    SCORE_ALL = 8  # up to this many options of up to SCORE_TOKENS tokens: scored whole; more or longer: token trie
    SCORE_TOKENS = 12

    def __init__(self, model: Any, tokenizer: Any, vocab: _Vocab, prompt: list[int], sampling: SamplingParams):
        import torch
        from transformers import DynamicCache

        self._model, self._tokenizer, self._vocab = model, tokenizer, vocab
        self._ids, self._fed, self._pending, self._logits = list(prompt), 0, "", None
        self._cache = DynamicCache(config=model.config)
        # transformers 5 renames `past_key_values` to `cache` in later minor versions
        self._cache_arg = "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"
        self._start, self._budget = len(prompt), sampling.max_tokens
        self._temperature = 0.0 if sampling.greedy else sampling.temperature
        self._random = torch.Generator()
        self._random.manual_seed(sampling.seed if sampling.seed is not None else random.getrandbits(63))
        self.cut_short = False  # a free string or number was ended by the token budget

    def answer(self, step: structured.Step) -> Any:
        if isinstance(step, structured.Emit):
            self._pending += step.text
            return None
        if isinstance(step, structured.Pick):
            return self._pick(step)
        if isinstance(step, structured.FreeString):
            return self._string(step)
        return self._number(step)

    # ---- the three decisions ----

    def _pick(self, step: structured.Pick) -> int:
        if step.stop is not None and self._spent() >= self._budget:
            self.cut_short = True
            self._pending += step.options[step.stop]
            return step.stop
        shared = structured.common_prefix(step.options)
        self._pending += shared
        self._next_logits()  # flush the pending text, so the options are tokenized on their own
        sequences = [self._encode(option[len(shared) :]) for option in step.options]
        if len(sequences) <= self.SCORE_ALL and max(map(len, sequences)) <= self.SCORE_TOKENS:
            index = self._score_whole(sequences)
            self._ids += sequences[index]
            return index
        return self._pick_by_trie(sequences)

    def _score_whole(self, sequences: list[list[int]]) -> int:
        """The option with the highest total log-likelihood (each scored on top of the cache, then cropped off)."""
        import torch

        first = torch.log_softmax(self._next_logits(), -1)
        scores = []
        for tokens in sequences:
            total = first[tokens[0]] if tokens else torch.tensor(0.0)
            if len(tokens) > 1:
                following = torch.log_softmax(self._forward(tokens[:-1], keep=0), -1)
                total = total + following[torch.arange(len(tokens) - 1), tokens[1:]].sum()
                self._cache.crop(-(len(tokens) - 1))
            scores.append(total)
        return self._draw(torch.stack(scores))

    def _pick_by_trie(self, sequences: list[list[int]]) -> int:
        """Greedy over the options' tokens until one option is decided; its remaining tokens are then written whole."""
        trie = structured.OptionTrie(sequences)
        while (index := trie.decided()) is None:
            allowed = trie.allowed()
            token = allowed[self._draw(self._next_logits()[allowed])]
            trie.advance(token)
            self._ids.append(token)
        self._ids += trie.rest(index)
        return index

    def _string(self, step: structured.FreeString) -> str:
        content = ""
        while True:
            if self._spent() >= self._budget and len(content) >= step.min_length:
                self.cut_short = True
                return content
            allowed = self._vocab.string_plain
            if len(content) >= step.min_length:
                allowed = allowed | self._vocab.string_close
            token = self._draw(self._next_logits().masked_fill(~allowed, float("-inf")))
            kind, piece = self._vocab.string_kinds[token]
            grown, closed = structured.extend_string(content, kind, piece, step)
            if closed:
                self._pending += grown[len(content) :]
                return grown
            content = grown
            self._ids.append(token)

    def _number(self, step: structured.FreeNumber) -> str:
        integer, text = step.node.integer, ""
        self._next_logits()
        start = len(self._ids)
        while self._spent() < self._budget:
            logits = self._next_logits()
            token = self._number_token(logits, text, integer)
            if token is None:
                break
            text += self._vocab.texts[token]
            self._ids.append(token)
        final = structured.finish_number(text, step.node)
        if final != text:
            self._rewind(start)
            self._pending += final
        return final

    def _number_token(self, logits: Any, text: str, integer: bool) -> int | None:
        """The best token that continues the number, or None when ending it is likelier (or nothing continues it)."""
        ranked = logits.masked_fill(~self._vocab.number, float("-inf")).topk(16)
        for value, token in zip(ranked.values.tolist(), ranked.indices.tolist()):
            if value == float("-inf"):
                return None
            if structured.number_continues(text, self._vocab.texts[token], integer):
                if structured.number_complete(text, integer):
                    end = logits.masked_fill(~self._vocab.after_number, float("-inf")).max().item()
                    return token if value >= end else None
                return token
        return None

    # ---- the model and its cache ----

    def _spent(self) -> int:
        return len(self._ids) - self._start + (1 if self._pending else 0)

    def _encode(self, text: str) -> list[int]:
        return self._tokenizer(text, add_special_tokens=False).input_ids if text else []

    def _next_logits(self) -> Any:
        """Logits for the token after everything written so far (feeding what the model has not seen yet)."""
        if self._pending:
            self._ids += self._encode(self._pending)
            self._pending = ""
        if self._fed < len(self._ids):
            self._logits = self._forward(self._ids[self._fed :], keep=1)[-1]
            self._fed = len(self._ids)
        return self._logits

    def _forward(self, tokens: list[int], keep: int) -> Any:
        import torch

        cache = {self._cache_arg: self._cache}
        out = self._model(input_ids=torch.tensor([tokens]), use_cache=True, logits_to_keep=keep, **cache)
        return out.logits[0].float()

    def _rewind(self, length: int) -> None:
        """Forget the tokens from `length` on (the last kept one is fed again, to get its logits back)."""
        keep = min(self._fed, length - 1)
        if self._fed > keep:
            self._cache.crop(-(self._fed - keep))
            self._fed = keep
        del self._ids[length:]

    def _draw(self, scores: Any) -> int:
        """Argmax (greedy) or a sample at the request's temperature."""
        import torch

        if self._temperature == 0:
            return int(scores.argmax())
        probs = torch.softmax(scores / self._temperature, -1)
        return int(torch.multinomial(probs, 1, generator=self._random))


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


def _load(path: Path, dtype: str, num_threads: int | None, adapter: Path | None = None) -> tuple[Any, Any]:
    os.environ["HF_HUB_OFFLINE"] = "1"
    if not (path / "config.json").is_file():
        raise ModelNotReady(f"no model at {path} (expected config.json; prepare it with `switchboard models prepare`)")
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if num_threads:
        torch.set_num_threads(num_threads)
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        model = AutoModelForCausalLM.from_pretrained(path, local_files_only=True, dtype=getattr(torch, dtype))
    except (OSError, ValueError) as exc:
        raise ModelNotReady(f"cannot load the model at {path}: {exc}") from exc
    if adapter is not None:
        model = _merge_adapter(model, adapter)
    model.eval()
    with torch.inference_mode():  # touch every (memory-mapped) weight now rather than during the first request
        for parameter in model.parameters():
            parameter.sum()
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer, model


def _merge_adapter(model: Any, adapter: Path) -> Any:
    """Base + one LoRA adapter, merged into the weights (one adapter per deployment: no per-request LoRA cost)."""
    if not (adapter / "adapter_config.json").is_file():
        raise ModelNotReady(f"no LoRA adapter at {adapter} (expected adapter_config.json)")
    from peft import PeftModel
    from safetensors import SafetensorError

    try:
        return PeftModel.from_pretrained(model, adapter, local_files_only=True).merge_and_unload()
    except (OSError, ValueError, RuntimeError, KeyError, SafetensorError) as exc:  # a corrupt or mismatched file
        raise ModelNotReady(f"cannot load the adapter at {adapter}: {exc}") from exc


def _eos_ids(model: Any, tokenizer: Any) -> set[int]:
    configured = getattr(model.generation_config, "eos_token_id", None)
    ids = set(configured if isinstance(configured, list) else [configured] if configured is not None else [])
    if tokenizer.eos_token_id is not None:
        ids.add(tokenizer.eos_token_id)
    return ids


class _Rows:
    """The rows of one running batch, seen by `model.generate` at every decoding step (worker thread).

    As a streamer it hands each new token to the row's sink (streams); as a stopping criterion it ends a row that
    was cancelled, reached its own max_tokens or wrote EOS, so that row stops costing a step's work for itself and
    the batch ends as soon as every row has. A cancelled row generates nothing after the step it was seen in.
    """

    def __init__(self, jobs: list[_Job], eos_ids: set[int], prompt_len: int, stats: EngineStats):
        self._jobs, self._eos, self._prompt_len, self._stats = jobs, eos_ids, prompt_len, stats
        self._ended = [False] * len(jobs)
        self.generated = [0] * len(jobs)  # tokens made per row (the load test's "after a deadline" figure)

    def put(self, value: Any) -> None:
        if value.dim() == 2:  # the prompt (batch x length); each step's new tokens come as one id per row
            return
        for i, token in enumerate(value.view(-1).tolist()):
            if self._ended[i] or self.generated[i] >= self._jobs[i].sampling.max_tokens:
                continue
            self.generated[i] += 1
            if self._jobs[i].cancel.is_set():
                self._stats.tokens_after_cancel += 1
            if self._jobs[i].sink is not None:
                self._jobs[i].sink(token)
            if token in self._eos:
                self._finish(i)

    def end(self) -> None:
        for i in range(len(self._jobs)):
            self._finish(i)

    def _finish(self, i: int) -> None:
        if not self._ended[i]:
            self._ended[i] = True
            if self._jobs[i].sink is not None:
                self._jobs[i].sink(None)

    def stopped(self, input_ids: Any) -> list[bool]:
        made = input_ids.shape[1] - self._prompt_len
        out = []
        for i, job in enumerate(self._jobs):
            if not self._ended[i] and job.cancel.is_set():
                self._stats.cancelled += 1
            if job.cancel.is_set():
                self._finish(i)
            out.append(self._ended[i] or made >= job.sampling.max_tokens)
        return out

    def criteria(self) -> Any:
        import torch
        from transformers import StoppingCriteria, StoppingCriteriaList

        rows = self

        class _Stopped(StoppingCriteria):
            def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
                return torch.tensor(rows.stopped(input_ids), dtype=torch.bool)

        return StoppingCriteriaList([_Stopped()])
