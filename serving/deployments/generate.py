"""Ray Serve deployment of a generative model (summarize, score-quality, reply); the engine batches internally."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from serving.errors import SwitchboardError
from serving.replica import generation
from serving.settings import TracingSettings
from serving.tasks.jobs import GenerateJob
from serving.telemetry import tracing
from serving.vocabulary.kinds import EngineKind

_log = logging.getLogger(__name__)


# Options of a generative deployment that choose its adapter; the rest are the engine's.
ADAPTER_KEYS = ("adapter", "fallback_adapter", "adapter_task", "adapter_store")


def gated(options: dict[str, Any]) -> dict[str, Any]:
    """The engine options with the adapter the gate lets serve: the requested one, else the last accepted one, else
    none (the base). Loading is not tried here; `start_engine` also falls back when the chosen adapter fails to load."""
    choice = choose(options)
    return engine_options(options, choice.serving)


def choose(options: dict[str, Any]):
    """The AdapterChoice for these options (fallback: `fallback_adapter`, or the store's last accepted copy)."""
    from serving.models.adapters import choose_adapter

    requested = _path(options.get("adapter"))
    return choose_adapter(requested, _last_good(options))


def engine_options(options: dict[str, Any], adapter: str | None) -> dict[str, Any]:
    rest = {k: v for k, v in options.items() if k not in ADAPTER_KEYS}
    return {**rest, "adapter": adapter} if adapter else rest


def start_engine(kind: str, path: Any, options: dict[str, Any], create: Any = None):
    """The engine with the best adapter that passes the gate and loads (requested > last accepted > base), and the
    AdapterChoice that says which one serves and why. An accepted adapter that loads is copied to the store (local
    mode) so that it can serve later when its folder is replaced by a refused or broken one."""
    from serving.errors import ModelNotReady
    from serving.models.adapters import after_load_failure, remember_accepted

    if create is None:
        from serving.engines import create_engine as create
    choice, last_good = choose(options), _last_good(options)
    while True:
        try:
            engine = create(kind, path, **engine_options(options, choice.serving))
            break
        except ModelNotReady as exc:
            if choice.serving is None:
                raise  # the base model itself cannot load: nothing to fall back to
            choice = after_load_failure(choice, exc.message, last_good)
    if choice.reason:  # paths and figures only: no customer text reaches this log
        _log.warning("generate %s: %s", options.get("adapter_task") or "", choice.reason)
    store, task = options.get("adapter_store"), options.get("adapter_task")
    if choice.accepted and choice.serving and store and task:
        try:
            remember_accepted(Path(store).expanduser(), task, Path(choice.serving))
        except OSError as exc:  # a read-only cache keeps serving; only the fallback copy is missing
            _log.warning("generate %s: could not keep a copy of the accepted adapter: %s", task, exc)
    return engine, choice


def _path(value: Any) -> str | None:
    return str(Path(value).expanduser()) if value else None


def _last_good(options: dict[str, Any]) -> str | None:
    from serving.models.adapters import last_accepted

    if options.get("fallback_adapter"):
        return _path(options["fallback_adapter"])
    store, task = options.get("adapter_store"), options.get("adapter_task")
    return last_accepted(Path(store).expanduser(), task) if store and task else None


class GenerateDeployment:
    def __init__(
        self,
        engine: str,
        model: str,
        cache_dir: str,
        options: dict[str, Any] | None = None,
        tracing_settings: dict | None = None,
        allow_network: bool = False,
        gate_report: dict[str, str] | None = None,
    ):
        """`gate_report`: {"namespace", "taskModel"} in a cluster, where the gate's verdict goes to the TaskModel."""
        from serving.deployments.gate_report import report, verdict
        from serving.engines import create_engine
        from serving.models.store import ModelStore

        tracing.setup_tracing(TracingSettings(**(tracing_settings or {})), "generate")
        self.labels: dict[str, Any] = {"engine": engine, "model": model}
        store = ModelStore(cache_dir, allow_network=allow_network)  # network: cluster mode, for object storage
        path = model if engine == EngineKind.FAKE else store.resolve(model)
        options = dict(options or {})
        refs = {key: options.get(key) for key in ("adapter", "fallback_adapter")}  # as the TaskModel names them
        for key in ("adapter", "fallback_adapter"):
            if engine != EngineKind.FAKE and "://" in str(
                options.get(key) or ""
            ):  # s3:// gs:// pvc:// adapters: a local copy
                try:
                    options[key] = str(store.resolve(options[key]))
                except (SwitchboardError, OSError) as exc:  # not fetched: the gate refuses it, the next one serves
                    _log.warning("generate: %s %s could not be fetched: %s", key, options[key], exc)
        # The requested adapter if the gate accepts it and it loads, else the last accepted one, else the base.
        self.engine, self.adapter = start_engine(engine, path, options, create_engine)
        report(gate_report, verdict(refs["adapter"], refs["fallback_adapter"], self.adapter))

    async def generate(self, job: GenerateJob) -> dict:
        tracing.record_queue_wait(job.traced.dispatched_at, job.traced.trace, **self.labels)
        with tracing.continued(job.traced.trace, "task generate", **self.labels):
            with tracing.step("engine generate", **self.labels):
                result = await generation.generate(self.engine, job)
                tracing.annotate(
                    tokens_in=result["tokens_in"],
                    tokens_out=result["tokens_out"],
                    finish_reason=result["finish_reason"],
                )
            return result

    async def stream(self, job: GenerateJob) -> AsyncIterator[dict]:
        tracing.record_queue_wait(job.traced.dispatched_at, job.traced.trace, **self.labels)
        with tracing.continued(job.traced.trace, "task generate (stream)", **self.labels):
            async for chunk in generation.stream(self.engine, job):
                if "delta" not in chunk:
                    tracing.annotate(
                        tokens_in=chunk["tokens_in"],
                        tokens_out=chunk["tokens_out"],
                        finish_reason=chunk["finish_reason"],
                    )
                yield chunk

    async def ping(self) -> bool:
        return (await self.engine.health()).ready

    async def engine_stats(self) -> dict:
        """This replica's engine counters (batches, cancelled sequences, tokens made after a cancel): counts only."""
        return dataclasses.asdict(self.engine.stats)

    async def adapter_status(self) -> dict:
        """Which adapter serves and why (requestedAdapter, servingAdapter, adapterAccepted, adapterReason)."""
        return self.adapter.status()
