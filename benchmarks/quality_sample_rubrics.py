"""score-quality by the trained head on the sample tenants' own rubrics (manifests/samples/shopright.yaml and
northbank.yaml), whose criteria the head's data set does not have: verify-order, identity-verification, compliance.

Usage: python benchmarks/quality_sample_rubrics.py [--head models/quality-minilm] [--out results/quality_sample_rubrics.json]

Records: datasets/quality/sample_rubrics_heldout.jsonl (12 conversations, 54 verdicts, labelled by reading each one
against the sample profile's criterion description and glossary; written before the head was run on them, never
trained on). The head runs in process as the classify replica runs it (QualityHead on the packaged MiniLM), with each
record's profile rubric (id, description) and glossary. Prints per-criterion accuracy against answering `met` and
`not_met` every time. `compliance` ("gives no investment advice and makes no promises") is met by the absence of a
sentence: its gold `met` has no evidence, and the head, which calls a criterion met only when a sentence satisfies
it, is not built for such criteria; the figure shows what that costs.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from _bench import machine, print_provenance, sha256, write_result  # noqa: E402

DATA = REPO / "datasets" / "quality" / "sample_rubrics_heldout.jsonl"
SAMPLES = REPO / "manifests" / "samples"


def profile_inputs(tenant: str) -> tuple[list[tuple[str, str]], list[tuple[str, str]], list[str]]:
    """The head's inputs as the pipeline builds them from the profile: criteria (a violation replaces the
    description of a criterion met by an absence), the glossary, and those criteria's ids."""
    from serving.profiles import parse_document

    spec = parse_document(__import__("yaml").safe_load((SAMPLES / f"{tenant}.yaml").read_text())).spec
    return ([(c.id, c.violation or c.description) for c in spec.rubric], [(g.term, g.definition) for g in spec.glossary],
            [c.id for c in spec.rubric if c.violation])


def score(records: list[dict], predict) -> dict:
    """Accuracy per criterion and overall of `predict(record) -> {criterion: verdict}` against the labels."""
    right, total = defaultdict(int), defaultdict(int)
    for record in records:
        got = predict(record)
        for label in record["labels"]:
            key = f"{record['tenant']}/{label['id']}"
            total[key] += 1
            right[key] += got[label["id"]] == label["verdict"]
    per = {k: round(100 * right[k] / total[k], 1) for k in sorted(total)}
    return {"accuracy": round(100 * sum(right.values()) / sum(total.values()), 1), "per_criterion": per,
            "verdicts": sum(total.values())}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--head", default="models/quality-minilm")
    parser.add_argument("--out", type=Path, default=REPO / "results" / "quality_sample_rubrics.json")
    args = parser.parse_args(argv)
    from serving.intent import SentenceEmbedder
    from serving.quality import load_head
    from serving.vocabulary.conversation import Turn

    records = [json.loads(line) for line in DATA.read_text().splitlines() if line.strip()]
    info = machine()
    print_provenance("score-quality head on the sample tenants' rubrics", {str(DATA): sha256(DATA)}, info)
    head = load_head(REPO / args.head, None, lambda base: SentenceEmbedder(base))
    inputs = {t: profile_inputs(t) for t in {r["tenant"] for r in records}}
    evidence_ok = evidence_n = 0

    def by_head(record: dict) -> dict[str, str]:
        nonlocal evidence_ok, evidence_n
        criteria, glossary, absent = inputs[record["tenant"]]
        turns = [Turn(**t) for t in record["turns"]]
        answer = head.score(turns, criteria, glossary, absent)
        agent = [t.text for t in turns if t.speaker.value == "agent"]
        for c in answer:
            if c["evidence"]:
                evidence_n += 1
                evidence_ok += any(c["evidence"] in a for a in agent)
        return {c["criterion"]: c["verdict"] for c in answer}

    systems = {"head": score(records, by_head),
               "always met": score(records, lambda r: {lab["id"]: "met" for lab in r["labels"]}),
               "always not_met": score(records, lambda r: {lab["id"]: "not_met" for lab in r["labels"]})}
    systems["head"]["evidence_valid"] = round(100 * evidence_ok / max(evidence_n, 1), 1)
    for name, s in systems.items():
        print(f"{name:15s} accuracy {s['accuracy']:5.1f} % over {s['verdicts']} verdicts  {s['per_criterion']}")
    print(f"head evidence valid (quotes of an agent turn, verbatim): {systems['head']['evidence_valid']} %")
    write_result(args.out, {"benchmark": "quality_sample_rubrics", "machine": info, "data": str(DATA), "sha256": sha256(DATA), "head": args.head, "systems": systems})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
