"""The operator end to end: kopf's real engine, our handlers, HTTP to an API-server emulator.

Faked: the Kubernetes API server (kmock's in-memory emulator, extended in tests/k8s_helpers.py), because none can run
on this machine. It validates objects against the CRD schemas (not CEL), keeps /status separate, and has no garbage
collector and no KubeRay: the tests write the RayService status that KubeRay would write.
"""

from __future__ import annotations

import copy

import kopf
import pytest

from operators.switchboard_operator.builders import RouterOptions
from operators.switchboard_operator.cluster import Cluster
from operators.switchboard_operator.handlers import register
from tests.k8s_helpers import RS, TM, TP, load_samples, our_validators, schema_errors, crd_schema, KUBERAY_CRD
from tests.operator.conftest import NAMESPACE, eventually, running_operator

TM_URL = f"/apis/switchboard.dev/v1alpha1/namespaces/{NAMESPACE}/taskmodels"
TP_URL = f"/apis/switchboard.dev/v1alpha1/namespaces/{NAMESPACE}/tenantprofiles"
RS_URL = f"/apis/ray.io/v1/namespaces/{NAMESPACE}/rayservices/switchboard"
MERGE = {"Content-Type": "application/merge-patch+json"}


def cpu_samples() -> dict[str, dict]:
    return {d["metadata"]["name"]: d for d in load_samples("taskmodels/cpu.yaml")}


def stored(api, resource, name: str) -> dict:
    return api.objects[resource, NAMESPACE, name].raw


def condition(obj: dict, type_: str) -> dict | None:
    return next((c for c in obj.get("status", {}).get("conditions", []) if c["type"] == type_), None)


async def create(api, url: str, body: dict) -> None:
    async with api.post(url, json=body) as response:
        assert response.status == 201, await response.text()


async def patch(api, url: str, body: dict) -> int:
    async with api.patch(url, json=body, headers=MERGE) as response:
        return response.status


@pytest.fixture
def registry(api_client) -> kopf.OperatorRegistry:
    registry = kopf.OperatorRegistry()
    register(registry, Cluster(api_client), RouterOptions(image="example.com/switchboard:test"))
    return registry


async def test_taskmodels_build_one_rayservice_owned_by_them(api, registry):
    samples = cpu_samples()
    async with running_operator(api, registry):
        await create(api, TM_URL, samples["redact"])
        await create(api, TM_URL, samples["classify-intent"])
        rayservice = await eventually(
            lambda: len(stored(api, RS, "switchboard")["metadata"]["ownerReferences"]) == 2 and stored(api, RS, "switchboard"),
            what="RayService with both TaskModels",
        )
        redact = await eventually(lambda: condition(stored(api, TM, "redact"), "Accepted")["status"] == "True"
                                  and stored(api, TM, "redact"), what="redact accepted")
    owners = {o["name"]: o["uid"] for o in rayservice["metadata"]["ownerReferences"]}
    assert owners["redact"] == redact["metadata"]["uid"]
    assert redact["status"]["rayService"] == "switchboard"
    assert "deployments:" in rayservice["spec"]["serveConfigV2"] and "name: classify-intent" in rayservice["spec"]["serveConfigV2"]
    assert schema_errors(crd_schema(KUBERAY_CRD, "v1"), rayservice) == []


async def test_invalid_update_is_refused_and_the_last_good_rayservice_stays(api, registry):
    samples = cpu_samples()
    async with running_operator(api, registry):
        await create(api, TM_URL, samples["summarize"])
        await eventually(lambda: condition(stored(api, TM, "summarize"), "Accepted")["status"] == "True", what="accepted")
        before = copy.deepcopy(stored(api, RS, "switchboard"))
        # Valid for the CRD schema, wrong for the operator: presidio cannot summarize.
        assert await patch(api, f"{TM_URL}/summarize", {"spec": {"engine": "presidio"}}) == 200
        rejected = await eventually(
            lambda: condition(stored(api, TM, "summarize"), "Accepted")["status"] == "False" and stored(api, TM, "summarize"),
            what="Accepted=False",
        )
        after = stored(api, RS, "switchboard")
    message = condition(rejected, "Accepted")["message"]
    assert "cannot serve task 'summarize'" in message and "last accepted spec keeps serving" in message
    assert condition(rejected, "Accepted")["reason"] == "InvalidSpec"
    assert after["spec"] == before["spec"]
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]


