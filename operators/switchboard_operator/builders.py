"""Pure builders: the accepted TaskModels of one namespace (+ router options) -> one KubeRay RayService dict.

The serve config runs `serving.app:build_app` with these args (what the data plane reads):

    profiles: {source: kubernetes, namespace: <ns>}     where TenantProfiles are watched
    tasks:    {<task>: {taskModel, model, modelSource, engine, dtype, maxModelLen, batching: {maxBatchSize,
               batchWaitTimeoutS}}}                      one entry per TaskModel, keyed by task name

Deployment names are `router` and the task names (`redact`, `classify-intent`, ...), as in `serving.app`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field

from operators.switchboard_operator.models import API_VERSION, KIND, NodePool, TaskModelSpec, quantity_bytes

RAY_API_VERSION = "ray.io/v1"
ACCEPTED_SPECS_ANNOTATION = "switchboard.dev/accepted-specs"
APP_NAME = "switchboard"
IMPORT_PATH = "serving.app:build_app"
GIB = 2**30
PVC_ROOT = "/mnt/pvc"  # serving.models.ModelStore's default pvc_root: pvc://claim/sub -> /mnt/pvc/claim/sub


@dataclass(frozen=True)
class AcceptedModel:
    """A TaskModel whose spec validated (now, or the last good version kept from the current RayService)."""

    name: str
    uid: str
    spec: TaskModelSpec


class RouterOptions(BaseModel):
    """Cluster-wide knobs of the RayService (from the chart's values via the operator's environment)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field("switchboard", description="RayService name (one per namespace).")
    image: str = Field("ghcr.io/switchboard/switchboard:0.1.0", description="Image of the Ray head and workers.")
    ray_version: str = Field("2.60.0", description="Ray version inside the image.")
    head_cpu: str = Field("1", description="CPU request of the head pod.")
    head_memory: str = Field("4Gi", description="Memory request and limit of the head pod.")
    worker_cpu: int = Field(2, ge=1, le=256, description="Smallest CPU size of a worker pod.")
    worker_memory: str = Field("4Gi", description="Smallest memory size of a worker pod.")
    router_pool: str = Field("cpu", description="Node pool (worker group) the router runs in.")
    router_num_cpus: float = Field(0.1, gt=0, description="CPUs per router replica.")
    router_min_replicas: int = Field(1, ge=1)
    router_max_replicas: int = Field(2, ge=1)
    router_target_ongoing_requests: float = Field(64, gt=0)
    router_max_ongoing_requests: int = Field(256, ge=1)
    service_account: str | None = Field(None, description="ServiceAccount of the Ray pods (the router watches profiles).")
    env: tuple[tuple[str, str], ...] = Field((), description="Environment of every Ray container (OTel, log level).")


def pool_resource(pool: str) -> str:
    """Ray custom resource every worker of a pool advertises; deployments ask for a sliver of it to land there."""
    return f"pool:{pool}"


def build_rayservice(namespace: str, models: Iterable[AcceptedModel], options: RouterOptions) -> dict[str, Any]:
    models = sorted(models, key=lambda m: m.spec.task.value)
    return {
        "apiVersion": RAY_API_VERSION,
        "kind": "RayService",
        "metadata": _metadata(namespace, models, options),
        "spec": {
            "serviceUnhealthySecondThreshold": 900,
            "deploymentUnhealthySecondThreshold": 300,
            "serveConfigV2": yaml.safe_dump(serve_config(namespace, models, options), sort_keys=False),
            "rayClusterConfig": {
                "rayVersion": options.ray_version,
                "enableInTreeAutoscaling": True,
                "headGroupSpec": _head_group(options),
                "workerGroupSpecs": worker_groups(models, options),
            },
        },
    }


def _metadata(namespace: str, models: list[AcceptedModel], options: RouterOptions) -> dict[str, Any]:
    accepted = {m.name: {"uid": m.uid, "spec": m.spec.model_dump(mode="json", by_alias=True, exclude_none=True)} for m in models}
    return {
        "name": options.name,
        "namespace": namespace,
        "labels": {"app.kubernetes.io/name": "switchboard", "app.kubernetes.io/managed-by": "switchboard-operator"},
        "annotations": {ACCEPTED_SPECS_ANNOTATION: json.dumps(accepted, sort_keys=True, separators=(",", ":"))},
        "ownerReferences": [owner_reference(m) for m in sorted(models, key=lambda m: m.name)],
    }


def owner_reference(model: AcceptedModel) -> dict[str, Any]:
    """Every TaskModel owns the RayService: garbage collection removes it with the last of them."""
    return {"apiVersion": API_VERSION, "kind": KIND, "name": model.name, "uid": model.uid, "blockOwnerDeletion": True}


