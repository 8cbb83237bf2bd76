"""The benchmarks' own arithmetic: adherence labels and scores, the cost model, and the report's failure path.

A benchmark that computes its figures wrongly is worse than none; these are the pure parts of benchmarks/ (no
platform, no model). The ABCD checks read ../shared/data and skip with that reason where it is absent.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks import adherence, cost_model, report

ABCD = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "abcd" / "abcd_sample.json"


def _turn(speaker: str, text: str, action: str | None = None, slots: list[str] | None = None) -> dict:
    turn = {"speaker": speaker, "text": text}
    if action:
        turn.update(action=action, slots=slots or [])
    return turn


CONVERSATION = [
    _turn("customer", "I want to return my shoes."),
    _turn("agent", "Can I have your full name please?"),
    _turn("customer", "Ann Lee"),
    _turn("action", "", "pull-up-account", ["Ann Lee"]),
    _turn("agent", "And the order ID?"),
    _turn("customer", "Order 88231"),
    _turn("action", "", "validate-purchase", ["88231"]),
    _turn("agent", "Done. Anything else I can help with?"),
]


def test_labels_follow_the_action_log_and_the_closing_question():
    labels = adherence.labels(CONVERSATION)
    assert labels == {"pull-up-account": True, "validate-purchase": True, "search-faq": False,
                      "escalate-to-manager": False, "offer-more-help": True}


def test_an_ablation_removes_the_behaviour_and_the_slot_answers_but_nothing_else():
    without = adherence.ablate(CONVERSATION, "validate-purchase")
    texts = [t["text"] for t in without]
    assert "Order 88231" not in texts and "And the order ID?" not in texts
    assert "Ann Lee" in texts
    assert adherence.labels(without) == {**adherence.labels(CONVERSATION), "validate-purchase": False}


@pytest.mark.skipif(not ABCD.is_file(), reason=f"ABCD sample not found at {ABCD}")
def test_the_abcd_set_is_three_conversations_then_one_ablation_per_met_criterion():
    items = adherence.build_set(ABCD)
    originals = [i for i in items if i["ablated"] is None]
    assert len(originals) == 3 and items[:3] == originals
    assert len(items) - 3 == sum(sum(i["labels"].values()) for i in originals)
    for item in items[3:]:
        assert item["labels"][item["ablated"]] is False, item["id"]


def test_per_criterion_scores_against_the_always_met_baseline():
    def scored(label: bool, verdict: str) -> dict:
        return {"status": 200, "labels": {c: label for c in adherence.CRITERIA},
                "verdicts": {c: verdict for c in adherence.CRITERIA}}

    items = [scored(True, "met"), scored(True, "not_met"), scored(False, "met"), scored(False, "not_met"),
             {"status": 502, "labels": {c: True for c in adherence.CRITERIA}, "verdicts": {}}]
    row = adherence.per_criterion(items)["search-faq"]
    assert (row["tp"], row["fp"], row["fn"], row["scored"]) == (1, 1, 1, 4)
    assert row["precision"] == row["recall"] == row["f1"] == 0.5
    assert row["always_met_f1"] == pytest.approx(2 * 0.5 / 1.5)  # half the scored conversations are positive
    assert row["positives_in_set"] == 3  # the failed request still counts in the set, not in the score


def test_self_hosted_cost_adds_the_node_seconds_of_each_task_in_the_mix():
    caps = {task: {"rps": rps} for task, rps in zip(cost_model.MIX, (100.0, 50.0, 0.5, 0.25), strict=True)}
    node = {"usd_per_hour": 3.6}
    seconds = 1 / 100 + 1 / 50 + 1 / 0.5 + 1 / 0.25
    result = cost_model.self_hosted(caps, node)
    assert result["node_seconds_per_conversation"] == pytest.approx(seconds, abs=1e-3)
    assert result["usd_per_million_conversations"] == pytest.approx(1e6 * seconds / 3600 * 3.6, abs=1)
    assert cost_model.self_hosted({**caps, "summarize": {"rps": 0}}, node)["missing"] == ["summarize"]


def test_hosted_cost_prices_the_generic_prompts_and_discounts_only_the_cached_system_part():
    tasks = {task: {"generic_prompt_tokens": 1000, "typical_input_tokens": 20, "compiled_prompt_tokens": 120,
                    "compiled_instruction_tokens": 100, "model_reads_instruction": task in ("summarize", "score-quality")}
             for task in cost_model.MIX}
    prompts = {"generic_system_tokens": 900, "tasks": tasks, "label_answer_tokens": 5}
    caps = {"summarize": {"tokens_out_mean": 40}, "score-quality": {"tokens_out_mean": 200}}
    price = {"usd_per_m_input": 2.0, "usd_per_m_cached_input": 1.0, "usd_per_m_output": 10.0}
    result = cost_model.hosted(prompts, caps, price)
    assert result["input_tokens_per_conversation"] == 4000
    assert result["output_tokens_per_conversation"] == 20 + 5 + 40 + 200
    full = 4000 * 2.0 + 265 * 10.0
    assert result["usd_per_million_conversations"] == pytest.approx(full)
    assert result["usd_per_million_conversations_cached_prompt"] == pytest.approx(full - 4 * 900 * 1.0)
    assert result["compiled_input_tokens_per_conversation"] == 120 + 120 + 2 * (100 + 20)


def test_a_failed_benchmark_shows_as_failed_in_the_report(tmp_path):
    machine = {"cpu": "test", "cores": 2, "memory_gib": 1.0, "loadavg": [0, 0, 0], "versions": {}}
    suite = {"mode": "quick", "engine": "fake", "wall_s": 1.0, "started_at": "2026-11-28T00:00:00+0000",
             "machine_start": machine, "loadavg_end": [0, 0, 0], "platform": {"engine": "fake"},
             "steps": [{"name": "redaction", "status": "failed", "detail": "exit 1", "seconds": 0.5, "scope": "all"},
                       {"name": "cost_model", "status": "ok", "detail": "", "seconds": 0.1, "scope": "all"}]}
    (tmp_path / "suite.json").write_text(json.dumps(suite))
    (tmp_path / "cost_model.json").write_text(json.dumps({"unexpected": "shape"}))
    text = report.write_report(tmp_path).read_text()
    assert "| Redaction (Presidio synthetic set) | **FAILED** (exit 1) |" in text
    assert "**FAILED to report**" in text  # a result it cannot read is not passed off as a number


def test_raised_limits_still_make_a_valid_profile_that_admission_does_not_bind():
    from benchmarks._bench import BENCH_LIMITS, raise_limits
    from serving.profiles.compiler import load_documents

    samples = Path(__file__).resolve().parents[2] / "manifests" / "samples"
    for path in sorted(samples.glob("*.yaml")):
        (document,) = load_documents(raise_limits(path.read_text()), str(path))
        limits = document.spec.limits
        assert (limits.requests_per_second, limits.concurrent_requests, limits.tokens_per_minute) == tuple(
            BENCH_LIMITS.values()), path.name


def test_tweetsumm_folds_keep_each_dialogue_under_all_its_tenants_in_one_fold(tmp_path):
    """The cross-validation must not score a head on a dialogue it trained on under another tenant."""
    from benchmarks import quality_tweetsumm

    # c1 and c3 are each under two tenants, the other dialogues under one
    rows = [{"id": f"r{i}-{t}", "conversation": f"c{i}", "tenant": t}
            for i in range(5) for t in ("a", "b")[: 1 + i % 2]]
    source = tmp_path / "records.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in rows))
    a, b = quality_tweetsumm.folds(source, tmp_path)
    fold_a = [json.loads(x)["conversation"] for x in a.read_text().splitlines()]
    fold_b = [json.loads(x)["conversation"] for x in b.read_text().splitlines()]
    assert set(fold_a).isdisjoint(fold_b) and len(fold_a) + len(fold_b) == len(rows)
    assert fold_a.count("c1") in (0, 2) and fold_a.count("c3") in (0, 2)


def test_tweetsumm_benchmark_refuses_a_head_trained_on_those_records(tmp_path):
    """Scoring a head on its own training records would report training accuracy as a real-data figure."""
    from benchmarks import quality_tweetsumm

    (tmp_path / "training.json").write_text(json.dumps({"data_sha256": {
        "datasets/quality/train.jsonl": "x", "datasets/quality/train_tweetsumm.jsonl": "y"}}))
    assert quality_tweetsumm.trained_on_tweetsumm(tmp_path)
    with pytest.raises(SystemExit):
        quality_tweetsumm.main(["--head", str(tmp_path), "--out", str(tmp_path / "out.json")])
    (tmp_path / "training.json").write_text(json.dumps({"data_sha256": {"datasets/quality/train.jsonl": "x"}}))
    assert not quality_tweetsumm.trained_on_tweetsumm(tmp_path)
