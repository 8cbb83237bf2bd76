"""What KubeRay does with each change of a built RayService: in place, ignored, or a second cluster.

Faked: KubeRay itself (no cluster here). Its decision is operators/switchboard_operator/kuberay_update.py, transcribed
from rayservice_controller.go; these tests drive the real builders through the changes a user makes and check that
the cluster KubeRay leaves serving can hold what the new Serve config asks for, and that adding a pool never costs a
second cluster.
"""

from __future__ import annotations

import copy

import yaml

from operators.switchboard_operator.builders import AcceptedModel, build_rayservice
from operators.switchboard_operator.handlers import Reconciler
from operators.switchboard_operator.kuberay_update import (
    ClusterAction,
    cluster_hash,
    plan_update,
    serving_cluster_after,
)
from operators.switchboard_operator.models import TaskModelSpec
from tests.k8s_helpers import load_samples
from tests.operator.test_builders import OPTIONS, accepted, groups

NS = "support"


def changed(models: list[AcceptedModel], name: str, **spec) -> list[AcceptedModel]:
    out = []
    for m in models:
        if m.name == name:
            m = AcceptedModel(m.name, m.uid, TaskModelSpec.model_validate({**m.spec.model_dump(by_alias=True), **spec}))
        out.append(m)
    return out


def demand(rayservice: dict, pool: str, resource: str) -> float:
    """CPUs or GPUs the Serve config asks of a pool at every deployment's max_replicas."""
    app = yaml.safe_load(rayservice["spec"]["serveConfigV2"])["applications"][0]
    key = {"CPU": "num_cpus", "GPU": "num_gpus"}[resource]
    return sum(d["autoscaling_config"]["max_replicas"] * d["ray_actor_options"].get(key, 0)
               for d in app["deployments"] if f"pool:{pool}" in d["ray_actor_options"]["resources"])


def capacity(cluster: dict, pool: str, resource: str) -> float:
    group = next(g for g in cluster["workerGroupSpecs"] if g["groupName"] == pool)
    requests = group["template"]["spec"]["containers"][0]["resources"]["requests"]
    per_pod = float(requests["cpu"]) if resource == "CPU" else float(requests.get("nvidia.com/gpu", 0))
    return group["maxReplicas"] * per_pod


def test_scaling_a_task_up_fits_in_the_cluster_kubernetes_keeps_running():
    before = build_rayservice(NS, accepted("cpu.yaml"), OPTIONS)
    after = build_rayservice(NS, changed(accepted("cpu.yaml"), "summarize", replicas={"min": 1, "max": 6}), OPTIONS, before)
    plan = plan_update(before, after)
    assert plan.cluster == ClusterAction.NONE and plan.serve_config_in_place and not plan.ignored
    serving = serving_cluster_after(before["spec"]["rayClusterConfig"], before, after)
    # KubeRay left the running cluster's maxReplicas as it was: the pool's ceiling must already hold the new replicas.
    assert capacity(serving, "cpu", "CPU") >= demand(after, "cpu", "CPU") > demand(before, "cpu", "CPU")


def test_scaling_gpu_replicas_up_to_the_pool_ceiling_needs_no_new_cluster():
    models = accepted("cpu.yaml", "gpu.yaml")
    before = build_rayservice(NS, changed(models, "reply", replicas={"min": 1, "max": 1}), OPTIONS)
    after = build_rayservice(NS, models, OPTIONS, before)  # reply 1 -> 4 replicas, one GPU each
    assert plan_update(before, after).cluster == ClusterAction.NONE
    serving = serving_cluster_after(before["spec"]["rayClusterConfig"], before, after)
    assert capacity(serving, "gpu-l4", "GPU") >= min(demand(after, "gpu-l4", "GPU"), 4)


def test_a_new_pool_ceiling_is_reported_as_ignored_until_a_new_cluster():
    before = build_rayservice(NS, accepted("cpu.yaml"), OPTIONS)
    models = [changed([m], m.name, nodePool={"name": "cpu", "maxWorkers": 20})[0] for m in accepted("cpu.yaml")]
    after = build_rayservice(NS, models, OPTIONS, before)
    plan = plan_update(before, after)
    assert plan.cluster == ClusterAction.NONE
    assert plan.ignored == ("worker group 'cpu' maxReplicas 10 -> 20",)
    assert "ignored by the running cluster" in plan.summary()


def test_adding_a_pool_that_sorts_first_is_appended_and_updated_in_place():
    before = build_rayservice(NS, accepted("cpu.yaml"), OPTIONS)
    gpu = [changed([m], m.name, nodePool={**m.spec.node_pool.model_dump(by_alias=True), "name": "a100"})[0]
           for m in accepted("gpu.yaml")]
    after = build_rayservice(NS, accepted("cpu.yaml") + gpu, OPTIONS, before)
    assert list(groups(after)) == ["cpu", "a100"]  # existing group first, whatever the names' order
    plan = plan_update(before, after)
    assert plan.cluster == ClusterAction.UPDATE_IN_PLACE and plan.reasons == ("worker group 'a100' added",)
    # Sorted by name, as the builder used to, the same change would have started a second cluster.
    resorted = build_rayservice(NS, accepted("cpu.yaml") + gpu, OPTIONS)
    assert plan_update(before, resorted).cluster == ClusterAction.NEW_CLUSTER
    # In place, KubeRay copies the whole desired spec: the new group's bounds arrive with it.
    serving = serving_cluster_after(before["spec"]["rayClusterConfig"], before, after)
    assert [g["groupName"] for g in serving["workerGroupSpecs"]] == ["cpu", "a100"]


