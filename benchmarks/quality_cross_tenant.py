"""score-quality across tenants: the served head on conversations scored under two tenants' glossaries.

Usage: python benchmarks/quality_cross_tenant.py [--head models/quality-minilm] [--splits heldout heldout_pairs ...]
       [--out results/quality_cross_tenant.json]

Issue 13 asks that "the same conversation scored under two tenants' glossaries gets the verdicts each tenant's
definition calls for". The records: the 6 pairs of datasets/quality/heldout.jsonl (the set the model card reports) and
the 8 pairs of datasets/quality/heldout_pairs.jsonl, the 10 of heldout_blind.jsonl and the 10 of heldout_second.jsonl
(other writers' conversations; each split written and committed before any model was scored on it, never trained
on; see the datasheet). heldout_second is for a head already chosen on the other three: pass `--splits heldout
heldout_pairs heldout_blind` while comparing candidates. Each record is scored as
`switchboard eval score-quality --head` scores it: the served QualityHead on the packaged MiniLM, the tenant's rubric
and glossary from datasets/quality/rubrics.json.
Prints, per split and for both together, the verdicts whose gold differs between the two tenants of a pair and how
many the head got right under both, against always-`met` (which gets none of them: one tenant's answer is always
`not_met`), and the split's verdict accuracy.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from _bench import machine, print_provenance, sha256, write_result  # noqa: E402

SPLITS = {
    "heldout": REPO / "datasets" / "quality" / "heldout.jsonl",
    "heldout_pairs": REPO / "datasets" / "quality" / "heldout_pairs.jsonl",
    "heldout_blind": REPO / "datasets" / "quality" / "heldout_blind.jsonl",
    "heldout_second": REPO / "datasets" / "quality" / "heldout_second.jsonl",
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--head", type=Path, default=REPO / "models" / "quality-minilm")
    parser.add_argument("--splits", nargs="+", choices=list(SPLITS), default=list(SPLITS))
    parser.add_argument("--out", type=Path, default=REPO / "results" / "quality_cross_tenant.json")
    args = parser.parse_args(argv)
    splits = {name: SPLITS[name] for name in args.splits}
    from serving.intent.embedder import SentenceEmbedder
    from serving.training.quality_eval import always_met, errors, figures
    from serving.training.quality_head import BASE
    from serving.training.quality_head_card import predict

    info = machine()
    print_provenance("score-quality head across tenants", {str(p): sha256(p) for p in splits.values()}, info)
    embedder = SentenceEmbedder(BASE)
    results, differing, right, verdicts, correct, trivial_correct = {}, 0, 0, 0, 0.0, 0.0
    for name, path in splits.items():
        records, predictions, _ = predict(args.head, path, embedder)
        head, trivial = figures(records, predictions), figures(records, always_met(records))
        ct = head["cross_tenant"]
        pair_ids = {r.conversation for r in records if sum(x.conversation == r.conversation for x in records) == 2}
        wrong = [e for e in errors(records, predictions) if e["record"] in {r.record_id for r in records
                                                                           if r.conversation in pair_ids}]
        differing, right = differing + ct["differing_verdicts"], right + ct["both_right"]
        n = sum(len(r.gold) for r in records)
        verdicts, correct = verdicts + n, correct + head["accuracy"] * n / 100
        trivial_correct += trivial["accuracy"] * n / 100
        results[name] = {"cross_tenant": ct, "accuracy": head["accuracy"], "macro_f1": head["macro_f1"],
                         "always_met_accuracy": trivial["accuracy"],
                         "always_met_cross_tenant_right": trivial["cross_tenant"]["both_right"],
                         "wrong_in_pairs": wrong}
        print(f"{name:14s} pairs {ct['pairs']:2d}: {ct['both_right']:2d} / {ct['differing_verdicts']:2d} differing "
              f"verdicts right under both tenants, {ct['pairs_all_right']} pairs all right "
              f"(always met: {trivial['cross_tenant']['both_right']}); verdict accuracy {head['accuracy']} % "
              f"(always met {trivial['accuracy']} %), macro-F1 {head['macro_f1']}")
        for e in wrong:
            print(f"  wrong: {e['record']} {e['tenant']} {e['criterion']}: {e['gold']} -> {e['predicted']}")
    share = round(100 * right / max(differing, 1), 1)
    accuracy, trivial_accuracy = round(100 * correct / verdicts, 2), round(100 * trivial_correct / verdicts, 2)
    print(f"{' + '.join(splits)}: {right} / {differing} differing verdicts right under both tenants ({share} %); "
          f"verdict accuracy {accuracy} % of {verdicts} (always met {trivial_accuracy} %)")
    write_result(args.out, {"benchmark": "quality_cross_tenant", "machine": info, "head": str(args.head),
                            "files_sha256": {str(p): sha256(p) for p in splits.values()}, "splits": results,
                            "total": {"differing_verdicts": differing, "both_right": right, "share": share,
                                      "verdicts": verdicts, "accuracy": accuracy,
                                      "always_met_accuracy": trivial_accuracy}})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
