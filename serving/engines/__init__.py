"""Generation engines behind one contract (`Engine`): fake, transformers (CPU) and vLLM (CPU or GPU)."""

from __future__ import annotations

import os
from typing import Any

from serving.engines.base import (
    Engine,
    EngineHealth,
    EngineStats,
    FinishReason,
    GenerationRequest,
    GenerationResult,
    SamplingParams,
)
from serving.errors import ConfigError
from serving.vocabulary.kinds import GENERATIVE_ENGINES, EngineKind

ENGINE_KINDS = tuple(kind.value for kind in GENERATIVE_ENGINES)


def create_engine(kind: str, model_path: str | os.PathLike, **options: Any) -> Engine:
    """Build the engine `kind` for the model folder `model_path`; adapter imports happen only here."""
    if kind == EngineKind.FAKE:
        from serving.engines.fake import FakeEngine

        return FakeEngine(str(model_path), **options)
    if kind == EngineKind.TRANSFORMERS:
        from serving.engines.transformers_engine import TransformersEngine

        return TransformersEngine(model_path, **options)
    if kind in (EngineKind.VLLM, "vllm-cpu"):
        from serving.engines.vllm_engine import VLLMEngine

        return VLLMEngine(model_path, **options)
    raise ConfigError(f"unknown engine {kind!r}; expected one of {', '.join(ENGINE_KINDS)}", field="engine")


__all__ = [
    "ENGINE_KINDS",
    "Engine",
    "EngineHealth",
    "EngineStats",
    "FinishReason",
    "GenerationRequest",
    "GenerationResult",
    "SamplingParams",
    "create_engine",
]