def test_a_toleration_change_rolls_a_new_cluster_and_says_why():
    models = accepted("cpu.yaml", "gpu.yaml")
    before = build_rayservice(NS, models, OPTIONS)
    tolerations = [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"},
                   {"key": "spot", "operator": "Exists", "effect": "NoSchedule"}]
    moved = []
    for m in models:
        if m.spec.node_pool.name == "gpu-l4":
            m = changed([m], m.name, nodePool={**m.spec.node_pool.model_dump(by_alias=True), "tolerations": tolerations})[0]
        moved.append(m)
    after = build_rayservice(NS, moved, OPTIONS, before)
    plan = plan_update(before, after)
    assert plan.cluster == ClusterAction.NEW_CLUSTER
    assert plan.reasons == ("worker group 'gpu-l4' template.spec.tolerations changed",)
    assert "twice the pods" in plan.summary()


def test_removing_a_pool_rolls_a_new_cluster():
    before = build_rayservice(NS, accepted("cpu.yaml", "gpu.yaml"), OPTIONS)
    after = build_rayservice(NS, accepted("cpu.yaml"), OPTIONS, before)
    plan = plan_update(before, after)
    assert plan.cluster == ClusterAction.NEW_CLUSTER and "worker groups ['cpu', 'gpu-l4'] became ['cpu']" in plan.reasons


def test_the_hash_mutes_exactly_the_autoscaler_fields():
    cluster = build_rayservice(NS, accepted("cpu.yaml"), OPTIONS)["spec"]["rayClusterConfig"]
    scaled = copy.deepcopy(cluster)
    group = scaled["workerGroupSpecs"][0]
    group.update(replicas=7, minReplicas=3, maxReplicas=9, scaleStrategy={"workersToDelete": ["pod-1"]})
    assert cluster_hash(scaled) == cluster_hash(cluster)
    group["template"]["spec"]["containers"][0]["image"] = "example.com/switchboard:2"
    assert cluster_hash(scaled) != cluster_hash(cluster)


class FakeCluster:
    """The Cluster door over one stored RayService (what the reconciler reads and writes)."""

    def __init__(self, items, rayservice=None, claims=("models", "adapters")):
        self.items, self.rayservice, self.statuses, self.claims = items, rayservice, {}, set(claims)

    async def claim_exists(self, namespace, name):
        return name in self.claims

    async def list_taskmodels(self, namespace):
        return self.items

    async def get_rayservice(self, namespace, name):
        return self.rayservice

    async def create_rayservice(self, namespace, body):
        self.rayservice = body

    async def patch_rayservice(self, namespace, name, patch):
        from kmock._internal.dicts import patch_dict

        self.rayservice = patch_dict(copy.deepcopy(self.rayservice), patch)

    async def patch_status(self, plural, namespace, name, status):
        """A merge patch of the status subresource, as the API server applies it (fields not sent stay)."""
        from kmock._internal.dicts import patch_dict

        item = next(i for i in self.items if i["metadata"]["name"] == name)
        item["status"] = self.statuses[name] = patch_dict(copy.deepcopy(item.get("status") or {}), status)


async def test_the_accepted_condition_says_what_kubernetes_will_do_with_the_change():
    items = [{**d, "metadata": {**d["metadata"], "uid": f"u-{d['metadata']['name']}", "generation": 1}}
             for d in load_samples("taskmodels/cpu.yaml") + load_samples("taskmodels/gpu.yaml")]
    cluster = FakeCluster(items)
    reconciler = Reconciler(cluster, OPTIONS)
    await reconciler.reconcile(NS)
    reply = next(i for i in items if i["metadata"]["name"] == "reply")
    reply["spec"] = {**reply["spec"], "nodePool": {**reply["spec"]["nodePool"], "nodeSelector": {"pool": "h100"}}}
    other = next(i for i in items if i["metadata"]["name"] == "score-quality")
    other["spec"] = {**other["spec"], "nodePool": reply["spec"]["nodePool"]}
    await reconciler.reconcile(NS)
    message = next(c for c in cluster.statuses["redact"]["conditions"] if c["type"] == "Accepted")["message"]
    assert message.startswith("part of RayService switchboard; last update: new Ray cluster")
    assert "worker group 'gpu-l4' template.spec.nodeSelector changed" in message
    await reconciler.reconcile(NS)  # nothing changed: the message of the last change stays
    again = next(c for c in cluster.statuses["redact"]["conditions"] if c["type"] == "Accepted")["message"]
    assert again == message
