"""The trained score-quality head: MiniLM sentence embeddings (the encoder frozen, shared with the classify replica
when it runs the same base) and a small MLP over (agent sentence, criterion-under-glossary) features, in numpy.

A folder (models/quality-minilm) holds `quality_head.json` (base model, feature layout, threshold), `head.safetensors`
(the MLP) and `metrics.json` (held-out figures for the gate, serving.models.adapters.gate_reason). No customer text is
logged or kept, apart from the query texts' vectors (criterion and glossary wording, per tenant).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from serving.errors import ConfigError
from serving.quality.decision import decide
from serving.quality.features import SURFACE, candidates, criterion_query, feature_rows, feature_width
from serving.vocabulary.conversation import Turn

CARD = "quality_head.json"
WEIGHTS = "head.safetensors"
DEFAULT_FOLDER = "models/quality-minilm"
_PROJECT = Path(__file__).resolve().parents[2]


class Embedder(Protocol):
    def embed(self, texts: list[str]) -> np.ndarray: ...


def resolve_folder(ref: str) -> Path:
    """The head's folder: `ref` as given, else relative to the project root; ConfigError if neither holds a head."""
    for folder in (Path(ref).expanduser(), _PROJECT / ref):
        if (folder / CARD).is_file() and (folder / WEIGHTS).is_file():
            return folder
    raise ConfigError(
        f"score-quality head {ref!r}: no {CARD} and {WEIGHTS} there (train it with `switchboard train "
        f"score-quality --head`, or set SWITCHBOARD_MODELS__QUALITY_HEAD=none)",
        field="models.quality_head",
    )


def gate(folder: str | Path) -> str | None:
    """None when the head's held-out figures (metrics.json) pass the quality gate, else why it is refused."""
    from serving.models.adapters import gate_reason, read_metrics

    try:
        path = resolve_folder(str(folder))
    except ConfigError as exc:
        return exc.message
    return gate_reason(read_metrics(path))


def mlp(weights: dict[str, np.ndarray], rows: np.ndarray) -> np.ndarray:
    """P(sentence satisfies the criterion) per feature row: Linear -> ReLU -> Linear -> sigmoid (eval mode)."""
    hidden = np.maximum(rows @ weights["w1"].T + weights["b1"], 0.0)
    logits = hidden @ weights["w2"].T + weights["b2"]
    return 1.0 / (1.0 + np.exp(-logits[:, 0]))


class QualityHead:
    """Scores a conversation against a rubric and glossary. `embedder`: anything with `embed(texts) -> unit rows`
    of the card's base model (e.g. serving.intent.SentenceEmbedder)."""

    def __init__(self, folder: str | Path, embedder: Embedder, threshold: float | None = None):
        from safetensors.numpy import load_file

        self.folder = resolve_folder(str(folder))
        self.card = json.loads((self.folder / CARD).read_text())
        if tuple(self.card.get("surface", ())) != SURFACE:
            raise ConfigError(
                f"{self.folder / CARD}: surface features {self.card.get('surface')} differ from this "
                f"code's {list(SURFACE)} (retrain the head)",
                field="models.quality_head",
            )
        self.weights: dict[str, np.ndarray] = {
            k: v.astype(np.float32) for k, v in load_file(str(self.folder / WEIGHTS)).items()
        }
        width = feature_width(int(self.card["dimension"]))
        if self.weights["w1"].shape[1] != width:
            raise ConfigError(
                f"{self.folder / WEIGHTS}: input width {self.weights['w1'].shape[1]} != {width}",
                field="models.quality_head",
            )
        self.embedder = embedder
        self.threshold = float(self.card["threshold"] if threshold is None else threshold)
        self._queries: dict[str, np.ndarray] = {}
        self._lock = threading.Lock()

    @property
    def base_model(self) -> str:
        return str(self.card["base_model"])

    def probabilities(
        self, turns: Sequence[Turn], criteria: Sequence[tuple[str, str]], glossary: Sequence[tuple[str, str]]
    ) -> tuple[list[str], np.ndarray]:
        """The quotable sentences and P(sentence j satisfies criterion i), shape (criteria, sentences)."""
        found = candidates(turns)
        quotes = [c.text for c in found]
        if not quotes:
            return quotes, np.zeros((len(criteria), 0), dtype=np.float32)
        vectors = self.embedder.embed(quotes)
        surface = np.asarray([c.surface for c in found], dtype=np.float32)
        queries = self._query_vectors([criterion_query(i, d, glossary) for i, d in criteria])
        rows = np.concatenate([feature_rows(vectors, q, surface) for q in queries])
        return quotes, mlp(self.weights, rows).reshape(len(criteria), len(quotes))

    def score(
        self,
        turns: Sequence[Turn],
        criteria: Sequence[tuple[str, str]],
        glossary: Sequence[tuple[str, str]],
        absent: Sequence[str] = (),
    ) -> list[dict]:
        """{"criterion", "verdict", "evidence", "probability"} per criterion, in rubric order. `criteria`: (id, text)
        with the violation as the text of a criterion in `absent` (met unless an agent sentence does it)."""
        quotes, p = self.probabilities(turns, criteria, glossary)
        return decide([i for i, _ in criteria], quotes, p.tolist(), self.threshold, absent)

    def answer(
        self,
        turns: Sequence[Turn],
        criteria: Sequence[tuple[str, str]],
        glossary: Sequence[tuple[str, str]],
        absent: Sequence[str] = (),
    ) -> dict:
        """{"criteria": score(...), "tokens_in": encoder tokens of the sentences read}."""
        quotes, p = self.probabilities(turns, criteria, glossary)
        counter = getattr(self.embedder, "count_tokens", None)
        tokens = sum(counter(quotes)) if counter is not None and quotes else 0
        return {
            "criteria": decide([i for i, _ in criteria], quotes, p.tolist(), self.threshold, absent),
            "tokens_in": tokens,
        }

    def _query_vectors(self, texts: list[str]) -> list[np.ndarray]:
        with self._lock:
            known = {t: self._queries[t] for t in texts if t in self._queries}
        missing = [t for t in dict.fromkeys(texts) if t not in known]
        if missing:
            known.update(zip(missing, self.embedder.embed(missing)))
            with self._lock:
                if len(self._queries) > 4096:  # query texts are per tenant rubric: a bound, never reached in practice
                    self._queries.clear()
                self._queries.update((t, known[t]) for t in missing)
        return [known[t] for t in texts]


def load_head(folder: str | Path, embedder: Any = None, embedder_factory: Any = None) -> QualityHead:
    """The head on `embedder` when that runs the head's base model (`model_ref`), else on a new one from
    `embedder_factory(base_model)`."""
    card = json.loads((resolve_folder(str(folder)) / CARD).read_text())
    if embedder is None or getattr(embedder, "model_ref", card["base_model"]) != card["base_model"]:
        if embedder_factory is None:
            raise ConfigError(
                f"score-quality head needs an embedder of {card['base_model']!r}", field="models.quality_head"
            )
        embedder = embedder_factory(card["base_model"])
    return QualityHead(folder, embedder)
