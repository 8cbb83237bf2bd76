"""Pure builders: TaskModel specs -> one KubeRay RayService. Nothing is faked: no server is involved at all.

Every built RayService is checked against KubeRay's own CRD schema (../shared/kuberay), the contract KubeRay enforces.
"""

from __future__ import annotations

import pytest
import yaml
from pydantic import ValidationError

from operators.switchboard_operator.builders import (
    AcceptedModel,
    RouterOptions,
    accepted_from,
    build_rayservice,
    conflicts,
    merge_patch,
)
from operators.switchboard_operator.models import TaskModelSpec, quantity_bytes
from tests.k8s_helpers import KUBERAY_CRD, crd_schema, load_samples, schema_errors

OPTIONS = RouterOptions(image="example.com/switchboard:1", service_account="switchboard-router",
                        env=(("OTEL_EXPORTER_OTLP_ENDPOINT", "http://otel:4317"),), serve_service_name="sb-router",
                        serve_service_annotations={"example.com/lb": "internal"}, gpu_image="example.com/switchboard:1-gpu",
                        image_pull_secrets=("regcred",), storage_secret="model-storage")


def accepted(*files: str) -> list[AcceptedModel]:
    docs = [d for f in files for d in load_samples(f"taskmodels/{f}")]
    return [AcceptedModel(d["metadata"]["name"], f"uid-{d['metadata']['name']}", TaskModelSpec.model_validate(d["spec"]))
            for d in docs]


def serve_app(rayservice: dict) -> dict:
    return yaml.safe_load(rayservice["spec"]["serveConfigV2"])["applications"][0]


def groups(rayservice: dict) -> dict[str, dict]:
    return {g["groupName"]: g for g in rayservice["spec"]["rayClusterConfig"]["workerGroupSpecs"]}


@pytest.mark.parametrize("files", [("cpu.yaml",), ("cpu.yaml", "gpu.yaml"), ("gpu.yaml",)])
def test_built_rayservice_validates_against_kuberay_crd(files):
    rayservice = build_rayservice("support", accepted(*files), OPTIONS)
    assert schema_errors(crd_schema(KUBERAY_CRD, "v1"), rayservice) == []


