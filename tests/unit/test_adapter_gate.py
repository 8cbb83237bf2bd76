"""The adapter quality gate: an adapter serves only when its held-out figures beat the base model's (and the trivial
baselines it lists); otherwise the deployment keeps the last accepted adapter, or the base, and says why. Pure
functions and real files; only engine construction is stood in for where a test says so."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

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


def test_an_adapter_must_also_beat_the_trivial_baselines_it_lists():
    metrics = {"metric": "macro_f1", "adapter": 0.36, "base": 0.30, "baselines": {"always_met": 0.37}}
    assert gate_reason(metrics) == "held-out macro_f1 0.36 does not beat the always_met baseline's 0.37"
    assert gate_reason({**metrics, "adapter": 0.81}) is None


# ---- the last good adapter keeps serving ------------------------------------------------------------------------------


def _adapter(folder, figure: float, base: float = 18.5):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "adapter_config.json").write_text("{}")
    (folder / "adapter_model.safetensors").write_bytes(b"weights-" + str(figure).encode())
    (folder / "metrics.json").write_text(json.dumps({"metric": "rougeL", "adapter": figure, "base": base}))
    return folder


def test_a_refused_adapter_leaves_the_last_accepted_one_serving_with_the_reason(tmp_path):
    from serving.models.adapters import choose_adapter

    good, bad = str(_adapter(tmp_path / "v1", 30.0)), str(_adapter(tmp_path / "v2", 10.0))
    choice = choose_adapter(bad, last_good=good)
    assert (choice.serving, choice.accepted) == (good, False)
    assert choice.reason == (f"adapter {bad} refused: held-out rougeL 10 does not beat the base model's 18.5; "
                             f"serving the last accepted adapter {good}")
    assert choice.status() == {"requestedAdapter": bad, "servingAdapter": good, "adapterAccepted": False,
                               "adapterReason": choice.reason}
    assert choose_adapter(bad).serving is None and choose_adapter(bad).reason.endswith("serving the base model")
    assert choose_adapter(good, last_good=bad) == choose_adapter(good)  # accepted: the requested one serves
    assert choose_adapter(None, last_good=good).serving is None  # no adapter asked for: the base, as asked


class _Engines:
    """Stands in for engine construction (loading a model takes seconds; the gate and the files here are real): an
    adapter whose weights file says `broken` fails to load as the transformers engine's does (ModelNotReady)."""

    def __init__(self):
        self.calls = []

    def __call__(self, kind, path, **options):
        from serving.errors import ModelNotReady

        self.calls.append(options.get("adapter"))
        adapter = options.get("adapter")
        if adapter and b"broken" in (Path(adapter) / "adapter_model.safetensors").read_bytes():
            raise ModelNotReady(f"cannot load the adapter at {adapter}: header too large")
        return {"kind": kind, "adapter": adapter}


def test_an_accepted_adapter_is_kept_and_serves_when_its_replacement_is_refused_or_broken(tmp_path):
    from serving.deployments.generate import start_engine

    store, folder = tmp_path / "store", tmp_path / "adapters" / "summarize"
    options = {"max_batch_size": 4, "adapter": str(folder), "adapter_task": "summarize", "adapter_store": str(store)}
    _adapter(folder, 30.0)
    engine, choice = start_engine("transformers", "base", options, _Engines())
    assert engine == {"kind": "transformers", "adapter": str(folder)} and choice.accepted
    assert (store / "summarize" / "adapter_model.safetensors").read_bytes() == b"weights-30.0"  # the kept copy

    _adapter(folder, 10.0)  # retrained in place, worse than the base: refused; the kept copy serves
    engine, choice = start_engine("transformers", "base", options, _Engines())
    assert engine["adapter"] == str(store / "summarize") and not choice.accepted
    assert "refused: held-out rougeL 10" in choice.reason
    assert (store / "summarize" / "adapter_model.safetensors").read_bytes() == b"weights-30.0"  # not overwritten

    _adapter(folder, 40.0)
    (folder / "adapter_model.safetensors").write_bytes(b"broken")  # passes the gate, fails to load
    engines = _Engines()
    engine, choice = start_engine("transformers", "base", options, engines)
    assert engines.calls == [str(folder), str(store / "summarize")]
    assert engine["adapter"] == str(store / "summarize")
    assert "could not be loaded: cannot load the adapter" in choice.reason and not choice.accepted


def test_without_a_last_good_adapter_a_broken_one_leaves_the_base_serving(tmp_path):
    from serving.deployments.generate import start_engine
    from serving.errors import ModelNotReady

    folder = _adapter(tmp_path / "v1", 30.0)
    (folder / "adapter_model.safetensors").write_bytes(b"broken")
    engines = _Engines()
    engine, choice = start_engine("transformers", "base", {"adapter": str(folder)}, engines)
    assert engines.calls == [str(folder), None] and engine["adapter"] is None
    assert choice.reason.endswith("serving the base model")

    def no_model(kind, path, **options):
        raise ModelNotReady("no model at base")

    with pytest.raises(ModelNotReady, match="no model at base"):
        start_engine("transformers", "base", {}, no_model)


def test_cluster_fallback_adapter_comes_from_the_task_model(tmp_path):
    """In a cluster the operator passes the TaskModel's last accepted adapter as fallbackAdapter."""
    from serving.app import TaskArgs, generate_engine_options
    from serving.deployments.generate import gated

    good, bad = _adapter(tmp_path / "v1", 30.0), _adapter(tmp_path / "v2", 10.0)
    spec = TaskArgs.model_validate({"taskModel": "summarize-slm", "model": "smollm2-135m-instruct",
                                    "engine": "transformers", "adapter": str(bad), "fallbackAdapter": str(good)})
    options = generate_engine_options(spec, {})
    assert options["fallback_adapter"] == str(good)
    assert gated(options)["adapter"] == str(good)


def test_local_mode_gives_a_refused_task_its_own_deployment_when_a_kept_copy_exists(tmp_path):
    from serving.app import accepted_adapters

    store = tmp_path / "store"
    _adapter(store / "summarize", 30.0)
    bad = _adapter(tmp_path / "summarize", 10.0)
    assert accepted_adapters({"summarize": str(bad)}, store) == {"summarize": str(bad.resolve())}
    assert accepted_adapters({"summarize": str(bad)}) == {}


async def test_the_deployment_reports_which_adapter_serves(tmp_path):
    """GenerateDeployment itself (not through Ray; fake engine, which takes no adapter): no adapter, base serving."""
    from serving.deployments.generate import GenerateDeployment

    deployment = GenerateDeployment("fake", "fake-model", str(tmp_path), {})
    assert await deployment.adapter_status() == {"requestedAdapter": None, "servingAdapter": None,
                                                 "adapterAccepted": True, "adapterReason": None}


def test_an_adapter_that_loses_a_guard_figure_to_the_base_is_refused():
    """score-quality: a better macro-F1 does not excuse evidence that no longer quotes the agent."""
    metrics = {"metric": "macro_f1", "adapter": 0.53, "base": 0.42, "baselines": {"always_met": 0.37},
               "guards": {"json_valid": {"adapter": 100.0, "base": 100.0},
                          "evidence_valid": {"adapter": 0.0, "base": 87.4}}}
    assert gate_reason(metrics) == "held-out evidence_valid 0 is worse than the base model's 87.4"
    metrics["guards"]["evidence_valid"]["adapter"] = 90.0
    assert gate_reason(metrics) is None
