"""What a replica's quality gate made of its TaskModel's adapter (or score-quality head), written to the TaskModel's
`status.qualityGate` in a cluster so that the operator can say so as `Accepted=False` (operators.switchboard_operator.
status.gate_refusal). Local mode has no TaskModel: the verdict is only logged (figures and paths, no customer text).
"""

from __future__ import annotations

import datetime
import logging
from typing import Any

_log = logging.getLogger(__name__)

# The TaskModel API (operators.switchboard_operator.models holds the schema; the data plane only patches its status).
GROUP, VERSION, PLURAL = "switchboard.dev", "v1alpha1", "taskmodels"


def verdict(requested: str | None, fallback: str | None, choice: Any, base: str = "base") -> dict[str, Any] | None:
    """status.qualityGate for an AdapterChoice (serving.models.adapters), in the spec's own refs (pure): `requested`
    and `fallback` as the TaskModel names them; `base` is what serves without either (`base`, or `none` for a head).
    None when nothing was requested."""
    if not requested:
        return None
    serving = requested if choice.accepted else (fallback if choice.serving else base)
    found: dict[str, Any] = {
        "requested": requested,
        "serving": serving or base,
        "accepted": bool(choice.accepted),
        "reportedAt": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    if choice.reason:
        found["reason"] = str(choice.reason)[:1000]
    return found


def report(target: dict[str, str] | None, found: dict[str, Any] | None, api: Any = None) -> bool:
    """Merge `found` into status.qualityGate of the TaskModel `target` ({"namespace", "taskModel"}); False (and a log
    line) when there is nothing to report or the API server refuses: serving goes on either way."""
    if not target or not found:
        return False
    try:
        if api is None:
            from kubernetes import client, config

            config.load_incluster_config()  # the Ray pod's ServiceAccount (the chart grants patch on taskmodels/status)
            api = client.CustomObjectsApi()
        api.patch_namespaced_custom_object_status(
            GROUP, VERSION, target["namespace"], PLURAL, target["taskModel"], {"status": {"qualityGate": found}}
        )
        return True
    except Exception as exc:  # noqa: BLE001 - any failure to report must not stop the replica serving
        _log.warning(
            "could not report the quality gate to TaskModel %s/%s: %s",
            target.get("namespace"),
            target.get("taskModel"),
            exc,
        )
        return False
