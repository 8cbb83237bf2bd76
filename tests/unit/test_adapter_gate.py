"""The adapter quality gate: an adapter serves only when its held-out figures beat the base model's; otherwise the
deployment drops it with the reason and the base keeps serving. Pure functions and real files; nothing is faked."""

from __future__ import annotations

import json

from serving.deployments.generate import gated
from serving.models.adapters import check_adapter, gate_reason


def test_an_adapter_that_beats_the_base_is_accepted():
    assert gate_reason({"metric": "rougeL", "adapter": 31.2, "base": 18.5}) is None


def test_an_adapter_that_does_not_beat_the_base_is_refused_with_the_figures():
    reason = gate_reason({"metric": "rougeL", "adapter": 18.5, "base": 18.5})
    assert reason == "held-out rougeL 18.5 does not beat the base model's 18.5"


def test_lower_is_better_metrics_compare_the_other_way():
    assert gate_reason({"metric": "perplexity", "higher_is_better": False, "adapter": 9.0, "base": 14.0}) is None
    assert "does not beat" in gate_reason({"metric": "perplexity", "higher_is_better": False, "adapter": 15, "base": 14})


def test_an_adapter_without_figures_is_refused():
    assert "run `switchboard eval TASK`" in gate_reason(None)
    assert "numeric" in gate_reason({"adapter": "n/a", "base": 1})


def test_the_deployment_drops_a_refused_adapter_and_keeps_a_good_one(tmp_path):
    good, bad = tmp_path / "good", tmp_path / "bad"
    for folder, figure in ((good, 30.0), (bad, 10.0)):
        folder.mkdir()
        (folder / "adapter_config.json").write_text("{}")
        (folder / "metrics.json").write_text(json.dumps({"metric": "rougeL", "adapter": figure, "base": 18.5}))
    assert gated({"max_batch_size": 4, "adapter": str(good)}) == {"max_batch_size": 4, "adapter": str(good)}
    assert gated({"max_batch_size": 4, "adapter": str(bad)}) == {"max_batch_size": 4}
    assert check_adapter(tmp_path / "missing").startswith("no LoRA adapter")


def test_local_mode_serves_only_accepted_adapters(tmp_path):
    """`make run`: a task whose adapter passes the gate gets its own deployment; a refused or missing one stays on
    the base model."""
    from serving.app import accepted_adapters

    for name, figure in (("good", 30.0), ("bad", 10.0)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "adapter_config.json").write_text("{}")
        (tmp_path / name / "metrics.json").write_text(json.dumps({"adapter": figure, "base": 18.5}))
    chosen = accepted_adapters({"summarize": str(tmp_path / "good"), "reply": str(tmp_path / "bad"),
                                "score-quality": str(tmp_path / "missing")})
    assert chosen == {"summarize": str((tmp_path / "good").resolve())}