def accepted_from(rayservice: dict[str, Any] | None) -> dict[str, AcceptedModel]:
    """The last good specs a built RayService carries (to keep them when an update is invalid)."""
    raw = ((rayservice or {}).get("metadata", {}).get("annotations") or {}).get(ACCEPTED_SPECS_ANNOTATION)
    if not raw:
        return {}
    try:
        data = json.loads(raw)
        return {name: AcceptedModel(name, e["uid"], TaskModelSpec.model_validate(e["spec"])) for name, e in data.items()}
    except (ValueError, KeyError, TypeError):
        return {}


# --- serveConfigV2 ------------------------------------------------------------------------------
def serve_config(namespace: str, models: list[AcceptedModel], options: RouterOptions) -> dict[str, Any]:
    return {
        "proxy_location": "EveryNode",
        "http_options": {"host": "0.0.0.0", "port": 8000},
        "applications": [
            {
                "name": APP_NAME,
                "route_prefix": "/",
                "import_path": IMPORT_PATH,
                "args": app_args(namespace, models),
                "deployments": [_router_deployment(options)] + [task_deployment(m.spec) for m in models],
            }
        ],
    }


def app_args(namespace: str, models: list[AcceptedModel]) -> dict[str, Any]:
    return {
        "profiles": {"source": "kubernetes", "namespace": namespace},
        "tasks": {m.spec.task.value: _task_args(m) for m in models},
    }


def _task_args(model: AcceptedModel) -> dict[str, Any]:
    spec = model.spec
    args = {
        "taskModel": model.name,
        "model": spec.model,
        "modelSource": spec.source_kind,
        "engine": spec.engine.value,
        "dtype": spec.dtype.value,
        "batching": spec.batching.model_dump(mode="json", by_alias=True),
        # The router sizes its queue for the task from these (see serving.router.scheduler).
        "maxOngoingRequests": spec.max_ongoing_requests,
    }
    if spec.max_queued_requests is not None:
        args["maxQueuedRequests"] = spec.max_queued_requests
    if spec.max_model_len is not None:
        args["maxModelLen"] = spec.max_model_len
    if spec.adapter is not None:
        args["adapter"] = spec.adapter
        args["adapterSource"] = spec.adapter_kind
    return args


def task_deployment(spec: TaskModelSpec) -> dict[str, Any]:
    """Ray Serve options of one task: autoscaling on ongoing+queued requests per replica (targetQueueDepth)."""
    deployment: dict[str, Any] = {
        "name": spec.task.value,
        "max_ongoing_requests": spec.max_ongoing_requests,
        "autoscaling_config": autoscaling_config(spec),
        "ray_actor_options": actor_options(spec),
    }
    if spec.max_queued_requests is not None:
        deployment["max_queued_requests"] = spec.max_queued_requests
    return deployment


def autoscaling_config(spec: TaskModelSpec) -> dict[str, Any]:
    return {
        "min_replicas": spec.replicas.min,
        "initial_replicas": max(spec.replicas.min, 1),
        "max_replicas": spec.replicas.max,
        "target_ongoing_requests": spec.target_queue_depth,
    }


def actor_options(spec: TaskModelSpec) -> dict[str, Any]:
    options: dict[str, Any] = {
        "num_cpus": spec.resources.cpu,
        "num_gpus": spec.resources.gpus,
        "resources": {pool_resource(spec.node_pool.name): 0.001},
    }
    if spec.resources.memory:
        options["memory"] = quantity_bytes(spec.resources.memory)
    if spec.node_pool.accelerator_type:
        options["accelerator_type"] = spec.node_pool.accelerator_type
    return options


def _router_deployment(options: RouterOptions) -> dict[str, Any]:
    return {
        "name": "router",
        "max_ongoing_requests": options.router_max_ongoing_requests,
        "autoscaling_config": {
            "min_replicas": options.router_min_replicas,
            "max_replicas": max(options.router_max_replicas, options.router_min_replicas),
            "target_ongoing_requests": options.router_target_ongoing_requests,
        },
        "ray_actor_options": {"num_cpus": options.router_num_cpus, "resources": {pool_resource(options.router_pool): 0.001}},
    }


# --- Ray cluster ------------------------------------------------------------------------------------
def _container(name: str, options: RouterOptions, resources: dict[str, Any], ports: list[dict] | None = None) -> dict:
    container: dict[str, Any] = {"name": name, "image": options.image, "resources": resources,
                                 "securityContext": RESTRICTED_CONTAINER}
    if options.env:
        container["env"] = [{"name": k, "value": v} for k, v in options.env]
    if ports:
        container["ports"] = ports
    return container


