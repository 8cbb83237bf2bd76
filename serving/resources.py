"""Finds model folders shipped inside installed Python packages (or given as local paths), without importing them."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from serving.errors import ConfigError


def model_folder(ref: str, marker: str, what: str = "model", field: str | None = None) -> Path:
    """`ref` is a folder, or an installed package whose tree holds a folder containing `marker` (the shallowest one).

    ConfigError, naming `what` and `field`, when it is neither."""
    path = Path(ref).expanduser()
    if path.is_dir():
        return path
    root = _package_root(ref)
    if root is None:
        raise ConfigError(f"{what} {ref!r}: neither a local folder nor an installed model package", field=field)
    hits = sorted(root.rglob(marker), key=lambda p: len(p.parts))
    if not hits:
        raise ConfigError(f"{what} {ref!r}: the installed package holds no {marker}", field=field)
    return hits[0].parent


def _package_root(name: str) -> Path | None:
    module = name.replace("-", "_")
    if not module.isidentifier():
        return None
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def tokenizer_file(embedding_model: str) -> Path:
    return model_folder(embedding_model, "tokenizer.json", "embedding model") / "tokenizer.json"


def instruction_tokenizer_file(generator: str | None, cache_dir: str | Path, embedding_model: str) -> Path:
    """The tokenizer that counts a tenant's compiled instructions: the generative model's own where it is on this
    machine (a folder, or a name prepared in the model store), so the count is what that model reads; else (no
    generative engine, or the model lives only on the GPU workers) the embedding model's."""
    if generator:
        for folder in (Path(generator).expanduser(), Path(cache_dir).expanduser() / generator):
            if (folder / "tokenizer.json").is_file():
                return folder / "tokenizer.json"
    return tokenizer_file(embedding_model)
