"""The model store: model references, offline preparation of known models, and the tiny test model."""

from __future__ import annotations

from serving.models.refs import ModelRef, RefKind, parse_model_ref
from serving.models.store import DEFAULT_MODEL, ModelInfo, ModelStore, default_cache_dir
from serving.models.tiny import TINY_NAME, build_tiny_llama

__all__ = [
    "DEFAULT_MODEL",
    "TINY_NAME",
    "ModelInfo",
    "ModelRef",
    "ModelStore",
    "RefKind",
    "build_tiny_llama",
    "default_cache_dir",
    "parse_model_ref",
]
