"""An adapter the operator can tell is wrong or unreachable shows on the TaskModel as Accepted=False with the reason.

Faked: the Cluster door (FakeCluster from test_kuberay_update: a stored RayService and a set of existing claims),
since no API server runs here; what the operator checks without running the model is whether the spec names a valid
adapter and whether a pvc:// claim exists. The held-out gate itself (serving/models/adapters.py) runs in the data
plane, where the adapter's files are.
"""

from __future__ import annotations

import copy

import pytest
import yaml
from pydantic import ValidationError

from operators.switchboard_operator.handlers import Reconciler
from operators.switchboard_operator.models import TaskModelSpec
from tests.k8s_helpers import load_samples
from tests.operator.test_builders import OPTIONS
from tests.operator.test_kuberay_update import FakeCluster


def items() -> list[dict]:
    return [{**d, "metadata": {**d["metadata"], "uid": f"u-{d['metadata']['name']}", "generation": 1}}
            for d in load_samples("taskmodels/cpu.yaml")]


def accepted_condition(cluster: FakeCluster, name: str) -> dict:
    return next(c for c in cluster.statuses[name]["conditions"] if c["type"] == "Accepted")


def tasks(cluster: FakeCluster) -> dict:
    return yaml.safe_load(cluster.rayservice["spec"]["serveConfigV2"])["applications"][0]["args"]["tasks"]


def test_an_adapter_on_a_task_that_takes_none_is_refused_with_the_field():
    spec = {**load_samples("taskmodels/cpu.yaml")[0]["spec"], "adapter": "pvc://adapters/redact-lora"}
    with pytest.raises(ValidationError, match="adapter: task 'redact' takes no LoRA adapter"):
        TaskModelSpec.model_validate(spec)


async def test_an_adapter_on_a_missing_claim_is_refused_and_the_last_accepted_spec_keeps_serving():
    models = items()
    cluster = FakeCluster(models, claims=())
    reconciler = Reconciler(cluster, OPTIONS)
    await reconciler.reconcile("support")
    summarize = next(m for m in models if m["metadata"]["name"] == "summarize")
    summarize["spec"] = {**copy.deepcopy(summarize["spec"]), "adapter": "pvc://adapters/summarize-lora"}
    summarize["metadata"]["generation"] = 2
    await reconciler.reconcile("support")
    condition = accepted_condition(cluster, "summarize")
    assert (condition["status"], condition["reason"]) == ("False", "AdapterUnreachable")
    assert condition["message"] == ("spec.adapter: PersistentVolumeClaim 'adapters' not found in namespace 'support'; "
                                    "the last accepted spec keeps serving")
    assert tasks(cluster)["summarize"]["adapter"] == "adapters/summarize"  # served as before, no pod waits for the claim
    assert accepted_condition(cluster, "redact")["status"] == "True"
    cluster.claims.add("adapters")  # the claim is created: the next reconcile takes the adapter
    await reconciler.reconcile("support")
    assert accepted_condition(cluster, "summarize")["status"] == "True"
    assert tasks(cluster)["summarize"]["adapter"] == "pvc://adapters/summarize-lora"


async def test_a_new_taskmodel_on_a_missing_claim_is_not_built():
    models = items()
    summarize = next(m for m in models if m["metadata"]["name"] == "summarize")
    summarize["spec"] = {**summarize["spec"], "model": "pvc://models/summarize-slm"}
    cluster = FakeCluster(models, claims=())
    await Reconciler(cluster, OPTIONS).reconcile("support")
    assert accepted_condition(cluster, "summarize")["reason"] == "ModelUnreachable"
    assert "summarize" not in tasks(cluster) and "redact" in tasks(cluster)


async def test_claim_lookup_over_http(api, api_client):
    """The real Cluster door against the API-server emulator: 404 is a missing claim, 200 an existing one."""
    from operators.switchboard_operator.cluster import Cluster

    cluster = Cluster(api_client)
    assert await cluster.claim_exists("demo", "adapters") is False
    claim = {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "adapters"},
             "spec": {"accessModes": ["ReadOnlyMany"], "resources": {"requests": {"storage": "1Gi"}}}}
    async with api.post("/api/v1/namespaces/demo/persistentvolumeclaims", json=claim) as response:
        assert response.status == 201
    assert await cluster.claim_exists("demo", "adapters") is True


async def test_a_replaced_adapter_stays_as_the_fallback_the_data_plane_serves_if_the_gate_refuses_the_new_one():
    """The gate runs where the adapter's files are (the generate deployment); the operator hands it the adapter the
    TaskModel served before (TaskArgs.fallbackAdapter), so a refused new adapter leaves the old one serving."""
    models = items()
    summarize = next(m for m in models if m["metadata"]["name"] == "summarize")
    summarize["spec"] = {**summarize["spec"], "adapter": "pvc://adapters/summarize-v1"}
    cluster = FakeCluster(models)
    reconciler = Reconciler(cluster, OPTIONS)
    await reconciler.reconcile("support")
    assert "fallbackAdapter" not in tasks(cluster)["summarize"]
    summarize["spec"] = {**summarize["spec"], "adapter": "s3://switchboard-models/summarize-v2"}
    await reconciler.reconcile("support")
    args = tasks(cluster)["summarize"]
    assert (args["adapter"], args["fallbackAdapter"]) == ("s3://switchboard-models/summarize-v2", "pvc://adapters/summarize-v1")
    await reconciler.reconcile("support")  # nothing changed: the fallback is remembered, not lost
    assert tasks(cluster)["summarize"]["fallbackAdapter"] == "pvc://adapters/summarize-v1"
    pod = next(g for g in cluster.rayservice["spec"]["rayClusterConfig"]["workerGroupSpecs"] if g["groupName"] == "cpu")
    assert [v["persistentVolumeClaim"]["claimName"] for v in pod["template"]["spec"]["volumes"]] == ["adapters"]
    from serving.app import TaskArgs

    assert TaskArgs.model_validate(args).fallback_adapter == "pvc://adapters/summarize-v1"  # what the data plane reads
