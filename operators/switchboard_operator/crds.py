"""Generates the TenantProfile and TaskModel CRDs from the pydantic models, so that schema and code cannot drift."""

from __future__ import annotations

import argparse
import copy
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from operators.switchboard_operator.models import GROUP, VERSION, TaskModelSpec
from serving.profiles.model import TenantProfileSpec
from serving.vocabulary.catalog import GENERATIVE, Task

_DROP = {"title", "propertyNames", "examples"}
_SCALARS = (str, int, float, bool)

# Cross-field rules the API server checks (CEL), by JSON path inside `spec` ("" is the spec itself).
_TP_RULES = {
    "apiKey": [
        {"rule": "has(self.sha256) != has(self.secretRef)", "message": "set exactly one of sha256 or secretRef"}
    ],
    "instructions": [
        {
            "rule": "self.all(k, k in [%s])" % ", ".join(f"'{t.value}'" for t in GENERATIVE),
            "message": f"instructions apply to {[t.value for t in GENERATIVE]} only",
        }
    ],
}
_TM_RULES = {
    "replicas": [{"rule": "self.max >= self.min", "message": "replicas.max must be >= replicas.min"}],
    "": [{"rule": "self.task == oldSelf.task", "message": "task is immutable; create a new TaskModel"}],
}

_CONDITIONS = {
    "type": "array",
    "description": "Accepted (the spec is valid and in use) and Ready (what it drives is serving).",
    "x-kubernetes-list-type": "map",
    "x-kubernetes-list-map-keys": ["type"],
    "items": {
        "type": "object",
        "required": ["type", "status"],
        "properties": {
            "type": {"type": "string", "description": "Accepted or Ready."},
            "status": {"type": "string", "enum": ["True", "False", "Unknown"]},
            "reason": {"type": "string", "description": "CamelCase reason for the last transition."},
            "message": {"type": "string", "description": "Human-readable detail."},
            "lastTransitionTime": {"type": "string", "format": "date-time"},
            "observedGeneration": {"type": "integer", "format": "int64"},
        },
    },
}

_TP_STATUS = {
    "type": "object",
    "properties": {
        "conditions": _CONDITIONS,
        "observedGeneration": {"type": "integer", "format": "int64", "description": "Generation the status describes."},
        "instructionTokens": {
            "type": "object",
            "additionalProperties": {"type": "integer"},
            "description": "Compiled instruction size in tokens, per task.",
        },
        "instructionTokensTotal": {"type": "integer", "description": "Sum of instructionTokens (the TOKENS column)."},
        "version": {"type": "string", "description": "Content hash of the accepted spec (the profile version)."},
        "notRedacted": {
            "type": "array",
            "items": {"type": "string"},
            "description": "Default entity types this profile's redaction leaves in clear (empty: all are redacted).",
        },
        "message": {"type": "string", "description": "Why the spec was rejected, or `accepted`."},
    },
}

_TM_STATUS = {
    "type": "object",
    "properties": {
        "conditions": _CONDITIONS,
        "observedGeneration": {"type": "integer", "format": "int64", "description": "Generation the status describes."},
        "readyReplicas": {
            "type": "integer",
            "description": "Replicas known to serve (the floor while Serve reports HEALTHY).",
        },
        "deploymentStatus": {"type": "string", "description": "Ray Serve's status of the task's deployment."},
        "rayService": {"type": "string", "description": "The RayService (same namespace) that runs this model."},
        "qualityGate": {
            "type": "object",
            "description": "What the data plane's quality gate made of spec.adapter (written by the replica that "
            "loads it; the operator turns a refusal into Accepted=False).",
            "properties": {
                "requested": {"type": "string", "description": "The adapter or head the spec asked for."},
                "serving": {"type": "string", "description": "What serves instead: the fallback, or `base`/`none`."},
                "accepted": {"type": "boolean", "description": "Whether the requested one passed the gate and loaded."},
                "reason": {"type": "string", "description": "Why it was refused (held-out figures, paths)."},
                "reportedAt": {"type": "string", "format": "date-time"},
            },
        },
    },
}


