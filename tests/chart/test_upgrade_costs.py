"""The README's upgrade-cost table, checked: `helm upgrade` with a changed value -> the RayService the operator builds
-> what KubeRay does with it.

Faked: KubeRay and the API server (operators/switchboard_operator/kuberay_update.py models KubeRay's decision from
its source). The chart, the operator's options and the builders are the real ones: the TaskModels and the operator's
environment are taken from `helm template` output.
"""

from __future__ import annotations

import pytest

from operators.switchboard_operator.__main__ import options_from_env
from operators.switchboard_operator.builders import AcceptedModel, build_rayservice
from operators.switchboard_operator.kuberay_update import ClusterAction, plan_update
from operators.switchboard_operator.models import TaskModelSpec
from tests.chart.conftest import render


def built(helm, *sets: str, current: dict | None = None) -> dict:
    objects = render(helm, *[a for s in sets for a in ("--set", s)])
    container = next(o for o in objects if o["kind"] == "Deployment")["spec"]["template"]["spec"]["containers"][0]
    options = options_from_env({e["name"]: e["value"] for e in container["env"] if "value" in e})
    models = [AcceptedModel(o["metadata"]["name"], f"uid-{o['metadata']['name']}", TaskModelSpec.model_validate(o["spec"]))
              for o in objects if o["kind"] == "TaskModel"]
    return build_rayservice("switchboard", models, options, current)


@pytest.mark.parametrize(("change", "cost"), [
    ("taskModels.summarize.replicas.max=5", ClusterAction.NONE),
    ("router.maxReplicas=4", ClusterAction.NONE),
    ("taskModels.reply.model=pvc://models/reply", ClusterAction.NEW_CLUSTER),  # a claim to mount
    ("taskModels.summarize.gpu=true", ClusterAction.UPDATE_IN_PLACE),  # the gpu pool appears at the end
    ("rayService.image.cpu.tag=0.2.0", ClusterAction.NEW_CLUSTER),
    ("telemetry.otel.enabled=true", ClusterAction.NEW_CLUSTER),
    ("nodePools.cpu.tolerations[0].key=spot", ClusterAction.NEW_CLUSTER),
    ("taskModels.reply.resources.cpu=4", ClusterAction.NEW_CLUSTER),  # bigger than the pool's 2-CPU pods
    ("networkPolicy.enabled=false", ClusterAction.NONE),
])
def test_each_kind_of_upgrade_costs_what_the_readme_says(helm, change, cost):
    before = built(helm)
    after = built(helm, change, current=before)
    plan = plan_update(before, after)
    assert plan.cluster == cost, plan.summary()


def test_a_pool_ceiling_change_waits_for_the_next_new_cluster(helm):
    before = built(helm)
    plan = plan_update(before, built(helm, "nodePools.cpu.maxWorkers=20", current=before))
    assert plan.cluster == ClusterAction.NONE and plan.ignored == ("worker group 'cpu' maxReplicas 10 -> 20",)


def test_a_service_change_waits_for_the_next_cluster_switch(helm):
    before = built(helm)
    plan = plan_update(before, built(helm, "router.service.type=LoadBalancer", current=before))
    assert plan.cluster == ClusterAction.NONE and plan.ignored == ("serveService",)
