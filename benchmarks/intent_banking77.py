"""Intent classification on BANKING77: the northbank profile, few-/zero-shot variants, a trained head and baselines.

Usage: python benchmarks/intent_banking77.py [--data DIR] [--limit N] [--train-per-label N] [--latency-n 200]
       [--api URL [--api-latency-n 200] [--api-accuracy-n N]] [--out results/intent.json]

Everything offline goes through `IntentClassifier`; a memoising embedder wrapper embeds each train/test text once per
run (the 1-NN baseline and the head reuse the same vectors). Accuracy is closed-set (threshold 0: always the best
label); the northbank row also reports how many test utterances fall below the profile's own threshold.
`--train-per-label N` keeps the first N training rows of each label (quick mode: few-shot selection, the head and
both baselines then learn from that subset only; the rows say so).

With `--api URL` (a running platform serving the northbank sample tenant) the same test utterances also go through
the HTTP API (`POST /v1/tasks/classify-intent`, which redacts the input first): per-utterance latency one request at
a time (`--api-latency-n`), and accuracy / macro-F1 of the profile as served (`--api-accuracy-n` utterances, 8
requests in flight; the served answer honours the profile threshold, so a `none` answer counts as wrong).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "manifests" / "samples"))

sys.path.insert(0, str(REPO / "benchmarks"))

from _bench import KEYS, cpu_model, local_url, quantiles_ms, versions  # noqa: E402
from build_northbank import RENAMES, examples_by_label  # noqa: E402
from serving.intent import IntentClassifier, SentenceEmbedder, train_head  # noqa: E402
from serving.profiles import load_documents  # noqa: E402

PROFILE = REPO / "manifests" / "samples" / "northbank.yaml"


class MemoEmbedder:
    """Wraps an embedder; each distinct text is embedded once per run."""

    def __init__(self, inner):
        self.inner = inner
        self.vectors: dict[str, np.ndarray] = {}

    def embed(self, texts: list[str]) -> np.ndarray:
        missing = list(dict.fromkeys(t for t in texts if t not in self.vectors))
        if missing:
            self.vectors.update(zip(missing, self.inner.embed(missing)))
        return np.stack([self.vectors[t] for t in texts]) if texts else self.inner.embed([])


def read_rows(path: Path) -> tuple[list[str], list[str]]:
    with path.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    return [r["text"].strip() for r in rows], [RENAMES.get(r["category"], r["category"]) for r in rows]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def metrics(predicted: list, gold: list[str]) -> dict:
    from sklearn.metrics import f1_score

    predicted = [p if p is not None else "<none>" for p in predicted]
    return {"accuracy": float(np.mean([p == g for p, g in zip(predicted, gold)])),
            "macro_f1": float(f1_score(gold, predicted, average="macro", labels=sorted(set(gold))))}


def evaluate(clf: IntentClassifier, taxonomy, texts: list[str], gold: list[str]) -> dict:
    predictions = clf.classify_batch(texts, taxonomy, top_k=1, threshold=0.0)
    return metrics([p.label for p in predictions], gold)


def with_examples(taxonomy, examples: dict[str, list[str]]):
    labels = [intent.model_copy(update={"examples": examples[intent.name]}) for intent in taxonomy.labels]
    return taxonomy.model_copy(update={"labels": labels})


def timing(embedder, taxonomy, texts: list[str], latency_n: int, batch: int = 64) -> dict:
    """Uncached: per-utterance latency at batch 1 and batched throughput, embedding included."""
    clf = IntentClassifier(embedder)
    clf.index_for(taxonomy)
    clf.classify_batch(texts[:8], taxonomy)  # warm-up
    latencies = []
    for text in texts[:latency_n]:
        start = time.perf_counter()
        clf.classify_batch([text], taxonomy)
        latencies.append((time.perf_counter() - start) * 1000)
    start = time.perf_counter()
    for i in range(0, len(texts), batch):
        clf.classify_batch(texts[i:i + batch], taxonomy)
    elapsed = time.perf_counter() - start
    q = statistics.quantiles(latencies, n=100)
    return {"latency_ms_p50": q[49], "latency_ms_p95": q[94], "latency_n": len(latencies),
            "throughput_per_s": len(texts) / elapsed, "throughput_batch": batch, "throughput_n": len(texts)}


def few_shot_rows(clf, taxonomy, train, test, embed) -> dict:
    rows = {"zero-shot (descriptions only)": evaluate(clf, with_examples(taxonomy, {l.name: [] for l in taxonomy.labels}),
                                                      *test)}
    pairs = list(zip(*train))
    names = [l.name for l in taxonomy.labels]
    for select in ("medoids", "first"):
        for k in (1, 3, 5):
            examples = examples_by_label(pairs, names, k, select, embed)
            rows[f"few-shot k={k} ({select})"] = evaluate(clf, with_examples(taxonomy, examples), *test)
    return rows


def head_row(clf, taxonomy, train, test, embed) -> dict:
    start = time.perf_counter()
    head = train_head(train[0], train[1], None, vectors=embed(train[0]))
    fit_s = time.perf_counter() - start
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "northbank-head.npz"
        head.save(path)
        row = evaluate(clf, taxonomy.model_copy(update={"head": str(path)}), *test)
    return {**row, "fit_s": fit_s}


def tfidf_svc(train, test) -> dict:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.pipeline import make_pipeline, make_union
    from sklearn.svm import LinearSVC

    features = make_union(TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True),
                          TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True))
    model = make_pipeline(features, LinearSVC(C=1.0))
    model.fit(*train)
    return metrics(list(model.predict(test[0])), test[1])


def nearest_neighbour(train, test, embed) -> dict:
    x_train, x_test = embed(train[0]), embed(test[0])
    nearest = np.argmax(x_test @ x_train.T, axis=1)
    return metrics([train[1][i] for i in nearest], test[1])


def machine() -> dict:
    import sentence_transformers
    import sklearn
    import torch

    return {"cpu": cpu_model(), "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "python": platform.python_version(), "numpy": np.__version__, "torch": torch.__version__,
            "sentence_transformers": sentence_transformers.__version__, "sklearn": sklearn.__version__,
            "loadavg": list(os.getloadavg()), "versions": versions()}


def per_label_subset(train: tuple[list[str], list[str]], n: int) -> tuple[list[str], list[str]]:
    """The first n rows of each label, in file order."""
    seen: dict[str, int] = {}
    keep = []
    for text, label in zip(*train):
        if seen.get(label, 0) < n:
            seen[label] = seen.get(label, 0) + 1
            keep.append((text, label))
    return [t for t, _ in keep], [l for _, l in keep]


def through_api(url: str, test, latency_n: int, accuracy_n: int, concurrency: int = 8) -> dict:
    """Latency one request at a time, then accuracy of the profile as served, over the HTTP API."""
    import asyncio

    import httpx

    headers = {"Authorization": f"Bearer {KEYS['northbank']}"}

    async def run() -> dict:
        async with httpx.AsyncClient(base_url=url, timeout=60, headers=headers) as client:
            (await client.get("/readyz")).raise_for_status()
            for text in test[0][:5]:  # warm-up
                (await client.post("/v1/tasks/classify-intent", json={"text": text})).raise_for_status()
            latencies = []
            for text in test[0][:latency_n]:
                started = time.perf_counter()
                (await client.post("/v1/tasks/classify-intent", json={"text": text})).raise_for_status()
                latencies.append(time.perf_counter() - started)
            labels: list = [None] * min(accuracy_n, len(test[0]))
            statuses: dict[int, int] = {}
            queue = iter(range(len(labels)))

            async def worker() -> None:
                for i in queue:
                    r = await client.post("/v1/tasks/classify-intent", json={"text": test[0][i]})
                    statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
                    labels[i] = r.json().get("label") if r.status_code == 200 else None

            started = time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(concurrency)))
            elapsed = time.perf_counter() - started
        row = {"latency": {**quantiles_ms(latencies), "concurrency": 1},
               "accuracy_n": len(labels), "statuses": statuses,
               "throughput_per_s": round(len(labels) / elapsed, 1) if labels else None, "concurrency": concurrency}
        if labels:
            row.update(metrics(labels, test[1][: len(labels)]))
            row["none_answers"] = sum(label is None for label in labels)
        return row

    return asyncio.run(run())


def print_table(rows: dict, timings: dict) -> None:
    print(f"\n{'configuration':44} {'accuracy':>9} {'macro-F1':>9}")
    for name, row in rows.items():
        print(f"{name:44} {row['accuracy'] * 100:8.2f}% {row['macro_f1'] * 100:8.2f}%")
    print(f"\nnorthbank profile, MiniLM on {timings['device']}: p50 {timings['latency_ms_p50']:.1f} ms, "
          f"p95 {timings['latency_ms_p95']:.1f} ms per utterance at batch 1 (n={timings['latency_n']}); "
          f"{timings['throughput_per_s']:.0f} utterances/s at batch {timings['throughput_batch']}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "banking77")
    parser.add_argument("--limit", type=int, default=None, help="use only the first N test rows")
    parser.add_argument("--latency-n", type=int, default=200, help="utterances timed one at a time")
    parser.add_argument("--train-per-label", type=int, default=None, help="first N training rows per label (quick)")
    parser.add_argument("--api", default=None, help="base URL of a running platform (northbank sample tenant)")
    parser.add_argument("--api-latency-n", type=int, default=200, help="utterances timed one at a time over HTTP")
    parser.add_argument("--api-accuracy-n", type=int, default=None, help="utterances scored over HTTP (default: all)")
    parser.add_argument("--out", type=Path, default=REPO / "results" / "intent.json")
    args = parser.parse_args(argv)
    if args.api and not local_url(args.api):
        parser.error("--api only targets the local machine")
    files = [args.data / "train.csv", args.data / "test.csv", args.data / "categories.json", PROFILE]
    hashes = {str(p): sha256(p) for p in files}
    for path, digest in hashes.items():
        print(f"sha256 {digest}  {path}")
    info = machine()
    print(json.dumps(info))
    train, test = read_rows(files[0]), read_rows(files[1])
    if args.limit:
        test = (test[0][: args.limit], test[1][: args.limit])
    if args.train_per_label:
        train = per_label_subset(train, args.train_per_label)
    api = None
    if args.api:
        api = through_api(args.api, test, args.api_latency_n, args.api_accuracy_n or len(test[0]))
        print(f"through the API ({args.api}): p50 {api['latency']['p50_ms']} ms, p95 {api['latency']['p95_ms']} ms "
              f"per utterance (n={api['latency']['n']}, one at a time); as served on {api['accuracy_n']} utterances: "
              f"accuracy {api.get('accuracy', float('nan')) * 100:.2f} %, macro-F1 {api.get('macro_f1', float('nan')) * 100:.2f} %, "
              f"{api.get('none_answers')} `none`; {api['throughput_per_s']} utterances/s at {api['concurrency']} in flight")
    [doc] = load_documents(PROFILE.read_text(encoding="utf-8"), str(PROFILE))
    taxonomy = doc.spec.intents
    base = SentenceEmbedder()
    timings = {**timing(base, taxonomy, test[0], args.latency_n), "device": "cpu"}
    embed = MemoEmbedder(base)
    start = time.perf_counter()
    embed.embed(test[0] + train[0])
    embed_s = time.perf_counter() - start
    clf = IntentClassifier(embed)
    rows = {"northbank profile (5 medoids + description)": evaluate(clf, taxonomy, *test)}
    below = sum(p.label is None for p in clf.classify_batch(test[0], taxonomy))
    rows.update(few_shot_rows(clf, taxonomy, train, test, embed.embed))
    scope = f"{args.train_per_label}/label train" if args.train_per_label else "full train"
    rows[f"trained head (LogReg, {scope})"] = head_row(clf, taxonomy, train, test, embed.embed)
    rows[f"baseline: 1-NN MiniLM ({scope})"] = nearest_neighbour(train, test, embed.embed)
    rows[f"baseline: TF-IDF word+char + LinearSVC ({scope})"] = tfidf_svc(train, test)
    print_table(rows, timings)
    print(f"northbank at its threshold {taxonomy.threshold}: {below}/{len(test[0])} test utterances answered `none`; "
          f"embedding {len(embed.vectors)} distinct texts took {embed_s:.1f} s")
    result = {"benchmark": "intent", "files_sha256": hashes, "machine": info, "n_train": len(train[0]),
              "n_test": len(test[0]), "train_per_label": args.train_per_label, "timing": timings, "embed_all_s": embed_s,
              "northbank_none_at_threshold": below, "results": rows, "api": api, "loadavg_end": list(os.getloadavg())}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
