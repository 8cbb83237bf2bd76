"""The Helm charts, rendered by the real helm binary and validated offline.

Faked: nothing is installed (no cluster here). Built-in kinds are validated with kubernetes-validate (the
Kubernetes 1.37 OpenAPI schemas, offline); TaskModels with jsonschema against our CRD and the operator's pydantic model.
`helm test` itself (the /readyz pod) runs in the e2e suite on a real cluster.
"""

from __future__ import annotations

import kubernetes_validate
import pytest

from operators.switchboard_operator.models import TaskModelSpec
from tests.chart.conftest import (
    CHART,
    CLUSTERWIDE_VALUES,
    CRD_CHART,
    GPU_VALUES,
    MINIMAL_VALUES,
    VALUE_SETS,
    render,
    run_helm,
)
from tests.k8s_helpers import CRDS, crd_schema, schema_errors

K8S_VERSION = "1.37.0"
CUSTOM = {"TaskModel", "TenantProfile", "ServiceMonitor", "CustomResourceDefinition", "KopfPeering", "ClusterKopfPeering"}


def by_kind(objects: list[dict], kind: str) -> list[dict]:
    return [o for o in objects if o["kind"] == kind]


@pytest.mark.parametrize("args", [[str(CHART)], [str(CHART), "-f", str(GPU_VALUES)], [str(CHART), "-f", str(MINIMAL_VALUES)],
                                  [str(CHART), "-f", str(CLUSTERWIDE_VALUES)], [str(CRD_CHART)]],
                         ids=["default", "gpu", "minimal", "clusterwide", "crds"])
def test_lint_strict(helm, args):
    result = run_helm(helm, "lint", "--strict", *args)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("k8s_version", ["1.29.0", "1.30.0", "1.31.0", "1.32.0", "1.33.0", K8S_VERSION])
@pytest.mark.parametrize("values", list(VALUE_SETS))
def test_rendered_builtin_kinds_validate(values, k8s_version, rendered):
    """Against the OpenAPI schemas of every Kubernetes version the chart supports (kubeVersion >= 1.29)."""
    builtins = [o for o in rendered[values] if o["kind"] not in CUSTOM]
    assert {"Deployment", "ServiceAccount", "Service", "Pod"} <= {o["kind"] for o in builtins}
    for obj in builtins:
        kubernetes_validate.validate(obj, k8s_version, strict=True)


def test_value_sets_differ_where_they_should(rendered):
    kinds = {name: {o["kind"] for o in objects} for name, objects in rendered.items()}
    assert {"NetworkPolicy", "PodDisruptionBudget", "KopfPeering", "Role"} <= kinds["default"]
    assert not {"NetworkPolicy", "PodDisruptionBudget", "KopfPeering"} & kinds["minimal"]
    assert [tm["spec"]["task"] for tm in by_kind(rendered["minimal"], "TaskModel")] == ["redact"]
    assert {"ClusterRole", "ClusterKopfPeering"} <= kinds["clusterwide"] and "Role" not in kinds["clusterwide"]


@pytest.mark.parametrize("values", ["default", "gpu"])
def test_rendered_taskmodels_validate_against_the_crd_and_the_operator_model(values, default_objects, gpu_objects):
    objects = default_objects if values == "default" else gpu_objects
    schema = crd_schema(CRDS / "switchboard.dev_taskmodels.yaml")
    for tm in by_kind(objects, "TaskModel"):
        assert schema_errors(schema, tm) == [], tm["metadata"]["name"]
        TaskModelSpec.model_validate(tm["spec"])


def test_default_taskmodels_cover_the_five_tasks_on_cpu(default_objects):
    tms = {tm["spec"]["task"]: tm["spec"] for tm in by_kind(default_objects, "TaskModel")}
    assert sorted(tms) == ["classify-intent", "redact", "reply", "score-quality", "summarize"]
    assert all(spec["nodePool"]["name"] == "cpu" and "gpus" not in spec["resources"] for spec in tms.values())


