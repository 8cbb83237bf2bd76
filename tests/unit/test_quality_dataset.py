"""The score-quality data set in datasets/quality: schema, verbatim evidence, split disjointness, cross-tenant pairs.

Nothing is faked: these read the committed JSONL files and run the same checks as datasets/quality/validate.py.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

from serving.profiles.model import Criterion, GlossaryEntry
from serving.tasks.quality import evidence_quotes
from serving.vocabulary.conversation import Turn

ROOT = Path(__file__).resolve().parents[2]


def _load(name: str, file: str):
    """A script of datasets/quality as a module (the folder is not a package)."""
    spec = importlib.util.spec_from_file_location(name, ROOT / "datasets" / "quality" / file)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # a dataclass in it looks its module up there
    spec.loader.exec_module(module)
    return module


validate = _load("quality_validate", "validate.py")


def test_the_data_set_passes_every_check():
    errors, splits = validate.check()
    assert errors == []
    assert set(splits) == {"heldout", "heldout_pairs", "heldout_blind", "heldout_second", "train", "train_tweetsumm",
                           "train_wide", "train_steps"}


def test_heldout_is_large_enough_and_spans_three_tenants():
    held = validate.load_split(validate.SPLITS["heldout"])
    assert len(held) >= 30
    assert len({r["conversation"] for r in held}) >= 25
    assert sum(len(r["labels"]) for r in held) >= 180
    assert len({r["tenant"] for r in held}) >= 3


def test_the_second_writers_split_has_the_size_the_issue_asks_and_resolutions_not_met():
    """Issue 13's held-out minimum (25 conversations, 150 verdicts, 3 rubrics), and resolution negatives, which the
    earlier splits hardly have (a head calling every resolution met would pass them)."""
    held = validate.load_split(validate.SPLITS["heldout_second"])
    assert len({r["conversation"] for r in held}) >= 25
    assert sum(len(r["labels"]) for r in held) >= 150
    assert len({r["tenant"] for r in held}) >= 3
    resolution = [lab["verdict"] for r in held for lab in r["labels"] if lab["id"] == "resolution"]
    assert resolution.count("not_met") >= 5


def test_rubrics_and_glossaries_fit_the_tenant_profile_schema():
    for tenant in validate.load_tenants().values():
        [Criterion.model_validate(c) for c in tenant["rubric"]]
        [GlossaryEntry.model_validate(g) for g in tenant["glossary"]]


def test_every_met_evidence_is_a_quote_score_quality_may_emit():
    """The evidence is one of serving.tasks.quality.evidence_quotes, so a constrained decoder can produce it."""
    for name, path in validate.SPLITS.items():
        for rec in validate.load_split(path):
            quotes = set(evidence_quotes([Turn.model_validate(t) for t in rec["turns"]]))
            for lab in rec["labels"]:
                if lab["verdict"] == "met":
                    assert lab["evidence"] in quotes, (name, rec["id"], lab["id"])


@pytest.mark.parametrize(
    "split, least", [("heldout", 5), ("heldout_pairs", 8), ("heldout_blind", 10), ("heldout_second", 10)]
)
def test_same_conversation_under_two_tenants_flips_some_verdict(split, least):
    held = validate.load_split(validate.SPLITS[split])
    by_conv: dict = {}
    for rec in held:
        by_conv.setdefault(rec["conversation"], []).append(rec)
    pairs = [recs for recs in by_conv.values() if len(recs) == 2]
    assert len(pairs) >= least and all(len(recs) <= 2 for recs in by_conv.values())
    for a, b in pairs:
        assert a["tenant"] != b["tenant"] and a["turns"] == b["turns"]
        assert [x["verdict"] for x in a["labels"]] != [x["verdict"] for x in b["labels"]]


def test_validator_rejects_evidence_that_is_not_an_agent_quote():
    tenants = validate.load_tenants()
    rec = validate.load_split(validate.SPLITS["heldout"])[0]
    bad = {**rec, "labels": [dict(lab) for lab in rec["labels"]]}
    bad["labels"][0] = {"id": "greeting", "verdict": "met", "evidence": rec["turns"][0]["text"]}  # a customer turn
    assert any("verbatim" in e for e in validate.check_record(bad, tenants))
    bad["labels"][0] = {"id": "greeting", "verdict": "not_met", "evidence": "Hello"}
    assert any("empty evidence" in e for e in validate.check_record(bad, tenants))


def test_a_heldout_pairs_conversation_copied_into_train_is_an_error(tmp_path, monkeypatch):
    pair = validate.load_split(validate.SPLITS["heldout_pairs"])[0]
    leaked = tmp_path / "train.jsonl"
    leaked.write_text(json.dumps({**pair, "id": "leaked-1"}) + "\n")
    monkeypatch.setitem(validate.SPLITS, "train", leaked)
    errors, _ = validate.check()
    assert "1 conversations appear in both heldout_pairs and train" in errors


def test_conversation_hash_ignores_case_and_spacing_only():
    turns = [{"speaker": "agent", "text": "Hello  there."}]
    assert validate.conversation_hash(turns) == validate.conversation_hash([{"speaker": "agent", "text": "hello there."}])
    assert validate.conversation_hash(turns) != validate.conversation_hash([{"speaker": "customer", "text": "Hello there."}])


def test_tweetsumm_records_read_their_turns_from_the_shared_data_as_the_head_trains_on_them():
    # The hand-labelled TweetSumm records carry a turns_ref, not text; the head's loader resolves it from
    # ../shared/data/tweetsumm, and each `met` evidence is then one of the quotable agent sentences.
    from serving.tasks.quality import evidence_quotes
    from serving.training.quality_head import load_records

    records = load_records(ROOT / "datasets" / "quality" / "train_tweetsumm.jsonl", ROOT / "datasets" / "quality" / "rubrics.json")
    assert len(records) >= 30
    for record in records:
        quotes = set(evidence_quotes(list(record.turns)))
        assert any(t.speaker.value == "agent" for t in record.turns)
        assert all(evidence in quotes for _, verdict, evidence in record.gold if verdict == "met"), record.record_id


def test_a_turns_ref_record_gets_its_text_and_evidence_and_a_wrong_hash_names_the_record(tmp_path):
    import hashlib
    import json

    import pytest

    from serving.training.quality import resolve_record

    turns = [{"speaker": "customer", "text": "My bag is lost."}, {"speaker": "agent", "text": "Sorry about that. DM us the tag."}]
    (tmp_path / "train.jsonl").write_text(json.dumps({"dialog_id": "d1", "turns": turns}) + "\n")
    digest = hashlib.sha256(b"DM us the tag.").hexdigest()
    record = {"id": "tw-d1-skyway", "turns_ref": {"split": "train", "dialog_id": "d1", "turn_indices": [0, 1]},
              "labels": [{"id": "resolution", "verdict": "met", "evidence": f"sha256:{digest}"},
                         {"id": "upsell", "verdict": "not_met", "evidence": ""}]}
    resolved = resolve_record(record, tmp_path)
    assert resolved["turns"] == turns
    assert [lab["evidence"] for lab in resolved["labels"]] == ["DM us the tag.", ""]
    wrong = {**record, "labels": [{"id": "resolution", "verdict": "met", "evidence": "sha256:" + "0" * 64}]}
    with pytest.raises(KeyError, match="tw-d1-skyway"):
        resolve_record(wrong, tmp_path)


@pytest.mark.parametrize("split", ["train", "train_wide", "train_steps"])
def test_each_templated_training_split_is_what_its_generator_writes(split):
    """The datasheet's SHA-256 and the model card's data hashes are reproducible: the committed file is byte for byte
    what `generate_train.py` (with --wide / --steps and their default n and seed) writes."""
    assert _load("quality_generate", "generate_train.py").render(split) == validate.SPLITS[split].read_text()
