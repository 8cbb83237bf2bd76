"""Starts kserve's ModelServer with one TaskPredictor: REST (Open Inference Protocol v2) on a port, gRPC off or on a second."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

from serving.errors import ConfigError
from serving.profiles.compiler import approximate_counter, wordpiece_counter
from serving.resources import instruction_tokenizer_file
from serving.settings import Settings, load_settings
from serving.vocabulary.catalog import GENERATIVE, Task
from serving.vocabulary.kinds import EngineKind

if TYPE_CHECKING:
    from serving.kserve_server.model import TaskPredictor

DEFAULT_HTTP_PORT = 8080  # what a KServe predictor container is expected to listen on


def run(
    task: str,
    profiles_dir: str | os.PathLike | None = None,
    engine: str | None = None,
    model: str | None = None,
    host: str = "0.0.0.0",
    port: int = DEFAULT_HTTP_PORT,
    *,
    grpc_port: int | None = None,
    settings: Settings | None = None,
) -> int:
    """Serve `task` until SIGTERM/SIGINT; unset arguments come from the settings (SWITCHBOARD_* variables)."""
    settings = settings or load_settings()
    task_model = build_model(task, profiles_dir, engine, model, settings)
    task_model.load()
    with _argv_hidden():
        from serving.kserve_server._model_server import BoundModelServer
    grpc = {"grpc_port": grpc_port, "enable_grpc": True} if grpc_port else {"enable_grpc": False}
    server = BoundModelServer(host, http_port=port, **grpc)
    server.start([task_model])
    return 0


def build_model(
    task: str, profiles_dir: str | os.PathLike | None, engine: str | None, model: str | None, settings: Settings
) -> "TaskPredictor":
    """The TaskPredictor for `task`, its model reference resolved to a folder (not loaded yet)."""
    kind = engine or settings.models.generator_engine
    generative = Task(task) in GENERATIVE
    if generative and kind == EngineKind.NONE:
        raise ConfigError(f"task {task!r} needs a generative engine: pass --engine", field="engine")
    with _argv_hidden():
        from serving.kserve_server.model import TaskPredictor
    model_path = (
        resolve_model(kind, model or settings.models.generator, settings.models.cache_dir) if generative else None
    )
    return TaskPredictor(
        task,
        Path(profiles_dir or settings.profiles_dir).resolve(),
        engine_kind=kind,
        model_path=model_path,
        spacy_model=settings.models.spacy,
        pii_model=settings.models.pii,
        embedding_model=settings.models.embedding,
        count_tokens=token_counter(settings.models.embedding, model_path),
        max_text_chars=settings.max_text_chars,
        poll_interval_s=settings.profile_poll_interval_s,
    )


def resolve_model(engine: str, ref: str, cache_dir: Path) -> str:
    """A local folder for `ref` (through the model store when it is installed); the fake engine takes any name."""
    if engine == EngineKind.FAKE:
        return ref
    try:
        from serving.models.store import ModelStore
    except ImportError:
        if not Path(ref).expanduser().is_dir():
            raise ConfigError(f"model {ref!r} is not a folder", field="model") from None
        return str(Path(ref).expanduser())
    return str(ModelStore(cache_dir).resolve(ref))


def token_counter(embedding_model: str, model_path: str | Path | None = None) -> Callable[[str], int]:
    """The router's counter (the generative model's tokenizer, else the embedding model's) when one is on disk, else
    the approximation."""
    try:
        return wordpiece_counter(
            str(instruction_tokenizer_file(str(model_path) if model_path else None, ".", embedding_model))
        )
    except (ConfigError, OSError, ImportError):
        return approximate_counter


@contextmanager
def _argv_hidden() -> Iterator[Any]:
    """kserve parses sys.argv when first imported (and would read `--model` as its `--model_name`): hide ours."""
    saved = sys.argv
    sys.argv = saved[:1]
    try:
        yield
    finally:
        sys.argv = saved


__all__ = ["DEFAULT_HTTP_PORT", "build_model", "resolve_model", "run", "token_counter"]
