"""What we build survives the API server: created over HTTP and read back unchanged, and unknown fields are dropped.

Faked: the API server (none can run here). The emulator (tests/k8s_helpers.py) prunes unknown fields as a structural
CRD schema does and answers 422 for what the schema rejects, so a field KubeRay's CRD does not know would vanish here
as it does in a cluster, and this test would see it.
"""

from __future__ import annotations

import asyncio

import pytest

from operators.switchboard_operator.builders import build_rayservice
from tests.k8s_helpers import KUBERAY_CRD, crd_schema, prune
from tests.operator.test_builders import OPTIONS, accepted

NAMESPACE = "demo"


def _custom(api_client):
    from kubernetes import client

    return client.CustomObjectsApi(api_client)


async def test_built_rayservice_round_trips_unchanged(api, api_client):
    built = build_rayservice(NAMESPACE, accepted("cpu.yaml", "gpu.yaml"), OPTIONS)
    custom = _custom(api_client)
    await asyncio.to_thread(custom.create_namespaced_custom_object, "ray.io", "v1", NAMESPACE, "rayservices", built)
    back = await asyncio.to_thread(custom.get_namespaced_custom_object, "ray.io", "v1", NAMESPACE, "rayservices",
                                   built["metadata"]["name"])
    assert back["spec"] == built["spec"]
    assert back["metadata"]["ownerReferences"] == built["metadata"]["ownerReferences"]


async def test_unknown_fields_are_pruned_and_invalid_ones_refused(api, api_client):
    from kubernetes.client.exceptions import ApiException

    built = build_rayservice(NAMESPACE, accepted("cpu.yaml"), OPTIONS)
    custom = _custom(api_client)
    odd = {**built, "spec": {**built["spec"], "notAKubeRayField": True}}
    await asyncio.to_thread(custom.create_namespaced_custom_object, "ray.io", "v1", NAMESPACE, "rayservices", odd)
    back = await asyncio.to_thread(custom.get_namespaced_custom_object, "ray.io", "v1", NAMESPACE, "rayservices",
                                   built["metadata"]["name"])
    assert "notAKubeRayField" not in back["spec"]
    wrong = {**built, "metadata": {**built["metadata"], "name": "other"},
             "spec": {**built["spec"], "serviceUnhealthySecondThreshold": "soon"}}
    with pytest.raises(ApiException) as refused:
        await asyncio.to_thread(custom.create_namespaced_custom_object, "ray.io", "v1", NAMESPACE, "rayservices", wrong)
    assert refused.value.status == 422


def test_prune_keeps_preserved_and_map_fields():
    schema = crd_schema(KUBERAY_CRD, "v1")
    built = build_rayservice(NAMESPACE, accepted("gpu.yaml"), OPTIONS)
    assert prune(schema, built) == built
