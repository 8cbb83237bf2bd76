"""Constrained decoding with a transformers model: the plan of `serving.engines.structured` answered token by token
over one growing KV cache (on the engine's worker thread), so the output is valid against the schema by construction."""

from __future__ import annotations

import inspect
import random
from dataclasses import dataclass
from typing import Any

from serving.engines import structured
from serving.engines.base import SamplingParams, check_schema


def plan_for(schema: dict[str, Any] | None) -> structured.Node | None:
    """The constrained-decoding plan for a schema, or None (no schema, or one outside the supported subset)."""
    if schema is None:
        return None
    check_schema(schema)
    try:
        return structured.compile_schema(schema)
    except structured.UnsupportedSchema:
        return None


@dataclass(frozen=True)
class Vocab:
    """What the structured decoder needs to know about every token, computed once per engine."""

    string_kinds: list[tuple[str, str]]
    texts: list[str]
    string_plain: Any  # bool tensors over the logits' vocabulary
    string_close: Any
    number: Any
    after_number: Any


def build_vocab(tokenizer: Any, model: Any, eos_ids: set[int]) -> Vocab:
    import torch

    size = model.get_output_embeddings().weight.shape[0]
    special = set(tokenizer.all_special_ids)
    texts = tokenizer.batch_decode([[i] for i in range(min(size, len(tokenizer)))]) + [""] * max(
        0, size - len(tokenizer)
    )
    texts = ["" if i in special else text for i, text in enumerate(texts)]
    kinds = [structured.string_token(text) for text in texts]
    for eos in eos_ids:
        kinds[eos] = (structured.CLOSE, "")  # the model wanting to stop ends the string
    mask = lambda test: torch.tensor([test(i) for i in range(size)], dtype=torch.bool)  # noqa: E731
    return Vocab(
        string_kinds=kinds,
        texts=texts,
        string_plain=mask(lambda i: kinds[i][0] == structured.PLAIN),
        string_close=mask(lambda i: kinds[i][0] == structured.CLOSE),
        number=mask(lambda i: structured.number_token(texts[i])),
        after_number=mask(lambda i: i in eos_ids or texts[i][:1] in (",", "}", "]", " ", "\n")),
    )


class GuidedDecoder:
    """Answers a structured plan's steps with the model, on the worker thread, over one growing KV cache.

    Text the plan fixes is kept as pending text and tokenized in one piece just before the model must look at it;
    tokens the model chose are fed as they are. A token that would close a string (`",`) or overrun maxLength is not
    fed: the part that belongs to the string joins the pending text instead.
    """

    SCORE_ALL = 8  # up to this many options of up to SCORE_TOKENS tokens: scored whole; more or longer: token trie
    SCORE_TOKENS = 12

    def __init__(self, model: Any, tokenizer: Any, vocab: Vocab, prompt: list[int], sampling: SamplingParams):
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
