"""Pure builders: the accepted TaskModels of one namespace (+ router options) -> one KubeRay RayService dict.

The serve config runs `serving.app:build_app` with these args (what the data plane reads):

    profiles: {source: kubernetes, namespace: <ns>}     where TenantProfiles are watched
    tasks:    {<task>: {taskModel, model, modelSource, engine, dtype, maxModelLen, batching: {maxBatchSize,
               batchWaitTimeoutS}}}                      one entry per TaskModel, keyed by task name

Deployment names are `router` and the task names (`redact`, `classify-intent`, ...), as in `serving.app`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import yaml

from operators.switchboard_operator.models import API_VERSION, KIND, NodePool, TaskModelSpec, quantity_bytes
from operators.switchboard_operator.options import AcceptedModel, RouterOptions, pool_resource
from operators.switchboard_operator.raycluster import group_order, pod_labels, ray_cluster_config, worker_groups

RAY_API_VERSION = "ray.io/v1"
ACCEPTED_SPECS_ANNOTATION = "switchboard.dev/accepted-specs"
APP_NAME = "switchboard"
IMPORT_PATH = "serving.app:build_app"
# Ray Serve checks each replica this often (its default is 10 s); a dead one is replaced after the next check.
HEALTH_CHECK_PERIOD_S = 2.0


def build_rayservice(
    namespace: str, models: Iterable[AcceptedModel], options: RouterOptions, current: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The RayService; `current` (the one in the cluster) fixes the order of its worker groups (see group_order)."""
    models = sorted(models, key=lambda m: m.spec.task.value)
    return {
        "apiVersion": RAY_API_VERSION,
        "kind": "RayService",
        "metadata": _metadata(namespace, models, options),
        "spec": {
            "serviceUnhealthySecondThreshold": 900,
            "deploymentUnhealthySecondThreshold": 300,
            "serveConfigV2": yaml.safe_dump(serve_config(namespace, models, options), sort_keys=False),
            "rayClusterConfig": ray_cluster_config(models, options, group_order(current)),
            **({"serveService": serve_service(options)} if options.serve_service_name else {}),
        },
    }


def serve_service(options: RouterOptions) -> dict[str, Any]:
    """The router's stable Service, owned by KubeRay: it sets the selector to the serving cluster's pods
    (`ray.io/cluster: <active cluster>`, `ray.io/serve: "true"`) and moves it only once a new cluster is ready, so
    traffic never reaches a pending cluster. Its one port is the head container's `serve` port (8000)."""
    metadata: dict[str, Any] = {
        "name": options.serve_service_name,
        "labels": {**pod_labels(options), "app.kubernetes.io/component": "router"},
    }
    if options.serve_service_annotations:
        metadata["annotations"] = dict(options.serve_service_annotations)
    return {
        "metadata": metadata,
        "spec": {"type": options.serve_service_type, "ports": [{"name": "serve", "port": 8000, "protocol": "TCP"}]},
    }


def _metadata(namespace: str, models: list[AcceptedModel], options: RouterOptions) -> dict[str, Any]:
    accepted = {
        m.name: {
            "uid": m.uid,
            "spec": m.spec.model_dump(mode="json", by_alias=True, exclude_none=True),
            **({"fallbackAdapter": m.fallback_adapter} if m.fallback_adapter else {}),
        }
        for m in models
    }
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
        return {
            name: AcceptedModel(name, e["uid"], TaskModelSpec.model_validate(e["spec"]), e.get("fallbackAdapter"))
            for name, e in data.items()
        }
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
    args: dict[str, Any] = {
        "taskModel": model.name,
        "model": spec.model,
        "modelSource": spec.source_kind,
        "engine": spec.engine.value,
        "dtype": spec.dtype.value,
        "batching": spec.batching.model_dump(mode="json", by_alias=True),
        # The router sizes its queue for the task from these (see serving.pipeline.scheduler).
        "maxOngoingRequests": spec.max_ongoing_requests,
    }
    if spec.max_queued_requests is not None:
        args["maxQueuedRequests"] = spec.max_queued_requests
    if spec.max_model_len is not None:
        args["maxModelLen"] = spec.max_model_len
    if spec.adapter is not None:
        args["adapter"] = spec.adapter
        args["adapterSource"] = spec.adapter_kind
        if model.fallback_adapter:
            args["fallbackAdapter"] = model.fallback_adapter
    return args


def task_deployment(spec: TaskModelSpec) -> dict[str, Any]:
    """Ray Serve options of one task: autoscaling on ongoing+queued requests per replica (targetQueueDepth)."""
    deployment: dict[str, Any] = {
        "name": spec.task.value,
        "max_ongoing_requests": spec.max_ongoing_requests,
        "health_check_period_s": HEALTH_CHECK_PERIOD_S,
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
        "health_check_period_s": HEALTH_CHECK_PERIOD_S,
        "autoscaling_config": {
            "min_replicas": options.router_min_replicas,
            "max_replicas": max(options.router_max_replicas, options.router_min_replicas),
            "target_ongoing_requests": options.router_target_ongoing_requests,
        },
        "ray_actor_options": {
            "num_cpus": options.router_num_cpus,
            "resources": {pool_resource(options.router_pool): 0.001},
        },
    }


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
    "pod_labels",
    "pool_resource",
    "serve_config",
    "serve_service",
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
