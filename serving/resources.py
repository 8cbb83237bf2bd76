"""Finds model folders shipped inside installed Python packages (or given as local paths), without importing them."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from serving.errors import ConfigError


def model_folder(ref: str, marker: str) -> Path:
    """`ref` is a folder, or an installed package whose tree holds a folder containing `marker` (e.g. config.json)."""
    path = Path(ref).expanduser()
    if path.is_dir():
        return path
    spec = importlib.util.find_spec(ref) if ref.isidentifier() else None
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(f"model {ref!r} is neither a folder nor an installed model package")
    root = Path(next(iter(spec.submodule_search_locations)))
    hits = sorted(root.rglob(marker), key=lambda p: len(p.parts))
    if not hits:
        raise ConfigError(f"model package {ref!r} holds no {marker}")
    return hits[0].parent


def tokenizer_file(embedding_model: str) -> Path:
    return model_folder(embedding_model, "tokenizer.json") / "tokenizer.json"
