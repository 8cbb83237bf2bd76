"""Pure builders of a RayService's `rayClusterConfig`: the head group and one worker group per node pool."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from operators.switchboard_operator.models import NodePool, TaskModelSpec, quantity_bytes
from operators.switchboard_operator.options import AcceptedModel, RouterOptions, pool_resource

GIB = 2**30
PVC_ROOT = "/mnt/pvc"  # serving.models.ModelStore's default pvc_root: pvc://claim/sub -> /mnt/pvc/claim/sub
# Every node's Serve HTTP proxy replays a request whose router replica died before answering (serving.deployments.proxy;
# the operator never imports the data plane, a test keeps the two names equal).
PROXY_CALLBACK = ("RAY_SERVE_HTTP_PROXY_CALLBACK_IMPORT_PATH", "serving.deployments.proxy.middlewares")


def ray_cluster_config(
    models: list[AcceptedModel], options: RouterOptions, order: tuple[str, ...] = ()
) -> dict[str, Any]:
    return {
        "rayVersion": options.ray_version,
        "enableInTreeAutoscaling": True,
        "headGroupSpec": _head_group(options),
        "workerGroupSpecs": worker_groups(models, options, order),
    }


def _container(
    name: str,
    options: RouterOptions,
    resources: dict[str, Any],
    ports: list[dict] | None = None,
    image: str | None = None,
) -> dict:
    container: dict[str, Any] = {
        "name": name,
        "image": image or options.image,
        "resources": resources,
        "securityContext": RESTRICTED_CONTAINER,
    }
    # The model store may fetch s3:// and gs:// folders in the cluster (local mode stays offline).
    fixed = (("SWITCHBOARD_MODELS__ALLOW_NETWORK", "true"), PROXY_CALLBACK)
    container["env"] = [{"name": k, "value": v} for k, v in (*options.env, *fixed)]
    if options.storage_secret:
        container["envFrom"] = [{"secretRef": {"name": options.storage_secret}}]
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
    ports = [
        {"containerPort": 6379, "name": "gcs"},
        {"containerPort": 8265, "name": "dashboard"},
        {"containerPort": 10001, "name": "client"},
        {"containerPort": 8000, "name": "serve"},
        {"containerPort": 8080, "name": "metrics"},
    ]
    return {
        "rayStartParams": {"dashboard-host": "0.0.0.0", "num-cpus": "0"},
        "template": _pod_template(options, {"containers": [_container("ray-head", options, resources, ports)]}),
    }


def pod_labels(options: RouterOptions) -> dict[str, str]:
    """Labels of every Ray pod: the chart's router Service and NetworkPolicy select on them."""
    return {
        "app.kubernetes.io/name": "switchboard",
        "app.kubernetes.io/component": "ray",
        "switchboard.dev/rayservice": options.name,
    }


def _pod_template(options: RouterOptions, pod: dict[str, Any]) -> dict[str, Any]:
    pod = {
        "securityContext": {"runAsNonRoot": True, "fsGroup": 1000, "seccompProfile": {"type": "RuntimeDefault"}},
        **pod,
    }
    if options.image_pull_secrets:
        pod = {"imagePullSecrets": [{"name": n} for n in options.image_pull_secrets], **pod}
    if options.service_account:
        pod = {"serviceAccountName": options.service_account, **pod}
    return {"metadata": {"labels": pod_labels(options)}, "spec": pod}


@dataclass(frozen=True)
class _Pool:
    spec: NodePool
    models: tuple[TaskModelSpec, ...]
    fallbacks: tuple[str, ...] = ()  # fallback adapters of its TaskModels (pvc:// ones need their claim mounted)


def group_order(rayservice: dict[str, Any] | None) -> tuple[str, ...]:
    """Worker group names in the order the running RayService has them.

    KubeRay updates a running cluster in place only when new worker groups are appended at the END (any other change
    of the group list starts a second cluster, see kuberay_update): existing pools keep their place, new ones follow.
    """
    groups = (((rayservice or {}).get("spec") or {}).get("rayClusterConfig") or {}).get("workerGroupSpecs") or []
    return tuple(g.get("groupName") for g in groups if g.get("groupName"))


def pools(models: list[AcceptedModel], options: RouterOptions, order: tuple[str, ...] = ()) -> list[_Pool]:
    """Node pools (the first TaskModel by name defines a pool's placement); the router's pool always exists.

    Pools named in `order` come first in that order, new pools after them by name."""
    by_name: dict[str, _Pool] = {}
    for model in sorted(models, key=lambda m: m.name):
        pool = model.spec.node_pool
        current = by_name.get(pool.name, _Pool(pool, ()))
        fallback = (model.fallback_adapter,) if model.fallback_adapter else ()
        by_name[pool.name] = _Pool(current.spec, current.models + (model.spec,), current.fallbacks + fallback)
    by_name.setdefault(options.router_pool, _Pool(NodePool(name=options.router_pool), ()))
    kept = [name for name in order if name in by_name]
    return [by_name[name] for name in kept + sorted(set(by_name) - set(kept))]