def test_one_worker_group_per_node_pool_with_gpu_requests_tolerations_and_selectors():
    rayservice = build_rayservice("support", accepted("cpu.yaml", "gpu.yaml"), OPTIONS)
    by_name = groups(rayservice)
    assert sorted(by_name) == ["cpu", "gpu-l4"]
    gpu_pod = by_name["gpu-l4"]["template"]["spec"]
    container = gpu_pod["containers"][0]
    assert container["resources"]["requests"]["nvidia.com/gpu"] == "1" == container["resources"]["limits"]["nvidia.com/gpu"]
    assert gpu_pod["nodeSelector"] == {"cloud.google.com/gke-accelerator": "nvidia-l4"}
    assert gpu_pod["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    assert gpu_pod["serviceAccountName"] == "switchboard-router"
    assert {"name": "OTEL_EXPORTER_OTLP_ENDPOINT", "value": "http://otel:4317"} in container["env"]
    # reply (min 1) and score-quality (min 0), one GPU each, one GPU per pod: 1..min(6 needed, maxWorkers 4).
    assert (by_name["gpu-l4"]["minReplicas"], by_name["gpu-l4"]["maxReplicas"]) == (1, 4)
    assert "nvidia.com/gpu" not in by_name["cpu"]["template"]["spec"]["containers"][0]["resources"]["requests"]
    # Single-quoted JSON, as KubeRay writes it: the shell strips the quotes and `ray start` gets valid JSON.
    assert by_name["gpu-l4"]["rayStartParams"]["resources"] == """'{"pool:gpu-l4":1000}'"""


def test_worker_pods_fit_the_largest_replica_with_memory_headroom():
    rayservice = build_rayservice("support", accepted("gpu.yaml"), OPTIONS)
    requests = groups(rayservice)["gpu-l4"]["template"]["spec"]["containers"][0]["resources"]["requests"]
    assert requests["cpu"] == "4" and quantity_bytes(requests["memory"]) >= quantity_bytes("16Gi") * 3 // 2


def test_serve_config_has_router_and_one_deployment_per_taskmodel_with_queue_depth_autoscaling():
    app = serve_app(build_rayservice("support", accepted("cpu.yaml", "gpu.yaml"), OPTIONS))
    deployments = {d["name"]: d for d in app["deployments"]}
    assert app["import_path"] == "serving.app:build_app"
    assert sorted(deployments) == ["classify-intent", "redact", "reply", "router", "score-quality", "summarize"]
    intent = deployments["classify-intent"]
    assert intent["autoscaling_config"] == {"min_replicas": 1, "initial_replicas": 1, "max_replicas": 3, "target_ongoing_requests": 32.0}
    assert intent["max_queued_requests"] == 512 and intent["max_ongoing_requests"] == 128
    assert intent["ray_actor_options"]["num_cpus"] == 0.5 and intent["ray_actor_options"]["num_gpus"] == 0
    reply = deployments["reply"]
    assert reply["ray_actor_options"]["num_gpus"] == 1 and reply["ray_actor_options"]["accelerator_type"] == "L4"
    assert reply["ray_actor_options"]["resources"] == {"pool:gpu-l4": 0.001}
    assert deployments["score-quality"]["autoscaling_config"]["min_replicas"] == 0
    assert "max_queued_requests" not in deployments["redact"]


def test_app_args_name_the_profiles_source_and_every_task():
    args = serve_app(build_rayservice("support", accepted("cpu.yaml", "gpu.yaml"), OPTIONS))["args"]
    assert args["profiles"] == {"source": "kubernetes", "namespace": "support"}
    assert args["tasks"]["summarize"] == {
        "taskModel": "summarize", "model": "HuggingFaceTB/SmolLM2-135M-Instruct", "modelSource": "hub",
        "engine": "transformers", "dtype": "bfloat16", "maxModelLen": 2048,
        "batching": {"maxBatchSize": 8, "batchWaitTimeoutS": 0.02},
        "maxOngoingRequests": 8, "maxQueuedRequests": 64, "adapter": "adapters/summarize", "adapterSource": "local",
    }
    assert args["tasks"]["reply"]["modelSource"] == "uri" and args["tasks"]["redact"]["modelSource"] == "prepared"


def test_owner_references_and_last_good_specs_round_trip():
    models = accepted("cpu.yaml")
    rayservice = build_rayservice("support", models, OPTIONS)
    assert {(o["kind"], o["name"], o["uid"]) for o in rayservice["metadata"]["ownerReferences"]} == {
        ("TaskModel", m.name, m.uid) for m in models
    }
    assert accepted_from(rayservice) == {m.name: m for m in models}
    assert accepted_from(None) == {}


def test_build_is_deterministic_so_reconciling_again_changes_nothing():
    first = build_rayservice("support", accepted("cpu.yaml", "gpu.yaml"), OPTIONS)
    second = build_rayservice("support", list(reversed(accepted("cpu.yaml", "gpu.yaml"))), OPTIONS)
    assert first == second and merge_patch(first, second) == {}


def test_merge_patch_removes_what_is_gone_and_replaces_lists():
    assert merge_patch({"a": 1, "b": {"c": 2, "d": 3}, "l": [1]}, {"b": {"c": 2}, "l": [2]}) == {"a": None, "b": {"d": None}, "l": [2]}


def test_conflicts_reject_a_second_model_for_a_task_and_a_redefined_pool():
    models = accepted("cpu.yaml", "gpu.yaml")
    spec = models[0].spec
    twin = AcceptedModel("redact-2", "uid-x", spec)
    other_pool = AcceptedModel("summarize-b", "uid-y", TaskModelSpec.model_validate(
        {**load_samples("taskmodels/gpu.yaml")[0]["spec"], "task": "summarize", "nodePool": {"name": "gpu-l4"}}))
    reasons = conflicts(models + [twin, other_pool])
    assert reasons["redact-2"] == "task 'redact' is already served by TaskModel 'redact' in this namespace"
    assert "summarize-b" in reasons


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"replicas": {"min": 3, "max": 2}}, "replicas.max (2) must be >= replicas.min (3)"),
        ({"engine": "presidio"}, "engine 'presidio' cannot serve task 'summarize'; use vllm, transformers"),
        ({"model": "ftp://x"}, "String should match pattern"),
        ({"nodePool": {"acceleratorType": "L4"}}, "nodePool.acceleratorType needs resources.gpus >= 1"),
        ({"replicas": {"min": 1, "max": 2, "mx": 3}}, "Extra inputs are not permitted"),
    ],
)
def test_invalid_specs_name_what_is_wrong(change, message):
    spec = {**load_samples("taskmodels/cpu.yaml")[2]["spec"], **change}
    with pytest.raises(ValidationError, match=message.replace("(", r"\(").replace(")", r"\)")):
        TaskModelSpec.model_validate(spec)


