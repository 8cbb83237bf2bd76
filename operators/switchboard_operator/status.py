"""Pure functions from what was observed (validation results, RayService status) to status patches and conditions."""

from __future__ import annotations

import datetime
from collections.abc import Mapping, Sequence
from typing import Any

from operators.switchboard_operator.builders import APP_NAME

ACCEPTED = "Accepted"
READY = "Ready"
QUALITY_GATE_REFUSED = "QualityGateRefused"


def now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def condition(
    type_: str, ok: bool | None, reason: str, message: str, generation: int | None, at: str
) -> dict[str, Any]:
    status = "Unknown" if ok is None else ("True" if ok else "False")
    cond: dict[str, Any] = {
        "type": type_,
        "status": status,
        "reason": reason,
        "message": message[:1000],
        "lastTransitionTime": at,
    }
    if generation is not None:
        cond["observedGeneration"] = generation
    return cond


def set_condition(conditions: list[Mapping[str, Any]] | None, new: dict[str, Any]) -> list[dict[str, Any]]:
    """Replace the condition of the same type; keep its lastTransitionTime when its status did not change."""
    out, replaced = [], False
    for old in conditions or []:
        if old.get("type") == new["type"]:
            same = old.get("status") == new["status"]
            out.append(
                {**new, "lastTransitionTime": old.get("lastTransitionTime", new["lastTransitionTime"])} if same else new
            )
            replaced = True
        else:
            out.append(dict(old))
    return out if replaced else out + [new]


def get_condition(status: Mapping[str, Any] | None, type_: str) -> dict[str, Any] | None:
    return next((c for c in (status or {}).get("conditions", []) if c.get("type") == type_), None)


# --- TaskModel ------------------------------------------------------------------------------------
def taskmodel_accepted(
    status: Mapping | None, generation: int | None, rayservice: str, at: str, update: str | None = None
) -> dict[str, Any]:
    """Accepted; `update` says what KubeRay does with the change just applied (kept until the next change)."""
    message = f"part of RayService {rayservice}"
    previous = get_condition(status, ACCEPTED)
    if update is not None:
        message += f"; last update: {update}"
    elif previous and previous.get("reason") == "Built" and str(previous.get("message", "")).startswith(message + ";"):
        message = previous["message"]
    cond = condition(ACCEPTED, True, "Built", message, generation, at)
    return {
        "conditions": set_condition((status or {}).get("conditions"), cond),
        "observedGeneration": generation,
        "rayService": rayservice,
    }


def taskmodel_rejected(
    status: Mapping | None, generation: int | None, reason: str, message: str, at: str
) -> dict[str, Any]:
    cond = condition(ACCEPTED, False, reason, message, generation, at)
    return {"conditions": set_condition((status or {}).get("conditions"), cond), "observedGeneration": generation}


def gate_refusal(status: Mapping | None, adapter: str | None) -> str | None:
    """Why the data plane's quality gate refused `adapter` (the spec's adapter or head), from the verdict its replica
    wrote to status.qualityGate; None when it accepted it, has not reported, or reported on another adapter."""
    gate = (status or {}).get("qualityGate") or {}
    if not adapter or gate.get("requested") != adapter or gate.get("accepted", True):
        return None
    serving = gate.get("serving") or "base"
    what = {"base": "the base model serves", "none": "nothing serves the task"}.get(serving, f"{serving} keeps serving")
    return f"spec.adapter: {gate.get('reason') or 'refused by the quality gate'}; {what}"


def taskmodel_gated(
    status: Mapping | None,
    generation: int | None,
    rayservice: str,
    adapter: str | None,
    at: str,
    update: str | None = None,
) -> dict[str, Any]:
    """`taskmodel_accepted`, unless the quality gate refused the adapter: then Accepted=False, QualityGateRefused."""
    refusal = gate_refusal(status, adapter)
    if refusal is None:
        return taskmodel_accepted(status, generation, rayservice, at, update)
    return {**taskmodel_rejected(status, generation, QUALITY_GATE_REFUSED, refusal, at), "rayService": rayservice}


def gate_out_of_date(status: Mapping | None, adapter: str | None) -> bool:
    """Whether the Accepted condition has yet to follow the latest quality-gate verdict (a refusal it does not show,
    or a refusal it shows that the verdict no longer makes)."""
    refusal, accepted = gate_refusal(status, adapter), get_condition(status, ACCEPTED) or {}
    shown = accepted.get("reason") == QUALITY_GATE_REFUSED
    return (refusal is not None and (not shown or accepted.get("message") != refusal[:1000])) or (
        refusal is None and shown
    )


def deployment_status(rayservice_status: Mapping[str, Any] | None, task: str) -> tuple[str | None, str]:
    """Ray Serve's status of one task's deployment in the active cluster, and its message."""
    apps = ((rayservice_status or {}).get("activeServiceStatus") or {}).get("applicationStatuses") or {}
    deployments = (apps.get(APP_NAME) or {}).get("serveDeploymentStatuses") or {}
    entry = deployments.get(task) or {}
    return entry.get("status"), entry.get("message", "")


def taskmodel_ready(
    status: Mapping | None, rayservice_status: Mapping | None, task: str, min_replicas: int, at: str
) -> dict[str, Any]:
    """Ready from the RayService: True when Serve reports the task HEALTHY, Unknown before it reports anything."""
    state, message = deployment_status(rayservice_status, task)
    if state is None:
        cond = condition(READY, None, "Pending", "the RayService reports no status for this deployment yet", None, at)
    else:
        healthy = state == "HEALTHY"
        cond = condition(READY, healthy, state.title().replace("_", ""), message or f"deployment {state}", None, at)
    ready = min_replicas if state == "HEALTHY" else 0
    return {
        "conditions": set_condition((status or {}).get("conditions"), cond),
        "readyReplicas": ready,
        "deploymentStatus": state or "Unknown",
    }


# --- TenantProfile --------------------------------------------------------------------------------
def profile_accepted(
    status: Mapping | None,
    generation: int | None,
    tokens: dict[str, int],
    version: str,
    at: str,
    not_redacted: Sequence[str] = (),
) -> dict[str, Any]:
    """Accepted: tokens, version, and `notRedacted`, the default entity types the profile's redaction leaves in clear
    (the same list as the router's GET /v1/tenants/{id}); empty when the complete default set is redacted."""
    cond = condition(ACCEPTED, True, "Compiled", f"profile version {version}", generation, at)
    return {
        "conditions": set_condition((status or {}).get("conditions"), cond),
        "observedGeneration": generation,
        "instructionTokens": dict(tokens),
        "instructionTokensTotal": sum(tokens.values()),
        "version": version,
        "notRedacted": list(not_redacted),
        "message": "accepted",
    }


def profile_rejected(
    status: Mapping | None, generation: int | None, reason: str, message: str, at: str
) -> dict[str, Any]:
    """Rejected: the message says why; tokens and version stay those of the last accepted spec."""
    cond = condition(ACCEPTED, False, reason, message, generation, at)
    return {
        "conditions": set_condition((status or {}).get("conditions"), cond),
        "observedGeneration": generation,
        "message": message[:1000],
    }


__all__ = [
    "ACCEPTED",
    "READY",
    "condition",
    "deployment_status",
    "gate_out_of_date",
    "gate_refusal",
    "get_condition",
    "profile_accepted",
    "profile_rejected",
    "set_condition",
    "taskmodel_accepted",
    "taskmodel_gated",
    "taskmodel_ready",
    "taskmodel_rejected",
]