def structural_schema(model: type[BaseModel]) -> dict[str, Any]:
    """A pydantic model's JSON schema in the form Kubernetes accepts: refs inlined, no titles, OpenAPI v3 bounds."""
    schema = model.model_json_schema(by_alias=True, mode="validation")
    defs = schema.pop("$defs", {})
    return _clean(_inline(schema, defs))


def _inline(node: Any, defs: dict[str, Any]) -> Any:
    if isinstance(node, dict):
        if "$ref" in node:
            target = copy.deepcopy(defs[node["$ref"].rsplit("/", 1)[-1]])
            extra = {k: v for k, v in node.items() if k != "$ref"}
            return _inline({**target, **extra}, defs)
        return {k: _inline(v, defs) for k, v in node.items()}
    if isinstance(node, list):
        return [_inline(v, defs) for v in node]
    return node


def _clean(node: Any) -> Any:
    if isinstance(node, list):
        return [_clean(v) for v in node]
    if not isinstance(node, dict):
        return node
    node = _unwrap_optional(node)
    out: dict[str, Any] = {}
    for key, value in node.items():
        if (
            key in _DROP
            or (key == "default" and not _scalar_default(value))
            or (key == "additionalProperties" and value is False)
        ):
            continue
        if key in ("exclusiveMinimum", "exclusiveMaximum") and not isinstance(value, bool):
            out["minimum" if key == "exclusiveMinimum" else "maximum"] = value
            out[key] = True
            continue
        out[key] = value if key in ("enum", "required", "default") else _clean(value)
    if "enum" in out and "type" not in out:
        out["type"] = "string"
    return out


def _scalar_default(value: Any) -> bool:
    return value is not None and isinstance(value, _SCALARS)


def _unwrap_optional(node: dict[str, Any]) -> dict[str, Any]:
    """`X | None` becomes X: absence means None (structural schemas forbid types inside anyOf)."""
    options = node.get("anyOf")
    if not options:
        return node
    real = [o for o in options if o.get("type") != "null"]
    if len(real) != 1:
        raise ValueError(f"cannot express union {options} in a structural schema")
    merged = {**{k: v for k, v in node.items() if k != "anyOf"}, **real[0]}
    return merged


def _with_rules(schema: dict[str, Any], rules: dict[str, list[dict[str, str]]]) -> dict[str, Any]:
    for path, rule_list in rules.items():
        target = schema
        for part in filter(None, path.split(".")):
            target = target["properties"][part]
        target["x-kubernetes-validations"] = rule_list
    return schema


def _crd(kind: str, plural: str, short: str, spec: dict, status: dict, columns: list[dict]) -> dict[str, Any]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": f"{plural}.{GROUP}",
            "labels": {"app.kubernetes.io/part-of": "switchboard"},
            # Uninstalling the CRD chart must not delete every TenantProfile and TaskModel with the CRDs.
            "annotations": {"helm.sh/resource-policy": "keep"},
        },
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": kind,
                "listKind": f"{kind}List",
                "plural": plural,
                "singular": kind.lower(),
                "shortNames": [short],
                "categories": ["switchboard"],
            },
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": columns,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "required": ["spec"],
                            "properties": {
                                "apiVersion": {"type": "string"},
                                "kind": {"type": "string"},
                                "metadata": {"type": "object"},
                                "spec": spec,
                                "status": status,
                            },
                        }
                    },
                }
            ],
        },
    }


def _column(name: str, path: str, type_: str = "string", priority: int = 0) -> dict[str, Any]:
    column = {"name": name, "type": type_, "jsonPath": path}
    return {**column, "priority": priority} if priority else column


_ACCEPTED = '.status.conditions[?(@.type=="Accepted")].status'
_READY = '.status.conditions[?(@.type=="Ready")].status'
_AGE = _column("AGE", ".metadata.creationTimestamp", "date")


