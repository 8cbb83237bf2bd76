"""The quality gate's verdict in a cluster: the replica that gates an adapter writes it to its TaskModel's
status.qualityGate (serving.deployments.gate_report, the real kubernetes client), and the running operator shows a
refusal as Accepted=False / QualityGateRefused, then Accepted=True again once an accepted adapter is reported.

Faked: the API server (the kmock emulator of tests/k8s_helpers.py, which prunes unknown fields by the CRD's status
schema and keeps status as a subresource, as a real one does); the replica itself (its report call is made here with
what GenerateDeployment reports for a refused adapter: a model and a GPU would be needed otherwise).
"""

from __future__ import annotations

import asyncio

from kubernetes import client

from operators.switchboard_operator.status import QUALITY_GATE_REFUSED
from serving.deployments.gate_report import report, verdict
from serving.models.adapters import AdapterChoice
from tests.k8s_helpers import TM
from tests.operator.conftest import NAMESPACE, eventually, running_operator
from tests.operator.test_operator import TM_URL, condition, cpu_samples, create, registry, stored  # noqa: F401

TARGET = {"namespace": NAMESPACE, "taskModel": "summarize"}


async def _report(api_client, requested: str, choice: AdapterChoice, fallback: str | None = None) -> bool:
    found = verdict(requested, fallback, choice)
    return await asyncio.to_thread(report, TARGET, found, client.CustomObjectsApi(api_client))


async def test_a_refused_adapter_shows_as_accepted_false_with_the_gates_reason(api, api_client, registry):  # noqa: F811
    summarize = cpu_samples()["summarize"]
    adapter = summarize["spec"]["adapter"]
    async with running_operator(api, registry):
        await create(api, TM_URL, summarize)
        await eventually(lambda: condition(stored(api, TM, "summarize"), "Accepted")["status"] == "True", what="accepted")
        reason = f"adapter /app/{adapter} refused: held-out rougeL 18.2 does not beat the base model's 20.12; serving the base model"
        assert await _report(api_client, adapter, AdapterChoice(f"/app/{adapter}", None, False, reason))
        refused = await eventually(lambda: condition(stored(api, TM, "summarize"), "Accepted")["status"] == "False"
                                   and condition(stored(api, TM, "summarize"), "Accepted"), what="refusal shown")
        status = stored(api, TM, "summarize")["status"]
        assert status["qualityGate"]["accepted"] is False  # kept by the CRD's status schema, not pruned
        assert status["rayService"] == "switchboard"  # it is still part of the RayService: the base serves the task
        assert refused["reason"] == QUALITY_GATE_REFUSED
        assert refused["message"] == f"spec.adapter: {reason}; the base model serves"

        # The adapter is replaced by one the gate accepts: the replica reports it, the refusal goes.
        assert await _report(api_client, adapter, AdapterChoice(f"/app/{adapter}", f"/app/{adapter}", True))
        await eventually(lambda: condition(stored(api, TM, "summarize"), "Accepted")["status"] == "True",
                         what="accepted again")
    assert condition(stored(api, TM, "summarize"), "Accepted")["reason"] == "Built"


async def test_a_verdict_on_another_adapter_does_not_touch_the_condition(api, api_client, registry):  # noqa: F811
    """A replica still running the previous spec reports on its adapter: that says nothing about the current one."""
    summarize = cpu_samples()["summarize"]
    async with running_operator(api, registry):
        await create(api, TM_URL, summarize)
        await eventually(lambda: condition(stored(api, TM, "summarize"), "Accepted")["status"] == "True", what="accepted")
        old = "pvc://adapters/summarize-v0"
        assert await _report(api_client, old, AdapterChoice(old, None, False, "refused"))
        await eventually(lambda: stored(api, TM, "summarize")["status"]["qualityGate"]["requested"] == old,
                         what="verdict stored")
        await asyncio.sleep(0.5)  # give the operator time to (wrongly) react
    assert condition(stored(api, TM, "summarize"), "Accepted")["status"] == "True"
