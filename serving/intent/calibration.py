"""Out-of-scope calibration: pick a taxonomy's `threshold` from labelled utterances (pure numpy over an index).

What the threshold means: a prediction's score is the best label's score in [0, 1] (classifier.py: the mean of the
best example cosine and the prototype cosine, or the head's probability); below the threshold the answer is `none`
(out of scope). Raising it turns more out-of-scope utterances into `none` and also some in-scope ones.

The rule (`pick_threshold`): the highest threshold at which in-scope accuracy falls by at most `max_drop` (default
0.02, two points) from its closed-set value (threshold 0). Out-of-scope recall only grows with the threshold, so
this is also the threshold of best out-of-scope recall within that budget, with or without out-of-scope examples.
The in-scope evidence is either a validation set (text, label) or, with only the tenant's own examples, leave-one-out:
each example is scored against the taxonomy without itself (`leave_one_out`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from serving.intent.classifier import IntentIndex, label_scores


@dataclass(frozen=True)
class Scored:
    """Per utterance: the best label's score and whether that label is right (always False for out-of-scope)."""

    best: np.ndarray  # (n,) float
    correct: np.ndarray  # (n,) bool


@dataclass(frozen=True)
class Calibration:
    threshold: float
    in_scope_n: int
    accuracy_closed: float  # in-scope accuracy at threshold 0
    accuracy_at_threshold: float  # in-scope accuracy at `threshold` (a `none` counts as wrong)
    oos_n: int = 0
    oos_recall: float | None = None  # out-of-scope utterances answered `none`
    oos_precision: float | None = None  # `none` answers that were out of scope


def score_queries(index: IntentIndex, vectors: np.ndarray, gold: list[str | None]) -> Scored:
    """Best score and correctness of each query vector; `gold` None marks an out-of-scope utterance."""
    scores = label_scores(index, vectors)
    best = scores.max(axis=1) if len(scores) else np.zeros(0, np.float32)
    top = [index.labels[i] for i in np.argmax(scores, axis=1)] if len(scores) else []
    return Scored(best.astype(np.float64), np.array([g is not None and t == g for t, g in zip(top, gold)], dtype=bool))


def leave_one_out(index: IntentIndex) -> Scored:
    """Each example scored against the taxonomy without itself (its label's prototype and best example recomputed).

    The nearest-example + prototype rule only (a head was trained on other data: use a validation set instead)."""
    x, owner, n_labels = index.examples, index.example_labels, len(index.labels)
    if len(x) == 0:
        return Scored(np.zeros(0), np.zeros(0, dtype=bool))
    sims = x @ x.T
    np.fill_diagonal(sims, -np.inf)
    best: np.ndarray = np.full((len(x), n_labels), -np.inf, dtype=np.float64)
    np.maximum.at(best.T, owner, sims.T)
    sums: np.ndarray = index.descriptions.astype(np.float64).copy()
    np.add.at(sums, owner, x)
    proto = (x @ sums.T) / np.maximum(np.linalg.norm(sums, axis=1), 1e-12)
    rows = np.arange(len(x))
    own = sums[owner] - x  # the own label's prototype without this example
    proto[rows, owner] = np.einsum("ij,ij->i", x, own) / np.maximum(np.linalg.norm(own, axis=1), 1e-12)
    best = np.where(np.isneginf(best), proto, best)
    scores = np.clip((best + proto) / 2.0, 0.0, 1.0)
    return Scored(scores.max(axis=1), np.argmax(scores, axis=1) == owner)


def pick_threshold(in_scope: Scored, max_drop: float = 0.02) -> float:
    """The highest threshold keeping in-scope accuracy within `max_drop` of its closed-set value (0 if none)."""
    n = len(in_scope.best)
    if n == 0:
        return 0.0
    budget = int(np.floor(max_drop * n + 1e-9))  # correct answers we may lose to `none`
    correct = np.sort(in_scope.best[in_scope.correct])
    if budget >= len(correct):
        return float(correct[-1]) if len(correct) else 0.0
    return float(correct[budget])  # scores >= it keep all but `budget` correct answers (ties keep more)


def evaluate(threshold: float, in_scope: Scored, oos: Scored | None = None) -> Calibration:
    n = len(in_scope.best)
    closed = float(in_scope.correct.mean()) if n else 0.0
    kept = float((in_scope.correct & (in_scope.best >= threshold)).mean()) if n else 0.0
    if oos is None or len(oos.best) == 0:
        return Calibration(threshold, n, closed, kept)
    oos_none = int((oos.best < threshold).sum())
    in_none = int((in_scope.best < threshold).sum())
    precision = oos_none / (oos_none + in_none) if oos_none + in_none else None
    return Calibration(threshold, n, closed, kept, len(oos.best), oos_none / len(oos.best), precision)
