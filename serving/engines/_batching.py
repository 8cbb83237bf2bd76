"""Micro-batching: collect concurrent requests for a few milliseconds and hand them to one batched call."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Generic, TypeVar

from serving.engines.base import EngineStats

T = TypeVar("T")
R = TypeVar("R")


@dataclass
class _LoopState:
    loop: asyncio.AbstractEventLoop
    pending: list[tuple[Any, asyncio.Future]] = field(default_factory=list)
    full: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task | None = None


class MicroBatcher(Generic[T, R]):
    """Runs `run_batch(items) -> results` (a result may be an exception) over batches of at most `max_batch_size`.

    Batches run one at a time; requests that arrive while a batch runs form the next one.
    """

    def __init__(
        self,
        run_batch: Callable[[list[T]], Awaitable[list[R | BaseException]]],
        *,
        max_batch_size: int = 8,
        max_wait_s: float = 0.01,
        stats: EngineStats | None = None,
    ):
        self._run_batch = run_batch
        self.max_batch_size = max_batch_size
        self.max_wait_s = max_wait_s
        self.stats = stats or EngineStats()
        self._state: _LoopState | None = None

    async def submit(self, item: T) -> R:
        state = self._state_for_running_loop()
        future = state.loop.create_future()
        state.pending.append((item, future))
        if len(state.pending) >= self.max_batch_size:
            state.full.set()
        if state.task is None or state.task.done():
            state.task = state.loop.create_task(self._drain(state))
        return await future

    def _state_for_running_loop(self) -> _LoopState:
        loop = asyncio.get_running_loop()
        if self._state is None or self._state.loop is not loop:
            self._state = _LoopState(loop)
        return self._state

    async def _drain(self, state: _LoopState) -> None:
        while state.pending:
            if len(state.pending) < self.max_batch_size:
                try:
                    await asyncio.wait_for(state.full.wait(), self.max_wait_s)
                except TimeoutError:
                    pass
            batch, state.pending = state.pending[: self.max_batch_size], state.pending[self.max_batch_size :]
            if len(state.pending) < self.max_batch_size:
                state.full.clear()
            await self._run(batch)

    async def _run(self, batch: list[tuple[Any, asyncio.Future]]) -> None:
        live = [(item, future) for item, future in batch if not future.done()]
        if not live:
            return
        self.stats.record_batch(len(live))
        try:
            results = await self._run_batch([item for item, _ in live])
        except asyncio.CancelledError:
            for _, future in live:
                future.cancel()
            raise
        except Exception as exc:  # noqa: BLE001 - handed to every waiter, raised there
            results = [exc] * len(live)
        for (_, future), result in zip(live, results, strict=True):
            if future.done():
                continue
            if isinstance(result, BaseException):
                future.set_exception(result)
            else:
                future.set_result(result)
