"""KubeRay's RayService update semantics, in one place: what a change of our RayService does to the running cluster.

Transcribed from ray-project/kuberay `ray-operator/controllers/ray/rayservice_controller.go` and
`common/service.go`: `shouldPrepareNewCluster`, `shouldUpdateCluster`, `isClusterSpecHashEqual`,
`generateHashWithoutReplicasAndWorkersToDelete`, `constructRayClusterForRayService`, `reconcileServices`,
`BuildServeService`. The chart requires KubeRay >= 1.3; the CRD the tests validate against (../shared/kuberay) is from
a later release (it has `upgradeStrategy.clusterUpgradeOptions`). What is modelled holds for every release from 1.2
on (min/max muted since 1.2, appended groups in place since 1.1) with the default upgrade strategy (NewCluster);
the incremental upgrade (NewClusterWithIncrementalUpgrade, Gateway API) is not used and not modelled.

- The RayCluster carries a hash of `spec.rayClusterConfig` with every worker group's `replicas`, `minReplicas`,
  `maxReplicas` and `scaleStrategy.workersToDelete` muted (PR #2172, KubeRay 1.2; `upgradeStrategy` muted too in newer
  releases) and the number of worker groups.
- Same hash: the running cluster is left alone. Its worker groups keep their old min/max replicas (KubeRay issue
  #4568): a change of those bounds alone is IGNORED until the next new cluster.
- Different hash, but equal once the desired spec is cut to the cluster's number of worker groups (new groups appended
  at the end): the running RayCluster is UPDATED IN PLACE with the whole desired spec (bounds of every group included;
  KubeRay also resets each group's `replicas` to the spec's, undoing the autoscaler's scale-up until it acts again).
- Otherwise (a pod template, image, resources, tolerations, a group removed or reordered): a NEW CLUSTER is started
  beside the old one (zero-downtime upgrade: twice the pods, GPUs included, until the switch).
- `serveConfigV2` is never hashed: KubeRay re-applies it IN PLACE through the dashboard to the serving cluster (or to
  the pending cluster during an upgrade).
- `serveService`: KubeRay updates the Service only when its selector must point at another cluster, so a changed name,
  type or annotations take effect with the next new cluster.
"""

from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

KUBERAY_VERSION_REQUIRED = ">=1.3"
_MUTED_GROUP_FIELDS = ("replicas", "minReplicas", "maxReplicas")


class ClusterAction(str, Enum):
    CREATE = "create"  # no cluster yet
    NONE = "none"  # hash unchanged: the running cluster stays as it is
    UPDATE_IN_PLACE = "update-in-place"  # worker groups appended: the RayCluster is updated, no pod restarts
    NEW_CLUSTER = "new-cluster"  # zero-downtime upgrade: a second cluster until the switch


@dataclass(frozen=True)
class UpdatePlan:
    """What KubeRay will do with one change of a RayService."""

    cluster: ClusterAction
    serve_config_in_place: bool = False  # serveConfigV2 changed and is applied without restarting pods
    ignored: tuple[str, ...] = ()  # desired changes the running cluster will not see
    reasons: tuple[str, ...] = field(default=())  # what differs in the hashed part (why a new cluster)

    def summary(self) -> str:
        parts = {
            ClusterAction.CREATE: "new Ray cluster",
            ClusterAction.NONE: "Ray cluster unchanged",
            ClusterAction.UPDATE_IN_PLACE: "worker groups appended in place",
            ClusterAction.NEW_CLUSTER: "new Ray cluster (zero-downtime upgrade: twice the pods until the switch)",
        }
        text = parts[self.cluster]
        if self.reasons:
            text += " because " + ", ".join(self.reasons)
        if self.serve_config_in_place:
            text += "; Serve config updated in place"
        if self.ignored:
            text += "; ignored by the running cluster until a new one: " + ", ".join(self.ignored)
        return text