def tenant_profile_crd() -> dict[str, Any]:
    spec = _with_rules(structural_schema(TenantProfileSpec), _TP_RULES)
    spec["properties"]["instructions"]["maxProperties"] = len(Task)  # bounds the CEL rule's cost
    spec["description"] = (
        "A tenant: API key reference, per-task instructions, glossary, taxonomy, rubric, redaction, limits."
    )
    columns = [
        _column("TENANT", ".spec.tenantId", priority=1),
        _column("ACCEPTED", _ACCEPTED),
        _column("TOKENS", ".status.instructionTokensTotal", "integer"),
        _AGE,
        _column("MESSAGE", ".status.message", priority=1),
    ]
    return _crd("TenantProfile", "tenantprofiles", "tp", spec, _TP_STATUS, columns)


def task_model_crd() -> dict[str, Any]:
    spec = _with_rules(structural_schema(TaskModelSpec), _TM_RULES)
    spec["description"] = "The model that serves one task in this namespace, its engine, autoscaling and node pool."
    columns = [
        _column("TASK", ".spec.task"),
        _column("ENGINE", ".spec.engine"),
        _column("MIN", ".spec.replicas.min", "integer"),
        _column("MAX", ".spec.replicas.max", "integer"),
        _column("READY", _READY),
        _column("ACCEPTED", _ACCEPTED, priority=1),
        _column("MODEL", ".spec.model", priority=1),
        _AGE,
    ]
    return _crd("TaskModel", "taskmodels", "tm", spec, _TM_STATUS, columns)


def kopf_peering_crd(cluster: bool) -> dict[str, Any]:
    """kopf's peering CRDs (kopf.dev/v1, as kopf's docs define them): the operator replicas elect the active one."""
    kind = "ClusterKopfPeering" if cluster else "KopfPeering"
    schema = {
        "type": "object",
        "properties": {"status": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}},
    }
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": f"{kind.lower()}s.kopf.dev",
            "labels": {"app.kubernetes.io/part-of": "switchboard"},
            "annotations": {"helm.sh/resource-policy": "keep"},
        },
        "spec": {
            "group": "kopf.dev",
            "scope": "Cluster" if cluster else "Namespaced",
            "names": {"kind": kind, "plural": f"{kind.lower()}s", "singular": kind.lower()},
            "versions": [{"name": "v1", "served": True, "storage": True, "schema": {"openAPIV3Schema": schema}}],
        },
    }


def all_crds() -> dict[str, dict[str, Any]]:
    """File name -> CRD, as written to manifests/crds/ and charts/switchboard-crds/templates/."""
    return {
        f"{GROUP}_tenantprofiles.yaml": tenant_profile_crd(),
        f"{GROUP}_taskmodels.yaml": task_model_crd(),
        "kopf.dev_clusterkopfpeerings.yaml": kopf_peering_crd(cluster=True),
        "kopf.dev_kopfpeerings.yaml": kopf_peering_crd(cluster=False),
    }


_HEADER = "# Generated by `python -m operators.switchboard_operator.crds`; do not edit by hand.\n"


def render(crd: dict[str, Any]) -> str:
    return _HEADER + yaml.safe_dump(crd, sort_keys=False, width=120)


def write(out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, crd in all_crds().items():
        (out / name).write_text(render(crd), encoding="utf-8")
        written.append(out / name)
    return written


DEFAULT_OUT = (Path("manifests/crds"), Path("charts/switchboard-crds/templates"))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--out",
        type=Path,
        action="append",
        help="Folder to write the CRDs to (repeatable; default: manifests/crds and the CRD chart).",
    )
    args = parser.parse_args(argv)
    for folder in args.out or DEFAULT_OUT:
        for path in write(folder):
            print(path)


if __name__ == "__main__":
    main()


__all__ = ["all_crds", "render", "structural_schema", "task_model_crd", "tenant_profile_crd", "write"]
