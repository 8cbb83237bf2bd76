"""Intent classification policy: a per-taxonomy embedding index and a pure numpy scoring rule over it.

Scoring rule (chosen on BANKING77 with 5 examples per label; numbers in benchmarks/intent_banking77.py): a label's
score is the mean of
  - the best cosine similarity to one of its examples (nearest neighbour: catches distinct phrasings), and
  - the cosine similarity to its prototype, the normalised sum of its description and example vectors (smooths noise),
clipped to [0, 1]. A label without examples has prototype = description, so the rule falls back to description
similarity (zero-shot). With a trained head (`taxonomy.head`) the score is the head's softmax probability instead.
Scores are therefore in [0, 1] and are compared directly with `taxonomy.threshold`.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from serving.errors import ConfigError
from serving.intent.embedder import Embedder
from serving.intent.head import IntentHead
from serving.profiles.compiler import approximate_counter
from serving.profiles.model import IntentTaxonomy


@dataclass(frozen=True)
class IntentPrediction:
    label: str | None  # None: "none of these" (best score below the threshold)
    score: float
    top_k: tuple[tuple[str, float], ...]


@dataclass(frozen=True, eq=False)
class IntentIndex:
    """Everything a taxonomy needs at query time, embedded once."""

    labels: tuple[str, ...]
    descriptions: np.ndarray  # (L, d) unit rows
    examples: np.ndarray  # (N, d) unit rows
    example_labels: np.ndarray  # (N,) int label index per example
    prototypes: np.ndarray  # (L, d) unit rows: mean of examples and description
    fingerprint: str = ""
    head: IntentHead | None = None
    texts: tuple[str, ...] = ()  # descriptions then examples: the rows of `descriptions` and `examples`, in order

    def vectors_by_text(self) -> dict[str, np.ndarray]:
        return dict(zip(self.texts, np.concatenate([self.descriptions, self.examples])))


def taxonomy_fingerprint(taxonomy: IntentTaxonomy) -> str:
    """A content hash of what the index is built from: the labels (names, descriptions, examples) and the head
    artifact's identity, if the taxonomy names one. `threshold` and `top_k` are read per query, so changing them (as
    `switchboard calibrate` does) keeps the index."""
    digest = hashlib.sha256(
        taxonomy.model_dump_json(by_alias=True, exclude_none=True, include={"labels", "head"}).encode()
    )
    if taxonomy.head:
        path = Path(taxonomy.head)
        stat = path.stat() if path.is_file() else None
        digest.update((f"|{stat.st_size}:{stat.st_mtime_ns}" if stat else "|missing").encode())
    return digest.hexdigest()[:16]


def build_index(
    taxonomy: IntentTaxonomy, embedder: Embedder, known: Mapping[str, np.ndarray] | None = None
) -> IntentIndex:
    """Embed the label descriptions and examples in one batch (texts found in `known`, e.g. an earlier version of the
    same taxonomy, are not embedded again); load the head if the taxonomy names one."""
    labels = tuple(intent.name for intent in taxonomy.labels)
    descriptions = [intent.description for intent in taxonomy.labels]
    examples = [(i, text) for i, intent in enumerate(taxonomy.labels) for text in intent.examples]
    texts = tuple(descriptions + [text for _, text in examples])
    vectors = _embed_unknown(texts, embedder, known or {})
    desc, ex = vectors[: len(labels)], vectors[len(labels) :]
    owner = np.array([i for i, _ in examples], dtype=np.int64)
    return IntentIndex(
        labels,
        desc,
        ex,
        owner,
        _prototypes(desc, ex, owner),
        taxonomy_fingerprint(taxonomy),
        _load_head(taxonomy.head, labels),
        texts,
    )


def _embed_unknown(texts: tuple[str, ...], embedder: Embedder, known: Mapping[str, np.ndarray]) -> np.ndarray:
    """Unit rows for `texts`, in order; one embedder call for the texts `known` does not hold (none if it holds all)."""
    missing = list(dict.fromkeys(t for t in texts if t not in known))
    fresh = dict(zip(missing, _unit(np.asarray(embedder.embed(missing), dtype=np.float32)))) if missing else {}
    if not texts:
        return np.zeros((0, 0), dtype=np.float32)
    return np.stack([fresh[t] if t in fresh else known[t] for t in texts]).astype(np.float32, copy=False)


def _prototypes(desc: np.ndarray, ex: np.ndarray, owner: np.ndarray) -> np.ndarray:
    sums = desc.copy()
    np.add.at(sums, owner, ex)
    return _unit(sums)


def _load_head(path: str | None, labels: tuple[str, ...]) -> IntentHead | None:
    if not path:
        return None
    if not Path(path).is_file():
        raise ConfigError(f"intents.head: {path!r} is not a file", field="intents.head")
    return IntentHead.load(path).reordered(labels)


def _unit(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(norms, 1e-12)


def label_scores(index: IntentIndex, query_vectors: np.ndarray) -> np.ndarray:
    """(queries, labels) scores in [0, 1]; see the module docstring for the rule."""
    q = np.asarray(query_vectors, dtype=np.float32)
    if index.head is not None:
        return index.head.probabilities(q)
    proto = q @ index.prototypes.T
    if len(index.examples) == 0:
        return np.clip(proto, 0.0, 1.0)
    best = _max_per_label(q @ index.examples.T, index.example_labels, len(index.labels), fallback=proto)
    return np.clip((best + proto) / 2.0, 0.0, 1.0)


def _max_per_label(sims: np.ndarray, owner: np.ndarray, n_labels: int, fallback: np.ndarray) -> np.ndarray:
    """Per label, the best similarity among its examples; labels without examples use `fallback`."""
    best = np.full((sims.shape[0], n_labels), -np.inf, dtype=np.float32)
    np.maximum.at(best.T, owner, sims.T)
    return np.where(np.isneginf(best), fallback, best)


def classify(index: IntentIndex, query_vectors: np.ndarray, threshold: float, top_k: int) -> list[IntentPrediction]:
    """Rank labels per query; ties keep taxonomy order; label None when the best score is below `threshold`."""
    scores = label_scores(index, query_vectors)
    k = max(1, min(int(top_k), len(index.labels)))
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return [_prediction(index.labels, row, ranked, threshold) for row, ranked in zip(scores, order)]


def _prediction(labels: tuple[str, ...], row: np.ndarray, ranked: np.ndarray, threshold: float) -> IntentPrediction:
    top = tuple((labels[i], float(row[i])) for i in ranked)
    best_label, best_score = top[0]
    return IntentPrediction(best_label if best_score >= threshold else None, best_score, top)


class IntentClassifier:
    """Classifies texts against tenant taxonomies; indexes are cached per taxonomy fingerprint (LRU).

    Indexes are built by `warm` when a profile is loaded or changes (the serving replicas call it), so that a
    request finds its index ready; one a request still has to build (a taxonomy the replica has not seen yet) is
    built once, however many requests and warm-ups ask for it at the same time.
    """

    def __init__(self, embedder: Embedder, cache_size: int = 64):
        if cache_size < 1:
            raise ConfigError("cache_size must be >= 1")
        self.embedder = embedder
        self.cache_size = cache_size
        self._indexes: OrderedDict[str, IntentIndex] = OrderedDict()
        self._building: dict[str, threading.Event] = {}
        self._lock = threading.Lock()

    def index_for(self, taxonomy: IntentTaxonomy) -> IntentIndex:
        key = taxonomy_fingerprint(taxonomy)
        while True:
            with self._lock:
                index = self._indexes.get(key)
                if index is not None:
                    self._indexes.move_to_end(key)
                    return index
                pending = self._building.get(key)
                if pending is None:
                    self._building[key] = threading.Event()
                    break
            pending.wait()  # another thread builds it: use its index (or, if that build failed, build it here)
        try:
            index = build_index(taxonomy, self.embedder, self._known_vectors())  # outside the lock: embedding is slow
            with self._lock:
                self._indexes[key] = index
                while len(self._indexes) > self.cache_size:
                    self._indexes.popitem(last=False)
            return index
        finally:
            with self._lock:
                self._building.pop(key).set()

    def has_index(self, taxonomy: IntentTaxonomy) -> bool:
        with self._lock:
            return taxonomy_fingerprint(taxonomy) in self._indexes

    def warm(self, taxonomies: Iterable[IntentTaxonomy]) -> int:
        """Build the indexes of `taxonomies` that are not cached (blocking); returns how many were built. At most
        `cache_size` of them: more would evict the ones just built."""
        unique = list({taxonomy_fingerprint(t): t for t in taxonomies}.values())[: self.cache_size]
        missing = [t for t in unique if not self.has_index(t)]
        for taxonomy in missing:
            self.index_for(taxonomy)
        return len(missing)

    def _known_vectors(self) -> dict[str, np.ndarray]:
        """Vectors of every text the cached indexes hold: a changed taxonomy embeds only its new texts."""
        with self._lock:
            indexes = list(self._indexes.values())
        known: dict[str, np.ndarray] = {}
        for index in indexes:
            if len(index.texts) == len(index.descriptions) + len(index.examples):
                known.update(index.vectors_by_text())
        return known

    def count_tokens(self, texts: list[str]) -> list[int]:
        """Tokens the encoder reads per text (its own tokenizer); about 4 characters a token for an embedder without one."""
        counter = getattr(self.embedder, "count_tokens", None)
        return list(counter(list(texts))) if counter else [approximate_counter(t) for t in texts]

    def classify_batch(
        self, texts: list[str], taxonomy: IntentTaxonomy, top_k: int | None = None, threshold: float | None = None
    ) -> list[IntentPrediction]:
        if not texts:
            return []
        index = self.index_for(taxonomy)
        vectors = self.embedder.embed(list(texts))
        return classify(
            index,
            vectors,
            taxonomy.threshold if threshold is None else threshold,
            taxonomy.top_k if top_k is None else top_k,
        )
