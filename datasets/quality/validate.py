"""Check the score-quality data set (schema, verbatim evidence, split disjointness) and print its label balance.

    python datasets/quality/validate.py [--data-dir ../shared/data]

Pure Python (json, hashlib, re), so it runs in a second. Exit status 1 and one line per problem when a check fails.
Records that point at TweetSumm (`turns_ref`) are resolved from the shared data folder; see README.md for the schema.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
from collections import Counter, defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
SPLITS = {
    "heldout": HERE / "heldout.jsonl",
    "heldout_pairs": HERE / "heldout_pairs.jsonl",
    "heldout_blind": HERE / "heldout_blind.jsonl",
    "heldout_second": HERE / "heldout_second.jsonl",
    "train": HERE / "train.jsonl",
    "train_tweetsumm": HERE / "train_tweetsumm.jsonl",
    "train_wide": HERE / "train_wide.jsonl",
    "train_steps": HERE / "train_steps.jsonl",
}
RUBRICS = HERE / "rubrics.json"
DEFAULT_DATA = HERE.parents[2] / "shared" / "data"
VERDICTS = ("met", "not_met")
SPEAKERS = ("customer", "agent")
SOURCES = ("authored", "template", "tweetsumm", "bitext", "abcd")
# The same sentence split as serving/tasks/quality.py evidence_quotes (a test keeps the two in step).
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def load_tenants(path: Path = RUBRICS) -> dict:
    return json.loads(path.read_text())["tenants"]


def load_split(path: Path, data_dir: Path = DEFAULT_DATA) -> list[dict]:
    """Records of one split with `turns` filled in (TweetSumm references resolved from data_dir)."""
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    tweetsumm: dict | None = None
    for rec in records:
        ref = rec.get("turns_ref")
        if ref is not None:
            if tweetsumm is None:
                tweetsumm = _tweetsumm(data_dir)
            dialog = tweetsumm[(ref["split"], ref["dialog_id"])]
            rec["turns"] = [dialog["turns"][i] for i in ref["turn_indices"]]
            # Evidence as `sha256:<hex>` of the agent sentence: TweetSumm's text is not redistributed here.
            by_hash = {hashlib.sha256(s.encode()).hexdigest(): s for s in agent_sentences(rec["turns"])}
            for lab in rec["labels"]:
                if lab["evidence"].startswith("sha256:"):
                    lab["evidence"] = by_hash.get(lab["evidence"][7:], lab["evidence"])
    return records


def _tweetsumm(data_dir: Path) -> dict:
    out = {}
    for split in ("train", "valid"):
        path = data_dir / "tweetsumm" / f"{split}.jsonl"
        if path.exists():
            for line in path.read_text().splitlines():
                d = json.loads(line)
                out[(split, d["dialog_id"])] = d
    return out


def agent_sentences(turns: list[dict]) -> set[str]:
    """The agent sentences score-quality may quote (serving.tasks.quality.evidence_quotes, without its clipping)."""
    out = set()
    for turn in turns:
        if turn["speaker"] == "agent":
            for s in _SENTENCE_END.split(" ".join(turn["text"].split())):
                out.add(s.strip())
    return out


def conversation_hash(turns: list[dict]) -> str:
    """SHA-256 of the conversation's normalised text (lower case, single spaces, speaker-tagged)."""
    text = "\n".join(f"{t['speaker']}: {' '.join(t['text'].lower().split())}" for t in turns)
    return hashlib.sha256(text.encode()).hexdigest()


def check_record(rec: dict, tenants: dict) -> list[str]:
    rid = rec.get("id", "?")
    errors = []
    for key in ("id", "conversation", "tenant", "source", "turns", "labels"):
        if key not in rec:
            errors.append(f"{rid}: missing `{key}`")
    if errors:
        return errors
    if rec["source"] not in SOURCES:
        errors.append(f"{rid}: source {rec['source']!r} not in {SOURCES}")
    tenant = tenants.get(rec["tenant"])
    if tenant is None:
        return errors + [f"{rid}: unknown tenant {rec['tenant']!r}"]
    turns = rec["turns"]
    if not turns or any(set(t) != {"speaker", "text"} or t["speaker"] not in SPEAKERS or not t["text"].strip()
                        for t in turns):
        errors.append(f"{rid}: turns must be [{{speaker: customer|agent, text}}], non-empty")
        return errors
    agent_texts = [" ".join(t["text"].split()) for t in turns if t["speaker"] == "agent"]
    sentences = agent_sentences(turns)
    ids = [c["id"] for c in tenant["rubric"]]
    if [lab.get("id") for lab in rec["labels"]] != ids:
        errors.append(f"{rid}: label ids {[lab.get('id') for lab in rec['labels']]} != rubric {ids}")
    for lab in rec["labels"]:
        if set(lab) != {"id", "verdict", "evidence"} or lab["verdict"] not in VERDICTS:
            errors.append(f"{rid}/{lab.get('id')}: label must be {{id, verdict: met|not_met, evidence}}")
            continue
        ev = lab["evidence"]
        if lab["verdict"] == "not_met" and ev != "":
            errors.append(f"{rid}/{lab['id']}: not_met must have empty evidence")
        if lab["verdict"] == "met":
            if not ev or not any(ev in a for a in agent_texts):
                errors.append(f"{rid}/{lab['id']}: evidence is not a verbatim substring of an agent turn: {ev!r}")
            elif ev not in sentences:
                errors.append(f"{rid}/{lab['id']}: evidence is not one whole agent sentence: {ev!r}")
    return errors


def check(data_dir: Path = DEFAULT_DATA) -> tuple[list[str], dict]:
    """All problems found, and the loaded splits."""
    tenants = load_tenants()
    splits = {name: load_split(path, data_dir) for name, path in SPLITS.items() if path.exists()}
    errors: list[str] = []
    for crit in (c for t in tenants.values() for c in t["rubric"]):
        if not re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,62}", crit["id"]) or not 0 < crit["weight"] <= 100:
            errors.append(f"rubric criterion {crit['id']!r}: bad id or weight")
    seen_ids: set[str] = set()
    for records in splits.values():
        for rec in records:
            errors += check_record(rec, tenants)
            if rec.get("id") in seen_ids:
                errors.append(f"{rec.get('id')}: duplicate record id")
            seen_ids.add(rec.get("id"))
    hashes = {name: {conversation_hash(r["turns"]) for r in recs if r.get("turns")} for name, recs in splits.items()}
    for held in (n for n in hashes if n.startswith("heldout")):
        for name in (n for n in hashes if not n.startswith("heldout")):
            shared = hashes[held] & hashes[name]
            if shared:
                errors.append(f"{len(shared)} conversations appear in both {held} and {name}")
    return errors, splits


def balance(records: list[dict]) -> dict:
    """Per tenant and per criterion: [met, total]."""
    out: dict = defaultdict(lambda: [0, 0])
    for rec in records:
        for lab in rec["labels"]:
            for key in ("ALL", f"tenant={rec['tenant']}", f"criterion={lab['id']}"):
                out[key][0] += lab["verdict"] == "met"
                out[key][1] += 1
    return dict(out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA)
    args = parser.parse_args()
    errors, splits = check(args.data_dir)
    for name, records in splits.items():
        convs = {r["conversation"] for r in records}
        print(f"{name}: {len(records)} records, {len(convs)} conversations, "
              f"sources {dict(Counter(r['source'] for r in records))}")
        for key, (met, total) in sorted(balance(records).items()):
            print(f"  {key:28s} met {met:4d} / {total:4d} ({100 * met / total:5.1f} %)")
    for e in errors:
        print("ERROR", e)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
