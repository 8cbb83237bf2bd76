"""KubeRay's `ray start` composition, transcribed from ray-operator/controllers/ray/common/pod.go (v1).

What KubeRay does with a group's rayStartParams before the container runs `/bin/bash -lc -- "<command>"`:
setMissingRayStartParams (worker `address`, `metrics-export-port`, `block`, `dashboard-agent-listen-port`, head
`dashboard-host`), generateRayStartCommand (`num-cpus` from the CPU limit or request, `memory` from the memory limit,
`num-gpus` from a GPU limit) and convertParamMap (keys sorted, "true" becomes a bare flag, "false" is dropped except
for a few options, every other value pasted unquoted as `--key=value`).
"""

from __future__ import annotations

import math
import re

_SPECIAL = ("log-color", "include-dashboard", "include-log-monitor")
_UNITS = {"": 1, "k": 10**3, "M": 10**6, "G": 10**9, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}


def _quantity(value: str) -> float:
    if value.endswith("m"):
        return int(value[:-1]) / 1000
    number, unit = re.match(r"^([0-9.]+)([A-Za-z]*)$", value).groups()
    return float(number) * _UNITS[unit]


def convert_param_map(params: dict[str, str]) -> str:
    flags = ""
    for key in sorted(params):
        value = params[key]
        if value.lower() in ("true", "false") and key not in _SPECIAL:
            flags += f" --{key} " if value.lower() == "true" else ""
        else:
            flags += f" --{key}={value} "
    return flags


def ray_start_command(group: dict, *, head: bool, head_address: str = "switchboard-head-svc:6379") -> str:
    """The `ray start ...` line KubeRay generates for a headGroupSpec (head=True) or a workerGroupSpec."""
    params = dict(group.get("rayStartParams") or {})
    if not head:
        params.setdefault("address", head_address)
    else:
        params.setdefault("dashboard-host", "0.0.0.0")
    params.setdefault("metrics-export-port", "8080")
    params["block"] = "true"
    params.setdefault("dashboard-agent-listen-port", "52365")
    resources = group["template"]["spec"]["containers"][0].get("resources") or {}
    limits, requests = resources.get("limits") or {}, resources.get("requests") or {}
    cpu = limits.get("cpu") or requests.get("cpu")
    if "num-cpus" not in params and cpu and _quantity(str(cpu)):
        params["num-cpus"] = str(math.ceil(_quantity(str(cpu))))  # resource.Quantity.Value() rounds up
    if "memory" not in params and limits.get("memory"):
        params["memory"] = str(math.ceil(_quantity(str(limits["memory"]))))
    gpus = next((v for k, v in sorted(limits.items()) if k.endswith("gpu")), None)
    if "num-gpus" not in params and gpus:
        params["num-gpus"] = str(int(gpus))
    return ("ray start --head " if head else "ray start ") + convert_param_map(params)