def worker_groups(
    models: list[AcceptedModel], options: RouterOptions, order: tuple[str, ...] = ()
) -> list[dict[str, Any]]:
    return [_worker_group(pool, options) for pool in pools(models, options, order)]


def worker_size(pool: _Pool, options: RouterOptions) -> tuple[int, int, int]:
    """CPUs, memory bytes and GPUs of one worker pod of a pool: big enough for its largest replica."""
    cpu = max([options.worker_cpu] + [math.ceil(m.resources.cpu) for m in pool.models])
    # Ray gives actors about 70% of a pod's memory (the rest is object store): leave headroom over the largest replica.
    replica_memory = [quantity_bytes(m.resources.memory) * 3 // 2 for m in pool.models if m.resources.memory]
    memory = max([quantity_bytes(options.worker_memory)] + replica_memory)
    gpus = max([0] + [m.resources.gpus for m in pool.models])
    return cpu, memory, gpus


def worker_counts(pool: _Pool, options: RouterOptions) -> tuple[int, int]:
    """Min and max worker pods: the floor fits the replicas' minimums, the ceiling is the pool's maxWorkers.

    The ceiling does not follow the replicas' maximums: KubeRay never copies a changed maxReplicas to a running
    cluster (kuberay_update), so a ceiling sized to today's replicas.max would leave tomorrow's extra replicas Pending.
    The Ray autoscaler adds pods only for replicas Serve asks for, so an unused ceiling costs nothing."""
    cpu, _, gpus = worker_size(pool, options)
    if gpus:
        need_min = sum(m.replicas.min * m.resources.gpus for m in pool.models) / gpus
    else:
        router = options.router_num_cpus * options.router_min_replicas if pool.spec.name == options.router_pool else 0
        need_min = (sum(m.replicas.min * m.resources.cpu for m in pool.models) + router) / cpu
    ceiling = max([pool.spec.max_workers] + [m.node_pool.max_workers for m in pool.models])
    low = min(math.ceil(need_min), ceiling)
    return low, max(low, 1, ceiling)


def _worker_group(pool: _Pool, options: RouterOptions) -> dict[str, Any]:
    cpu, memory, gpus = worker_size(pool, options)
    low, high = worker_counts(pool, options)
    mem = f"{math.ceil(memory / GIB)}Gi"
    requests: dict[str, Any] = {"cpu": str(cpu), "memory": mem}
    limits: dict[str, Any] = {"memory": mem}
    if gpus:
        requests["nvidia.com/gpu"] = str(gpus)
        limits["nvidia.com/gpu"] = str(gpus)
    image = options.gpu_image if gpus and options.gpu_image else options.image
    container = _container("ray-worker", options, {"requests": requests, "limits": limits}, image=image)
    pod: dict[str, Any] = {"containers": [container]}
    claims = pvc_claims(pool.models, pool.fallbacks)
    if claims:
        container["volumeMounts"] = [
            {"name": f"pvc-{c}", "mountPath": f"{PVC_ROOT}/{c}", "readOnly": True} for c in claims
        ]
        pod["volumes"] = [
            {"name": f"pvc-{c}", "persistentVolumeClaim": {"claimName": c, "readOnly": True}} for c in claims
        ]
    if pool.spec.node_selector:
        pod["nodeSelector"] = dict(pool.spec.node_selector)
    if pool.spec.tolerations:
        pod["tolerations"] = [
            t.model_dump(mode="json", by_alias=True, exclude_none=True) for t in pool.spec.tolerations
        ]
    return {
        "groupName": pool.spec.name,
        "replicas": low,
        "minReplicas": low,
        "maxReplicas": high,
        "rayStartParams": {"resources": ray_resources_param({pool_resource(pool.spec.name): 1000})},
        "template": _pod_template(options, pod),
    }


def pvc_claims(models: Iterable[TaskModelSpec], fallbacks: Iterable[str] = ()) -> list[str]:
    """PersistentVolumeClaims that pvc:// models, adapters or fallback adapters of a pool name (mounted read-only at
    PVC_ROOT/<claim>)."""
    refs = [r for m in models for r in (m.model, m.adapter) if r and r.startswith("pvc://")]
    refs += [r for r in fallbacks if r.startswith("pvc://")]
    return sorted({r.removeprefix("pvc://").split("/", 1)[0] for r in refs})


def ray_resources_param(resources: dict[str, int]) -> str:
    """`rayStartParams.resources`, single-quoted as KubeRay itself writes it (pod.go, updateRayStartParamsResources).

    KubeRay pastes each parameter unquoted into `bash -c "ray start --resources=..."`; raw JSON would lose its double
    quotes to the shell (`--resources={pool:cpu:1000}`) and `ray start` would abort.
    """
    return "'" + json.dumps(resources, separators=(",", ":")) + "'"


__all__ = [
    "PVC_ROOT",
    "group_order",
    "pod_labels",
    "pools",
    "ray_cluster_config",
    "ray_resources_param",
    "worker_groups",
]