async def test_update_and_delete_rebuild_and_kuberay_status_becomes_ready(api, registry):
    samples = cpu_samples()
    async with running_operator(api, registry):
        await create(api, TM_URL, samples["redact"])
        await create(api, TM_URL, samples["classify-intent"])
        await eventually(lambda: len(stored(api, RS, "switchboard")["metadata"]["ownerReferences"]) == 2, what="built")
        assert await patch(api, f"{TM_URL}/redact", {"spec": {"replicas": {"max": 5}}}) == 200
        await eventually(lambda: "max_replicas: 5" in stored(api, RS, "switchboard")["spec"]["serveConfigV2"], what="rebuilt")
        # What KubeRay would report once Serve runs the application.
        serve = {"activeServiceStatus": {"applicationStatuses": {"switchboard": {"status": "RUNNING", "serveDeploymentStatuses": {
            "redact": {"status": "HEALTHY"}, "classify-intent": {"status": "UPDATING", "message": "starting"}}}}}}
        assert await patch(api, f"{RS_URL}/status", {"status": serve}) == 200
        await eventually(lambda: condition(stored(api, TM, "redact"), "Ready")["status"] == "True", what="redact Ready")
        intent = await eventually(lambda: condition(stored(api, TM, "classify-intent"), "Ready")["status"] == "False"
                                  and condition(stored(api, TM, "classify-intent"), "Ready"), what="intent not Ready")
        async with api.delete(f"{TM_URL}/classify-intent") as response:
            assert response.status == 200
        await eventually(lambda: "classify-intent" not in stored(api, RS, "switchboard")["spec"]["serveConfigV2"], what="rebuilt")
    assert intent["status"] == "False" and intent["reason"] == "Updating"
    assert stored(api, TM, "redact")["status"]["readyReplicas"] == 1


async def test_tenantprofile_accepted_with_instruction_tokens_then_rejected_update(api, registry):
    shopright = load_samples("shopright.yaml")[0]
    async with running_operator(api, registry):
        await create(api, TP_URL, shopright)
        accepted = await eventually(
            lambda: condition(stored(api, TP, "shopright"), "Accepted")["status"] == "True" and stored(api, TP, "shopright"),
            what="TenantProfile accepted",
        )
        # Schema-valid, but score-quality needs a rubric: the compiler rejects it.
        assert await patch(api, f"{TP_URL}/shopright", {"spec": {"rubric": [], "tasks": ["score-quality"]}}) == 200
        rejected = await eventually(
            lambda: condition(stored(api, TP, "shopright"), "Accepted")["status"] == "False" and stored(api, TP, "shopright"),
            what="TenantProfile rejected",
        )
    tokens = accepted["status"]["instructionTokens"]
    assert set(tokens) == {"redact", "classify-intent", "summarize", "score-quality", "reply"}
    assert accepted["status"]["instructionTokensTotal"] == sum(tokens.values()) > 0
    assert accepted["status"]["observedGeneration"] == 1
    assert accepted["status"]["notRedacted"] == []  # the sample redacts the complete default set; kept by the schema
    assert "rubric: required" in rejected["status"]["message"]
    assert rejected["status"]["instructionTokens"] == tokens  # the last accepted sizes stay visible
    assert our_validators()["TenantProfile"].is_valid(rejected)


async def test_emulator_refuses_objects_that_break_the_crd_schema(api):
    """The emulator's 422 stands in for the API server's OpenAPI validation (CEL rules are not evaluated here)."""
    bad = copy.deepcopy(cpu_samples()["redact"])
    bad["spec"]["engine"] = "onnx"
    async with api.post(TM_URL, json=bad) as response:
        assert response.status == 422
        assert "engine" in (await response.json())["message"]