def test_adapter_and_pvc_refs_reach_the_data_plane_with_read_only_claims_mounted():
    base = load_samples("taskmodels/cpu.yaml")[2]["spec"]
    spec = TaskModelSpec.model_validate({**base, "model": "pvc://models/smollm2", "adapter": "pvc://adapters/sum-lora"})
    rayservice = build_rayservice("support", [AcceptedModel("summarize", "uid-s", spec)], OPTIONS)
    task = serve_app(rayservice)["args"]["tasks"][spec.task.value]
    assert (task["adapter"], task["adapterSource"]) == ("pvc://adapters/sum-lora", "uri")
    pod = groups(rayservice)[spec.node_pool.name]["template"]["spec"]
    assert [v["persistentVolumeClaim"]["claimName"] for v in pod["volumes"]] == ["adapters", "models"]
    assert {m["mountPath"] for m in pod["containers"][0]["volumeMounts"]} == {"/mnt/pvc/adapters", "/mnt/pvc/models"}
    assert schema_errors(crd_schema(KUBERAY_CRD, "v1"), rayservice) == []
    plain = serve_app(build_rayservice("support", accepted("cpu.yaml"), OPTIONS))["args"]["tasks"]
    assert plain["summarize"]["adapterSource"] == "local"  # a folder in the image (adapters/summarize)
    assert all("adapter" not in t and "adapterSource" not in t for task, t in plain.items() if task != "summarize")


def test_target_queue_depth_at_or_above_max_ongoing_is_refused():
    spec = {**load_samples("taskmodels/cpu.yaml")[2]["spec"], "targetQueueDepth": 32, "maxOngoingRequests": 32}
    with pytest.raises(ValidationError, match=r"targetQueueDepth \(32\) must be < maxOngoingRequests \(32\)"):
        TaskModelSpec.model_validate(spec)


def test_ray_pods_meet_the_restricted_pod_security_profile():
    rayservice = build_rayservice("support", accepted("cpu.yaml", "gpu.yaml"), OPTIONS)
    cluster = rayservice["spec"]["rayClusterConfig"]
    for group in [cluster["headGroupSpec"], *cluster["workerGroupSpecs"]]:
        pod = group["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        for container in pod["containers"]:
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False and context["capabilities"] == {"drop": ["ALL"]}
            assert context["seccompProfile"] == {"type": "RuntimeDefault"}


def test_serve_service_names_the_router_service_and_leaves_the_selector_to_kuberay():
    spec = build_rayservice("support", accepted("cpu.yaml"), OPTIONS)["spec"]
    assert spec["serveService"]["metadata"]["name"] == "sb-router"
    assert "selector" not in spec["serveService"]["spec"]  # KubeRay sets ray.io/cluster=<serving cluster>, ray.io/serve
    assert "serveService" not in build_rayservice("support", accepted("cpu.yaml"), RouterOptions())["spec"]


@pytest.mark.parametrize("files", [("cpu.yaml",), ("cpu.yaml", "gpu.yaml")])
def test_serve_config_is_what_ray_serve_accepts(files):
    """KubeRay sends serveConfigV2 to the head's Serve REST API, which parses it with Ray's ServeDeploySchema: a value
    it refuses (a wrong type, a negative period) fails the whole update there. (The schema lets unknown keys through,
    so the test also reads back the option it must have understood.)"""
    from ray.serve.schema import ServeDeploySchema

    config = yaml.safe_load(build_rayservice("support", accepted(*files), OPTIONS)["spec"]["serveConfigV2"])
    parsed = ServeDeploySchema.model_validate(config)
    deployments = {d.name: d for d in parsed.applications[0].deployments}
    # A dead replica is replaced after the next health check: 2 s, not Ray's default 10 s.
    assert {d.health_check_period_s for d in deployments.values()} == {2.0}


def test_every_ray_container_installs_the_proxy_replay_middleware():
    rayservice = build_rayservice("support", accepted("cpu.yaml", "gpu.yaml"), OPTIONS)
    cluster = rayservice["spec"]["rayClusterConfig"]
    pods = [cluster["headGroupSpec"]["template"]] + [g["template"] for g in cluster["workerGroupSpecs"]]
    for pod in pods:
        env = {e["name"]: e["value"] for c in pod["spec"]["containers"] for e in c.get("env", [])}
        assert env["RAY_SERVE_HTTP_PROXY_CALLBACK_IMPORT_PATH"] == "serving.deployments.proxy.middlewares"
