"""The transformers engine's batch rows: a request rendered for the model (`Job`), and the rows of one running
`model.generate` call (`Rows`), which feed streams token by token and stop rows that are cancelled or done."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from serving.engines.base import EngineStats, SamplingParams


@dataclass(frozen=True)
class Job:
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


class Rows:
    """The rows of one running batch, seen by `model.generate` at every decoding step (worker thread).

    As a streamer it hands each new token to the row's sink (streams); as a stopping criterion it ends a row that
    was cancelled, reached its own max_tokens or wrote EOS, so that row stops costing a step's work for itself and
    the batch ends as soon as every row has. A cancelled row generates nothing after the step it was seen in.
    """

    def __init__(self, jobs: list[Job], eos_ids: set[int], prompt_len: int, stats: EngineStats):
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
