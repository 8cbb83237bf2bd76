"""`switchboard calibrate PROFILE`: pick a tenant's out-of-scope threshold (see serving/intent/calibration.py).

Without `--validation`, leave-one-out over the profile's own intent examples (nothing but the tenant's taxonomy is
needed). With `--validation FILE` (JSONL `{"text", "label"}` or CSV `text,label`; a label that is empty, `null`,
`oos` or `none` marks an out-of-scope utterance), the in-scope figures come from that file and, if it has
out-of-scope rows, out-of-scope recall and precision at the chosen threshold are printed too.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

from serving.errors import ConfigError

OUT_OF_SCOPE = {"", "null", "none", "oos", "out_of_scope"}


def add_calibrate_parser(sub) -> None:
    cal = sub.add_parser("calibrate", help="Pick a profile's intent threshold (out of scope) from labelled utterances.")
    cal.add_argument("profile", type=Path, help="TenantProfile YAML with spec.intents")
    cal.add_argument("--validation", type=Path, help="JSONL or CSV of text,label (out-of-scope: empty/null/oos)")
    cal.add_argument("--max-drop", type=float, default=0.02, help="in-scope accuracy the threshold may cost (0.02)")
    cal.add_argument("--embedding-model", default=None, help="embedder package, folder or overlay (default: settings)")
    cal.add_argument("--json", action="store_true", help="print the figures as JSON")
    cal.set_defaults(func=cmd_calibrate)


def read_validation(path: Path) -> list[tuple[str, str | None]]:
    """(text, label or None) rows; ConfigError naming the line when a row has no text."""
    try:
        raw = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"--validation {path}: cannot be read ({exc.strerror})") from None
    rows = _jsonl(path, raw) if path.suffix in (".jsonl", ".json") else _csv(path, raw)
    if not rows:
        raise ConfigError(f"--validation {path}: no rows")
    return [
        (text, None if str(label or "").strip().lower() in OUT_OF_SCOPE else str(label).strip()) for text, label in rows
    ]


def _jsonl(path: Path, raw: str) -> list[tuple[str, str | None]]:
    rows = []
    for n, line in enumerate(raw.splitlines(), 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"--validation {path}:{n}: not JSON ({exc.msg})") from None
        if not isinstance(item, dict) or not isinstance(item.get("text"), str) or not item["text"].strip():
            raise ConfigError(f"--validation {path}:{n}: needs a non-empty string `text`")
        rows.append((item["text"], item.get("label")))
    return rows


def _csv(path: Path, raw: str) -> list[tuple[str, str | None]]:
    reader = csv.DictReader(raw.splitlines())
    if not reader.fieldnames or "text" not in reader.fieldnames or "label" not in reader.fieldnames:
        raise ConfigError(f"--validation {path}: expected a CSV header with `text` and `label`")
    rows = []
    for n, row in enumerate(reader, 2):
        if not (row.get("text") or "").strip():
            raise ConfigError(f"--validation {path}:{n}: empty `text`")
        rows.append((row["text"], row.get("label")))
    return rows


def calibrate(taxonomy, embedder, validation: list[tuple[str, str | None]] | None, max_drop: float):
    """The Calibration for a taxonomy: leave-one-out over its examples, or the validation rows."""
    from serving.intent.calibration import (
        evaluate,
        leave_one_out,
        pick_threshold,
        score_queries,
    )
    from serving.intent.classifier import build_index

    index = build_index(taxonomy, embedder)
    if validation is None:
        if index.head is not None:
            raise ConfigError("this taxonomy uses a trained head: leave-one-out does not apply, pass --validation")
        if len(index.examples) < 2:
            raise ConfigError("intents: leave-one-out needs examples; add some or pass --validation")
        in_scope, oos = leave_one_out(index), None
    else:
        unknown = sorted({label for _, label in validation if label is not None} - set(index.labels))
        if unknown:
            raise ConfigError(f"--validation: labels not in the taxonomy: {unknown[:10]}")
        vectors = embedder.embed([text for text, _ in validation])
        scored = score_queries(index, vectors, [label for _, label in validation])
        mask = [label is not None for _, label in validation]
        in_scope, oos = _subset(scored, mask), _subset(scored, [not m for m in mask])
    return evaluate(pick_threshold(in_scope, max_drop), in_scope, oos)


def _subset(scored, mask):
    import numpy as np

    from serving.intent.calibration import Scored

    keep = np.array(mask, dtype=bool)
    return Scored(scored.best[keep], scored.correct[keep])


def cmd_calibrate(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from serving.intent.embedder import SentenceEmbedder
    from serving.profiles import load_documents
    from serving.settings import load_settings

    if not 0 <= args.max_drop < 1:
        raise ConfigError("--max-drop: must be in [0, 1)")
    try:
        [doc, *_] = load_documents(args.profile.read_text(encoding="utf-8"), str(args.profile))
    except OSError as exc:
        raise ConfigError(f"{args.profile}: cannot be read ({exc.strerror})") from None
    if doc.spec.intents is None:
        raise ConfigError(f"{args.profile}: spec.intents is missing")
    validation = read_validation(args.validation) if args.validation else None
    embedder = SentenceEmbedder(args.embedding_model or load_settings().models.embedding)
    result = calibrate(doc.spec.intents, embedder, validation, args.max_drop)
    if args.json:
        print(json.dumps(asdict(result)))
    else:
        print(_describe(result, doc.spec.intents.threshold, "validation" if validation else "leave-one-out"))
    return 0


def _describe(c, current: float, source: str) -> str:
    lines = [
        f"threshold: {c.threshold:.4f}   (profile has {current}; set spec.intents.threshold)",
        (
            f"{source}: {c.in_scope_n} in-scope utterances, accuracy {c.accuracy_closed:.1%} closed-set, "
            f"{c.accuracy_at_threshold:.1%} at the threshold"
        ),
    ]
    if c.oos_n:
        precision = "n/a" if c.oos_precision is None else f"{c.oos_precision:.1%}"
        lines.append(f"out of scope: {c.oos_n} utterances, recall {c.oos_recall:.1%}, precision {precision}")
    return "\n".join(lines)


if __name__ == "__main__":  # pragma: no cover
    sys.exit("use `switchboard calibrate`")
