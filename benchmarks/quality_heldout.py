"""score-quality on the held-out set: base + LoRA adapter against the untuned base model and always-`met`, in one run.

Usage: python benchmarks/quality_heldout.py [--adapter adapters/score-quality] [--base-only] [--limit N]
       [--threads 1] [--base-figures results/quality_base.json] [--out results/quality_heldout.json]
       [--from-metrics adapters/score-quality/metrics.json]

Each record goes through the transformers engine as the router sends it: the tenant's compiled instruction (glossary,
rubric), the composer's prompt and the rubric's output schema with the conversation's agent sentences as the only
quotes, decoded greedily under that schema, then checked by the task's own parser. Prints verdict accuracy and
macro-F1 (met / not_met), per criterion, JSON validity, evidence validity (of the `met` verdicts written, the share
whose evidence is a verbatim substring of an agent turn), the cross-tenant pairs (verdicts whose gold differs between
the two tenants' glossaries, right under both) and seconds per record. `--base-figures` reuses a saved base run
(the base is the same model every time; the file is what `--base-only --out` writes).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from _bench import MODEL_DIR, machine, print_provenance, sha256, write_result

HELDOUT = REPO / "datasets" / "quality" / "heldout.jsonl"
RUBRICS = REPO / "datasets" / "quality" / "rubrics.json"


def line(name: str, f: dict) -> str:
    ev = "-" if f.get("evidence_valid") is None else f"{f['evidence_valid']:.1f} %"
    ct = f["cross_tenant"]
    return (f"{name:38s} accuracy {f['accuracy']:5.1f} %  macro-F1 {f['macro_f1']:.3f}  JSON valid {f['json_valid']:5.1f} %  "
            f"evidence valid {ev}  cross-tenant {ct['both_right']}/{ct['differing_verdicts']}  "
            f"({f['verdicts']} verdicts, {f.get('seconds_per_record', '-')} s/record)")


def per_criterion(rows: dict) -> None:
    names = list(rows)
    criteria = list(next(iter(rows.values()))["per_criterion"])
    print(f"\n{'criterion':14s}" + "".join(f"{n[:26]:>28s}" for n in names) + "   (accuracy % / F1 met, not_met)")
    for c in criteria:
        cells = []
        for n in names:
            f = rows[n]["per_criterion"][c]
            cells.append(f"{f['accuracy']:5.1f} / {f['f1']['met']:.2f}, {f['f1']['not_met']:.2f}")
        print(f"{c:14s}" + "".join(f"{cell:>28s}" for cell in cells))


def main(argv: list[str] | None = None) -> int:
    from serving.training.quality_eval import always_met, eval_quality, figures, load_items

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--adapter", type=Path, default=REPO / "adapters" / "score-quality")
    parser.add_argument("--base-only", action="store_true")
    parser.add_argument("--base-figures", type=Path)
    parser.add_argument("--from-metrics", type=Path, help="Print the figures stored in an adapter's metrics.json "
                        "(what `switchboard eval score-quality` measured) instead of measuring again.")
    parser.add_argument("--limit", type=int)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    print_provenance("score-quality on datasets/quality/heldout.jsonl",
                     {str(HELDOUT): sha256(HELDOUT), str(RUBRICS): sha256(RUBRICS)}, machine())
    print("Measured on a shared 2-core CPU while other jobs run: seconds per record are indicative only.")
    items = load_items(HELDOUT, args.limit)
    rows = {"always met (trivial)": figures(items, always_met(items))}
    if args.from_metrics:
        stored = json.loads(args.from_metrics.read_text())
        print(f"figures stored in {args.from_metrics} (measured {stored['date']}), not measured again")
        rows["base (untuned SmolLM2-135M-Instruct)"] = stored["base_detail"]
        rows["base + LoRA adapter"] = stored["adapter_detail"]
    elif args.base_figures and args.base_figures.is_file():
        rows["base (untuned SmolLM2-135M-Instruct)"] = json.loads(args.base_figures.read_text())
    else:
        rows["base (untuned SmolLM2-135M-Instruct)"] = eval_quality(HELDOUT, MODEL_DIR, None, args.threads, args.limit)
    if not args.base_only and not args.from_metrics:
        rows["base + LoRA adapter"] = eval_quality(HELDOUT, MODEL_DIR, args.adapter, args.threads, args.limit)
    for name, f in rows.items():
        print(line(name, f))
    per_criterion(rows)
    out = args.out or REPO / "results" / ("quality_base.json" if args.base_only else "quality_heldout.json")
    write_result(out, rows["base (untuned SmolLM2-135M-Instruct)"] if args.base_only else {"task": "score-quality", "rows": rows})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