def test_gpu_values_place_generative_tasks_in_the_gpu_pool(gpu_objects):
    tms = {tm["spec"]["task"]: tm["spec"] for tm in by_kind(gpu_objects, "TaskModel")}
    assert "reply" not in tms  # toggled off
    summarize = tms["summarize"]
    assert summarize["engine"] == "vllm" and summarize["resources"]["gpus"] == 1
    assert summarize["nodePool"]["name"] == "gpu-l4" and summarize["nodePool"]["acceleratorType"] == "L4"
    assert summarize["nodePool"]["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    assert tms["redact"]["nodePool"] == {"name": "cpu", "nodeSelector": {"switchboard.dev/pool": "cpu"}, "maxWorkers": 10}
    env = {e["name"]: e.get("value") for e in by_kind(gpu_objects, "Deployment")[0]["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["SWITCHBOARD_OPERATOR_RAY_ENV_SWITCHBOARD_TRACING__ENDPOINT"].startswith("http://")
    assert env["SWITCHBOARD_OPERATOR_RAY_ENV_SWITCHBOARD_TRACING__ENABLED"] == "true"
    assert by_kind(gpu_objects, "ServiceMonitor")[0]["metadata"]["labels"]["release"] == "kube-prometheus-stack"


def test_rbac_is_least_privilege(default_objects, gpu_objects):
    for objects in (default_objects, gpu_objects):
        assert not by_kind(objects, "ClusterRole")  # namespaced unless watchNamespaces is ["*"]
        for role in by_kind(objects, "Role"):
            for rule in role["rules"]:
                assert "*" not in rule["verbs"] and "*" not in rule["resources"], role["metadata"]["name"]
                if "secrets" in rule["resources"]:
                    assert role["metadata"]["name"].endswith("-operator") and rule["verbs"] == ["get"]
                    assert not rule.get("resourceNames")  # it checks whichever Secret a TenantProfile names
        router = [r for r in by_kind(objects, "Role") if r["metadata"]["name"].endswith("-router")]
        assert router and all("secrets" not in rule["resources"] for r in router for rule in r["rules"])
    namespaces = {r["metadata"]["namespace"] for r in by_kind(gpu_objects, "Role")}
    assert namespaces == {"switchboard", "support-bots"}


def test_router_reads_only_the_key_secrets_the_values_name(helm):
    objects = render(helm, "--set", "router.keySecrets={shopright-key,northbank-key}")
    router = next(r for r in by_kind(objects, "Role") if r["metadata"]["name"] == "sb-switchboard-router")
    assert operator_env(objects)["SWITCHBOARD_OPERATOR_KEY_SECRETS"] == "shopright-key,northbank-key"  # same list
    secrets = [rule for rule in router["rules"] if "secrets" in rule["resources"]]
    assert secrets == [{"apiGroups": [""], "resources": ["secrets"], "resourceNames": ["shopright-key", "northbank-key"],
                        "verbs": ["get", "watch"]}]


def test_operator_may_set_block_owner_deletion_on_taskmodels(default_objects):
    """OwnerReferencesPermissionEnforcement: an ownerReference with blockOwnerDeletion needs update on the owner's
    finalizers subresource, or the RayService create is refused with 403 (OpenShift)."""
    operator = next(r for r in by_kind(default_objects, "Role") if r["metadata"]["name"].endswith("-operator"))
    assert any("taskmodels/finalizers" in rule["resources"] and "update" in rule["verbs"] for rule in operator["rules"])


def test_clusterwide_mode_uses_a_cluster_role(helm):
    objects = render(helm, "--set", "operator.watchNamespaces={*}")
    assert [r["metadata"]["name"] for r in by_kind(objects, "ClusterRole")] == ["sb-switchboard-operator"]
    args = by_kind(objects, "Deployment")[0]["spec"]["template"]["spec"]["containers"][0]["args"]
    assert not [a for a in args if a.startswith("--namespace")]


def test_helm_test_pod_calls_readyz(default_objects):
    pod = by_kind(default_objects, "Pod")[0]
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    assert pod["spec"]["containers"][0]["command"][-1] == "http://sb-switchboard-router:8000/readyz"


def operator_env(objects: list[dict]) -> dict[str, str]:
    container = by_kind(objects, "Deployment")[0]["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e.get("value") for e in container["env"]}


def test_router_service_is_the_rayservice_serve_service_that_kuberay_points_at_the_serving_cluster(helm):
    """No chart Service selects Ray pods for the API (it would reach a pending cluster): the operator gets the name,
    type and annotations and writes spec.serveService, whose selector KubeRay sets itself."""
    import json

    from operators.switchboard_operator.__main__ import options_from_env
    from operators.switchboard_operator.builders import build_rayservice
    from tests.operator.test_builders import accepted

    objects = render(helm, "--set", "router.service.type=LoadBalancer",
                     "--set", "router.service.annotations.networking\\.gke\\.io/load-balancer-type=Internal")
    assert [s["metadata"]["name"] for s in by_kind(objects, "Service")] == ["sb-switchboard-metrics"]
    env = operator_env(objects)
    assert json.loads(env["SWITCHBOARD_OPERATOR_SERVE_SERVICE_ANNOTATIONS"]) == {"networking.gke.io/load-balancer-type": "Internal"}
    built = build_rayservice("switchboard", accepted("cpu.yaml"), options_from_env(env))
    service = built["spec"]["serveService"]
    assert service["metadata"]["name"] == "sb-switchboard-router" and "selector" not in service["spec"]
    assert service["spec"]["type"] == "LoadBalancer" and service["spec"]["ports"] == [{"name": "serve", "port": 8000, "protocol": "TCP"}]
    assert service["metadata"]["annotations"] == {"networking.gke.io/load-balancer-type": "Internal"}
    test_pod = by_kind(objects, "Pod")[0]
    assert test_pod["spec"]["containers"][0]["command"][-1] == "http://sb-switchboard-router:8000/readyz"


def test_metrics_service_and_monitor_cover_every_ray_pod(gpu_objects):
    from operators.switchboard_operator.builders import RouterOptions, pod_labels

    metrics = by_kind(gpu_objects, "Service")[0]
    assert metrics["spec"]["selector"] == pod_labels(RouterOptions())
    monitor = by_kind(gpu_objects, "ServiceMonitor")[0]
    assert monitor["spec"]["selector"]["matchLabels"].items() <= metrics["metadata"]["labels"].items()


@pytest.mark.parametrize("override", ["taskModels.redact.engine=onnx", "taskModels.reply.replicas.min=-1",
                                      "router.service.type=Ingress", "operator.watchNamespaces={Bad_NS}"])
def test_values_schema_refuses_bad_values(helm, override):
    result = run_helm(helm, "template", "sb", str(CHART), "--set", override)
    assert result.returncode != 0 and "values don't meet the specifications of the schema" in result.stderr


def test_crd_chart_renders_the_generated_crds(helm):
    objects = render(helm, chart=CRD_CHART)
    assert sorted(o["metadata"]["name"] for o in objects) == [
        "clusterkopfpeerings.kopf.dev", "kopfpeerings.kopf.dev", "taskmodels.switchboard.dev", "tenantprofiles.switchboard.dev"]
    assert all(o["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep" for o in objects)


def test_grafana_dashboard_ships_and_queries_metrics_the_router_exports(helm):
    """The dashboard ConfigMap renders, its JSON parses, and every switchboard_* series it queries exists."""
    import json
    import re

    from serving.telemetry.metrics import RouterMetrics
    from tests.chart.conftest import render

    objects = render(helm, "--set", "telemetry.grafana.dashboard=true")
    config_map = next(o for o in by_kind(objects, "ConfigMap") if o["metadata"]["name"].endswith("-dashboard"))
    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    dashboard = json.loads(config_map["data"]["switchboard.json"])
    queried = {m for p in dashboard["panels"] for t in p["targets"] for m in re.findall(r"switchboard_\w+", t["expr"])}
    suffixes = {"counter": ["_total"], "histogram": ["_bucket", "_sum", "_count"], "gauge": [""]}
    exported = {family.name + suffix for family in RouterMetrics().registry.collect() for suffix in suffixes[family.type]}
    assert queried and queried <= exported, queried - exported


def test_operator_runs_two_replicas_that_elect_one_through_kopf_peering(default_objects, gpu_objects, helm):
    deployment = by_kind(default_objects, "Deployment")[0]
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert deployment["spec"]["replicas"] == 2 and "--peering=sb-switchboard-operator" in container["args"]
    assert {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}} in container["env"]
    assert [(p["metadata"]["namespace"], p["metadata"]["name"]) for p in by_kind(default_objects, "KopfPeering")] == [
        ("switchboard", "sb-switchboard-operator")]
    assert {p["metadata"]["namespace"] for p in by_kind(gpu_objects, "KopfPeering")} == {"switchboard", "support-bots"}
    operator_role = next(r for r in by_kind(default_objects, "Role") if r["metadata"]["name"].endswith("-operator"))
    assert any(rule["resources"] == ["kopfpeerings"] and "patch" in rule["verbs"] for rule in operator_role["rules"])
    pdbs = {p["metadata"]["name"] for p in by_kind(default_objects, "PodDisruptionBudget")}
    assert "sb-switchboard-operator" in pdbs
    clusterwide = render(helm, "--set", "operator.watchNamespaces={*}")
    assert [p["metadata"]["name"] for p in by_kind(clusterwide, "ClusterKopfPeering")] == ["sb-switchboard-operator"]
    single = render(helm, "--set", "operator.peering.enabled=false")
    spec = by_kind(single, "Deployment")[0]["spec"]
    assert spec["replicas"] == 1 and spec["strategy"] == {"type": "Recreate"}
    assert not by_kind(single, "KopfPeering") and "sb-switchboard-operator" not in {
        p["metadata"]["name"] for p in by_kind(single, "PodDisruptionBudget")}


def test_ray_images_per_pool_kind_pinned_by_digest_with_pull_secrets(helm):
    from operators.switchboard_operator.__main__ import options_from_env
    from operators.switchboard_operator.builders import build_rayservice
    from tests.operator.test_builders import accepted, groups

    digest = "sha256:" + "a" * 64
    objects = render(helm, "--set", f"rayService.image.gpu.digest={digest}", "--set", "rayService.imagePullSecrets={regcred}",
                     "--set", f"operator.image.digest={digest}")
    env = operator_env(objects)
    assert env["SWITCHBOARD_OPERATOR_IMAGE"] == "ghcr.io/switchboard/switchboard:0.1.0"
    assert env["SWITCHBOARD_OPERATOR_GPU_IMAGE"] == f"ghcr.io/switchboard/switchboard@{digest}"
    assert by_kind(objects, "Deployment")[0]["spec"]["template"]["spec"]["containers"][0]["image"].endswith(digest)
    built = groups(build_rayservice("switchboard", accepted("cpu.yaml", "gpu.yaml"), options_from_env(env)))
    image = {name: g["template"]["spec"]["containers"][0]["image"] for name, g in built.items()}
    assert image == {"cpu": "ghcr.io/switchboard/switchboard:0.1.0", "gpu-l4": f"ghcr.io/switchboard/switchboard@{digest}"}
    assert all(g["template"]["spec"]["imagePullSecrets"] == [{"name": "regcred"}] for g in built.values())
    assert render(helm)[0] and operator_env(render(helm))["SWITCHBOARD_OPERATOR_GPU_IMAGE"].endswith(":0.1.0-gpu")