# The Pod Security "restricted" profile: the Ray image runs as uid 1000 and needs none of what it forbids.
RESTRICTED_CONTAINER: dict[str, Any] = {
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "runAsNonRoot": True,
    "seccompProfile": {"type": "RuntimeDefault"},
}


def _head_group(options: RouterOptions) -> dict[str, Any]:
    resources = {
        "requests": {"cpu": options.head_cpu, "memory": options.head_memory},
        "limits": {"memory": options.head_memory},
    }
    ports = [{"containerPort": 6379, "name": "gcs"}, {"containerPort": 8265, "name": "dashboard"},
             {"containerPort": 10001, "name": "client"}, {"containerPort": 8000, "name": "serve"},
             {"containerPort": 8080, "name": "metrics"}]
    return {
        "rayStartParams": {"dashboard-host": "0.0.0.0", "num-cpus": "0"},
        "template": _pod_template(options, {"containers": [_container("ray-head", options, resources, ports)]}),
    }


def pod_labels(options: RouterOptions) -> dict[str, str]:
    """Labels of every Ray pod: the chart's router Service and NetworkPolicy select on them."""
    return {"app.kubernetes.io/name": "switchboard", "app.kubernetes.io/component": "ray", "switchboard.dev/rayservice": options.name}


def _pod_template(options: RouterOptions, pod: dict[str, Any]) -> dict[str, Any]:
    pod = {"securityContext": {"runAsNonRoot": True, "fsGroup": 1000, "seccompProfile": {"type": "RuntimeDefault"}}, **pod}
    if options.service_account:
        pod = {"serviceAccountName": options.service_account, **pod}
    return {"metadata": {"labels": pod_labels(options)}, "spec": pod}


@dataclass(frozen=True)
class _Pool:
    spec: NodePool
    models: tuple[TaskModelSpec, ...]


def pools(models: list[AcceptedModel], options: RouterOptions) -> list[_Pool]:
    """Node pools by name (the first TaskModel by name defines a pool's placement); the router's pool always exists."""
    by_name: dict[str, _Pool] = {}
    for model in sorted(models, key=lambda m: m.name):
        pool = model.spec.node_pool
        current = by_name.get(pool.name, _Pool(pool, ()))
        by_name[pool.name] = _Pool(current.spec, current.models + (model.spec,))
    by_name.setdefault(options.router_pool, _Pool(NodePool(name=options.router_pool), ()))
    return [by_name[name] for name in sorted(by_name)]


def worker_groups(models: list[AcceptedModel], options: RouterOptions) -> list[dict[str, Any]]:
    return [_worker_group(pool, options) for pool in pools(models, options)]