def cluster_hash(cluster_spec: dict[str, Any]) -> str:
    """The hash KubeRay stores on the RayCluster (canonical JSON instead of Go's; equal specs hash equal either way)."""
    spec = copy.deepcopy(cluster_spec)
    spec.pop("upgradeStrategy", None)
    for group in spec.get("workerGroupSpecs") or []:
        for name in _MUTED_GROUP_FIELDS:
            group.pop(name, None)
        # A Go struct, never omitted: absent and {} serialize alike.
        group["scaleStrategy"] = {k: v for k, v in (group.get("scaleStrategy") or {}).items() if k != "workersToDelete"}
    return hashlib.sha256(json.dumps(spec, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def plan_update(current: dict[str, Any] | None, desired: dict[str, Any]) -> UpdatePlan:
    """KubeRay's decision for the active cluster built from `current` (no pending cluster, zero downtime enabled)."""
    if current is None:
        return UpdatePlan(ClusterAction.CREATE)
    old, new = _cluster_spec(current), _cluster_spec(desired)
    serve = (current.get("spec") or {}).get("serveConfigV2") != (desired.get("spec") or {}).get("serveConfigV2")
    old_groups, new_groups = old.get("workerGroupSpecs") or [], new.get("workerGroupSpecs") or []
    if cluster_hash(old) == cluster_hash(new):
        return UpdatePlan(
            ClusterAction.NONE, serve, _ignored_bounds(old_groups, new_groups) + _service_change(current, desired)
        )
    if len(new_groups) > len(old_groups) and cluster_hash(old) == cluster_hash(
        {**new, "workerGroupSpecs": new_groups[: len(old_groups)]}
    ):
        appended = tuple(f"worker group {g.get('groupName')!r} added" for g in new_groups[len(old_groups) :])
        return UpdatePlan(ClusterAction.UPDATE_IN_PLACE, serve, _service_change(current, desired), appended)
    return UpdatePlan(ClusterAction.NEW_CLUSTER, serve, (), _hashed_differences(old, new))


def serving_cluster_after(
    running: dict[str, Any], current: dict[str, Any] | None, desired: dict[str, Any]
) -> dict[str, Any]:
    """The `rayClusterConfig` that serves once KubeRay is done with the change (`running`: the serving RayCluster's).

    Unchanged hash: the running cluster as it was (bounds not copied). Appended groups: the desired spec copied onto
    it. New cluster: the desired spec, once the new cluster is ready and traffic switches."""
    plan = plan_update(current, desired)
    return copy.deepcopy(running if plan.cluster == ClusterAction.NONE else _cluster_spec(desired))


def _cluster_spec(rayservice: dict[str, Any]) -> dict[str, Any]:
    return (rayservice.get("spec") or {}).get("rayClusterConfig") or {}


def _ignored_bounds(old_groups: list[dict], new_groups: list[dict]) -> tuple[str, ...]:
    out = []
    for old, new in zip(old_groups, new_groups):
        for name in ("minReplicas", "maxReplicas"):
            if old.get(name) != new.get(name):
                out.append(f"worker group {new.get('groupName')!r} {name} {old.get(name)} -> {new.get(name)}")
    return tuple(out)


def _service_change(current: dict[str, Any], desired: dict[str, Any]) -> tuple[str, ...]:
    changed = (current.get("spec") or {}).get("serveService") != (desired.get("spec") or {}).get("serveService")
    return ("serveService",) if changed else ()


def _hashed_differences(old: dict[str, Any], new: dict[str, Any]) -> tuple[str, ...]:
    """Readable paths of what changed in the hashed part (the first level below each group)."""
    reasons = []
    if _muted(old.get("headGroupSpec")) != _muted(new.get("headGroupSpec")):
        reasons.append("the head group changed")
    for key in sorted((set(old) | set(new)) - {"headGroupSpec", "workerGroupSpecs", "upgradeStrategy"}):
        if old.get(key) != new.get(key):
            reasons.append(f"{key} changed")
    old_groups = [g.get("groupName") for g in old.get("workerGroupSpecs") or []]
    new_groups = [g.get("groupName") for g in new.get("workerGroupSpecs") or []]
    if new_groups[: len(old_groups)] != old_groups:
        reasons.append(f"worker groups {old_groups} became {new_groups}")
    by_name = {g.get("groupName"): g for g in old.get("workerGroupSpecs") or []}
    for group in new.get("workerGroupSpecs") or []:
        before = by_name.get(group.get("groupName"))
        if before is None:
            continue
        for key in sorted(set(_muted(before)) | set(_muted(group))):
            if _muted(before).get(key) != _muted(group).get(key):
                reasons.append(
                    f"worker group {group.get('groupName')!r} {_path(before.get(key), group.get(key), key)} changed"
                )
    return tuple(reasons) or ("the cluster spec changed",)


def _muted(group: dict[str, Any] | None) -> dict[str, Any]:
    return {k: v for k, v in (group or {}).items() if k not in _MUTED_GROUP_FIELDS and k != "scaleStrategy"}


def _path(old: Any, new: Any, prefix: str) -> str:
    """The deepest single key path under which `old` and `new` differ (prefix when several differ)."""
    while isinstance(old, dict) and isinstance(new, dict):
        keys = [k for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)]
        if len(keys) != 1:
            break
        prefix, old, new = f"{prefix}.{keys[0]}", old.get(keys[0]), new.get(keys[0])
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new) == 1:
        return _path(old[0], new[0], f"{prefix}[0]")
    return prefix


__all__ = [
    "KUBERAY_VERSION_REQUIRED",
    "ClusterAction",
    "UpdatePlan",
    "cluster_hash",
    "plan_update",
    "serving_cluster_after",
]
