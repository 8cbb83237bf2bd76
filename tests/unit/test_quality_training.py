"""score-quality training and evaluation: records are rendered as the router sends them, the answer is cut where the
constrained decoder cuts it, and the held-out figures are computed right. Real data files, the real compiler,
composer, schema and plan; no model (the figures are pure functions of gold and predicted verdicts)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from serving.pipeline.steps import job_for
from serving.profiles.compiler import approximate_counter, compile_profile
from serving.vocabulary.catalog import Task
from serving.training.quality import VERDICT_WEIGHT, guided_pieces, piece_weights, render_record, tenant_specs
from serving.training.quality_eval import always_met, cross_tenant, figures, verdict_figures

DATA = Path(__file__).resolve().parents[2] / "datasets" / "quality"


def _records(split: str) -> list[dict]:
    return [json.loads(line) for line in (DATA / f"{split}.jsonl").read_text().splitlines() if line.strip()]


def test_a_record_is_rendered_exactly_as_the_router_composes_the_request():
    specs = tenant_specs()
    record = _records("heldout")[0]
    item = render_record(record, specs)
    profile = compile_profile(record["tenant"], specs[record["tenant"]], approximate_counter)
    job = job_for(profile, Task.SCORE_QUALITY, list(item.turns), None)
    assert [dict(m) for m in job.messages] == [dict(m) for m in item.request]
    system = item.messages[0]["content"]
    assert "Terms: verification = confirming the order number" in system  # shopright's own glossary
    assert system.endswith("Its keys: criteria (array of object, required).")  # the engine's JSON instruction


def test_the_answer_is_cut_at_the_decoder_decisions_and_verdicts_weigh_more():
    item = render_record(_records("train")[1], tenant_specs())
    answer = item.answer()
    pieces = guided_pieces(item.schema, answer)
    assert "".join(pieces) == answer
    verdicts = [p for p, w in zip(pieces, piece_weights(pieces), strict=True) if w == VERDICT_WEIGHT]
    assert verdicts == [f'{v}"' for _, v, _ in item.gold]
    assert all(p.endswith(('"verdict": "', '"evidence": "')) for p in pieces[0:-1:2])


def test_an_answer_the_schema_cannot_produce_is_refused():
    item = render_record(_records("train")[1], tenant_specs())
    made_up = item.answer().replace('"verdict": "met", "evidence": "', '"verdict": "met", "evidence": "Invented. ', 1)
    with pytest.raises(ValueError, match="no option"):
        guided_pieces(item.schema, made_up)


def test_verdict_figures_accuracy_and_macro_f1():
    gold = ["met", "met", "not_met", "not_met"]
    pred = ["met", "not_met", "not_met", "not_applicable"]
    f = verdict_figures(gold, pred)
    assert f["accuracy"] == 50.0
    # met: 1 right, 1 missed -> 2/3; not_met: 1 right, 1 wrongly written, 1 missed (not_applicable) -> 1/2
    assert f["f1"] == {"met": round(2 / 3, 4), "not_met": 0.5}
    assert f["macro_f1"] == pytest.approx((2 / 3 + 0.5) / 2, abs=1e-4)


def test_always_met_on_the_heldout_set_is_the_datasheet_figure():
    specs = tenant_specs()
    items = [render_record(r, specs) for r in _records("heldout")]
    f = figures(items, always_met(items))
    assert (f["verdicts"], f["accuracy"]) == (192, 59.38)
    assert f["f1"]["not_met"] == 0.0 and f["evidence_valid"] == 0.0  # no evidence written
    gold = [[(c, v, e) for c, v, e in item.gold] for item in items]
    perfect = figures(items, gold)
    assert (perfect["accuracy"], perfect["macro_f1"], perfect["evidence_valid"]) == (100.0, 1.0, 100.0)
    assert perfect["cross_tenant"]["pairs"] == 6
    assert perfect["cross_tenant"]["both_right"] == perfect["cross_tenant"]["differing_verdicts"] > 0


def test_invalid_output_counts_against_json_validity_and_every_verdict():
    specs = tenant_specs()
    items = [render_record(r, specs) for r in _records("heldout")[:2]]
    f = figures(items, [None, [(c, v, e) for c, v, e in items[1].gold]])
    assert f["json_valid"] == 50.0 and f["accuracy"] == 50.0


def test_cross_tenant_counts_a_flip_right_only_under_both_tenants():
    specs = tenant_specs()
    records = _records("heldout")
    by_conv: dict[str, list[dict]] = {}
    for r in records:
        by_conv.setdefault(r["conversation"], []).append(r)
    pair = next(v for v in by_conv.values() if len(v) == 2)
    items = [render_record(r, specs) for r in pair]
    gold = [[(c, v, e) for c, v, e in item.gold] for item in items]
    flipped = [c for (c, va, _), (_, vb, _) in zip(items[0].gold, items[1].gold, strict=True) if va != vb]
    wrong_b = [(c, items[0].gold[i][1], e) for i, (c, _, e) in enumerate(items[1].gold)]  # b copies a's verdicts
    assert cross_tenant(items, gold)["both_right"] == len(flipped)
    assert cross_tenant(items, [gold[0], wrong_b])["both_right"] == 0


def test_the_learning_rate_decays_by_steps_or_by_the_wall_budget_whichever_runs_out_first():
    from serving.training.trainer import lr_factor

    assert lr_factor(0, 100, 0.0) == 0.1  # warm-up over 10 steps
    assert lr_factor(50, 100, 0.1) == 0.5  # half the steps, a tenth of the budget
    assert lr_factor(10, 100, 0.9) == pytest.approx(0.1)  # a slow machine: the budget decides
    assert lr_factor(99, 100, 1.5) == 0.05  # never below the floor