def worker_size(pool: _Pool, options: RouterOptions) -> tuple[int, int, int]:
    """CPUs, memory bytes and GPUs of one worker pod of a pool: big enough for its largest replica."""
    cpu = max([options.worker_cpu] + [math.ceil(m.resources.cpu) for m in pool.models])
    # Ray gives actors about 70% of a pod's memory (the rest is object store): leave headroom over the largest replica.
    replica_memory = [quantity_bytes(m.resources.memory) * 3 // 2 for m in pool.models if m.resources.memory]
    memory = max([quantity_bytes(options.worker_memory)] + replica_memory)
    gpus = max([0] + [m.resources.gpus for m in pool.models])
    return cpu, memory, gpus


def worker_counts(pool: _Pool, options: RouterOptions) -> tuple[int, int]:
    """Min and max worker pods: enough for the replicas' floors and ceilings of the binding resource."""
    cpu, _, gpus = worker_size(pool, options)
    is_router_pool = pool.spec.name == options.router_pool
    router = (options.router_num_cpus * options.router_min_replicas, options.router_num_cpus * options.router_max_replicas)
    if gpus:
        need_min = sum(m.replicas.min * m.resources.gpus for m in pool.models) / gpus
        need_max = sum(m.replicas.max * m.resources.gpus for m in pool.models) / gpus
    else:
        need_min = (sum(m.replicas.min * m.resources.cpu for m in pool.models) + (router[0] if is_router_pool else 0)) / cpu
        need_max = (sum(m.replicas.max * m.resources.cpu for m in pool.models) + (router[1] if is_router_pool else 0)) / cpu
    ceiling = max([pool.spec.max_workers] + [m.node_pool.max_workers for m in pool.models])
    low = min(math.ceil(need_min), ceiling)
    return low, max(low, 1, min(math.ceil(need_max), ceiling))


def _worker_group(pool: _Pool, options: RouterOptions) -> dict[str, Any]:
    cpu, memory, gpus = worker_size(pool, options)
    low, high = worker_counts(pool, options)
    mem = f"{math.ceil(memory / GIB)}Gi"
    requests: dict[str, Any] = {"cpu": str(cpu), "memory": mem}
    limits: dict[str, Any] = {"memory": mem}
    if gpus:
        requests["nvidia.com/gpu"] = str(gpus)
        limits["nvidia.com/gpu"] = str(gpus)
    container = _container("ray-worker", options, {"requests": requests, "limits": limits})
    pod: dict[str, Any] = {"containers": [container]}
    claims = pvc_claims(pool.models)
    if claims:
        container["volumeMounts"] = [{"name": f"pvc-{c}", "mountPath": f"{PVC_ROOT}/{c}", "readOnly": True} for c in claims]
        pod["volumes"] = [{"name": f"pvc-{c}", "persistentVolumeClaim": {"claimName": c, "readOnly": True}} for c in claims]
    if pool.spec.node_selector:
        pod["nodeSelector"] = dict(pool.spec.node_selector)
    if pool.spec.tolerations:
        pod["tolerations"] = [t.model_dump(mode="json", by_alias=True, exclude_none=True) for t in pool.spec.tolerations]
    return {
        "groupName": pool.spec.name,
        "replicas": low,
        "minReplicas": low,
        "maxReplicas": high,
        "rayStartParams": {"resources": ray_resources_param({pool_resource(pool.spec.name): 1000})},
        "template": _pod_template(options, pod),
    }


def pvc_claims(models: Iterable[TaskModelSpec]) -> list[str]:
    """PersistentVolumeClaims that pvc:// models or adapters of a pool name (mounted read-only at PVC_ROOT/<claim>)."""
    refs = [r for m in models for r in (m.model, m.adapter) if r and r.startswith("pvc://")]
    return sorted({r.removeprefix("pvc://").split("/", 1)[0] for r in refs})


def ray_resources_param(resources: dict[str, int]) -> str:
    """`rayStartParams.resources`, single-quoted as KubeRay itself writes it (pod.go, updateRayStartParamsResources).

    KubeRay pastes each parameter unquoted into `bash -c "ray start --resources=..."`; raw JSON would lose its double
    quotes to the shell (`--resources={pool:cpu:1000}`) and `ray start` would abort.
    """
    return "'" + json.dumps(resources, separators=(",", ":")) + "'"


# --- which TaskModels can be built together -------------------------------------------------------------
def conflicts(models: list[AcceptedModel]) -> dict[str, str]:
    """TaskModels that cannot join the build (the older one, by name order, wins), with why."""
    reasons: dict[str, str] = {}
    tasks: dict[str, str] = {}
    pool_specs: dict[str, tuple[str, NodePool]] = {}
    for model in sorted(models, key=lambda m: m.name):
        task, pool = model.spec.task.value, model.spec.node_pool
        if task in tasks:
            reasons[model.name] = f"task {task!r} is already served by TaskModel {tasks[task]!r} in this namespace"
            continue
        owner = pool_specs.get(pool.name)
        if owner and _placement(owner[1]) != _placement(pool):
            reasons[model.name] = f"nodePool {pool.name!r} is defined differently by TaskModel {owner[0]!r}"
            continue
        tasks[task] = model.name
        pool_specs.setdefault(pool.name, (model.name, pool))
    return reasons


def _placement(pool: NodePool) -> tuple:
    return (sorted(pool.node_selector.items()), [t.model_dump_json() for t in pool.tolerations], pool.accelerator_type)


__all__ = [
    "ACCEPTED_SPECS_ANNOTATION",
    "AcceptedModel",
    "RouterOptions",
    "accepted_from",
    "app_args",
    "autoscaling_config",
    "build_rayservice",
    "conflicts",
    "merge_patch",
    "owner_reference",
    "serve_config",
    "task_deployment",
    "worker_groups",
]


def merge_patch(current: Any, desired: Any) -> Any:
    """RFC 7386 merge patch that turns `current` into `desired` (removed keys become null; lists are replaced)."""
    if not isinstance(current, dict) or not isinstance(desired, dict):
        return desired
    patch: dict[str, Any] = {k: None for k in current if k not in desired}
    for key, value in desired.items():
        if key not in current:
            patch[key] = value
        elif current[key] != value:
            patch[key] = merge_patch(current[key], value)
    return patch
