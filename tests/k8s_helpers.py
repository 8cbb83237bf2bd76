"""Shared by the operator and chart tests: CRD schemas as validators, and an API-server emulator on kmock.

No Kubernetes API server can run on the test machine (see ../shared/ENVIRONMENT.md): `ApiServer` extends kmock's
in-memory emulator with what the operator relies on and kmock lacks (uid/resourceVersion/generation stamps, 201 on
create, unknown fields pruned as a structural schema prunes them, 422 for objects that fail their CRD's openAPIV3Schema, a separate /status subresource).
"""

from __future__ import annotations

import datetime
import functools
import itertools
import uuid
from pathlib import Path
from typing import Any

import aiohttp.web
import attrs
import jsonschema
import kmock
import yaml
from kmock._internal import dicts as kmock_dicts

ROOT = Path(__file__).resolve().parents[1]
CRDS = ROOT / "manifests" / "crds"
SAMPLES = ROOT / "manifests" / "samples"
KUBERAY_CRD = ROOT.parent / "shared" / "kuberay" / "ray.io_rayservices.yaml"

TP = kmock.resource("switchboard.dev", "v1alpha1", "tenantprofiles")
TM = kmock.resource("switchboard.dev", "v1alpha1", "taskmodels")
RS = kmock.resource("ray.io", "v1", "rayservices")
SECRETS = kmock.resource("", "v1", "secrets")
PVCS = kmock.resource("", "v1", "persistentvolumeclaims")


@functools.lru_cache(maxsize=8)
def crd_schema(path: Path, version: str | None = None) -> dict[str, Any]:
    """The CRD's openAPIV3Schema (cached: KubeRay's CRD is 1 MB of YAML; treat the result as read-only)."""
    if not path.exists():
        import pytest

        pytest.skip(f"{path} not found: the checkout must sit beside ../shared (KubeRay's CRD lives there)")
    crd = yaml.load(path.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    versions = crd["spec"]["versions"]
    chosen = next(v for v in versions if version is None or v["name"] == version)
    return chosen["schema"]["openAPIV3Schema"]


_VALIDATORS: dict[int, tuple[dict, jsonschema.Draft4Validator]] = {}


def validator(schema: dict[str, Any]) -> jsonschema.Draft4Validator:
    """OpenAPI v3 schemas use draft-4 bounds (boolean exclusiveMinimum); x-kubernetes-* keys are ignored."""
    if id(schema) not in _VALIDATORS:
        _VALIDATORS[id(schema)] = (schema, jsonschema.Draft4Validator(schema))
    return _VALIDATORS[id(schema)][1]


def schema_errors(schema: dict[str, Any], obj: dict[str, Any]) -> list[str]:
    return [f"{'.'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}" for e in validator(schema).iter_errors(obj)]


def prune(schema: dict[str, Any], obj: Any, *, root: bool = True) -> Any:
    """What a structural schema keeps of `obj`: unknown fields are dropped silently (metadata stays at the root),
    except under `x-kubernetes-preserve-unknown-fields` or `additionalProperties`."""
    if isinstance(obj, list):
        items = schema.get("items") or {}
        return [prune(items, v, root=False) for v in obj]
    if not isinstance(obj, dict) or schema.get("x-kubernetes-preserve-unknown-fields"):
        return obj
    props, extra = schema.get("properties") or {}, schema.get("additionalProperties")
    out = {}
    for key, value in obj.items():
        if root and key in ("apiVersion", "kind", "metadata"):
            out[key] = value
        elif key in props:
            out[key] = prune(props[key], value, root=False)
        elif isinstance(extra, dict):
            out[key] = prune(extra, value, root=False)
        elif extra is True:
            out[key] = value
    return out


def our_validators() -> dict[str, jsonschema.Draft4Validator]:
    return {
        "TenantProfile": validator(crd_schema(CRDS / "switchboard.dev_tenantprofiles.yaml")),
        "TaskModel": validator(crd_schema(CRDS / "switchboard.dev_taskmodels.yaml")),
        "RayService": validator(crd_schema(KUBERAY_CRD, "v1")),
    }


def load_samples(name: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all((SAMPLES / name).read_text()) if d]


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@attrs.define(kw_only=True)
class ApiServer(kmock.KubernetesEmulator):
    """kmock's emulator plus server-set metadata, 201 on create, pruning, 422 on schema errors, a separate /status."""

    schemas: dict[Any, jsonschema.Draft4Validator] = attrs.field(factory=dict)
    raw_schemas: dict[Any, dict] = attrs.field(factory=dict)
    # Reads of Secrets as a Role with `resourceNames` grants them: None = every Secret; a set = only these, by name
    # (get/watch of a name), no list or namespace-wide watch (403). Writes stay open: the tests write as an admin.
    secret_names: set[str] | None = None
    _versions: Any = attrs.field(factory=lambda: itertools.count(1), init=False)

    def declare(self, resource: kmock.resource, kind: str, *, status: bool, schema: dict | None = None) -> None:
        self.resources[resource] = kmock.ResourceInfo(
            kind=kind, namespaced=True, verbs={"get", "list", "watch", "create", "patch", "delete"},
            subresources={"status"} if status else set(),
        )
        if schema is not None:
            self.schemas[resource] = validator(schema)
            self.raw_schemas[resource] = schema

    async def _handle(self, request: kmock.Request) -> aiohttp.web.StreamResponse:
        if self._forbidden(request):
            return await self._render_error(kmock.KubernetesError(status=403, reason="Forbidden",
                                                                  message=f"secrets {request.name or ''} is forbidden"))
        if request.resource is not None and isinstance(request.data, dict):
            if request.action == kmock.action.CREATE:
                problem = self._stamp_create(request)
            elif request.action == kmock.action.UPDATE:
                problem = self._stamp_update(request)
            else:
                problem = None
            if problem:
                return await self._render_error(kmock.KubernetesError(status=422, reason="Invalid", message=problem))
        response = await super()._handle(request)
        if request.action == kmock.action.CREATE and response.status == 200 and not response.prepared:
            response.set_status(201)
        return response

    def _forbidden(self, request: kmock.Request) -> bool:
        if self.secret_names is None or request.resource != SECRETS:
            return False
        if request.action in (kmock.action.CREATE, kmock.action.UPDATE, kmock.action.DELETE):
            return False
        return request.action not in (kmock.action.FETCH, kmock.action.WATCH) or request.name not in self.secret_names

    def _stamp_create(self, request: kmock.Request) -> str | None:
        meta = request.data.setdefault("metadata", {})
        meta.setdefault("namespace", request.namespace)
        meta.update(uid=str(uuid.uuid4()), resourceVersion=str(next(self._versions)), generation=1, creationTimestamp=_now())
        if self._has_status(request.resource):
            request.data.pop("status", None)
        self._prune(request)
        return self._invalid(request.resource, request.data)

    def _stamp_update(self, request: kmock.Request) -> str | None:
        key = (request.resource, request.namespace, request.name)
        if key not in self.objects or self.objects[key].deleted:
            return None  # kmock answers 404
        current = self.objects[key].raw
        data = dict(request.data)
        if request.subresource == "status":
            data = {"status": data.get("status")}
        elif self._has_status(request.resource):
            data.pop("status", None)
        meta = dict(data.get("metadata") or {})
        meta["resourceVersion"] = str(next(self._versions))
        if "spec" in data and kmock_dicts.patch_dict(dict(current), {"spec": data["spec"]}).get("spec") != current.get("spec"):
            meta["generation"] = current.get("metadata", {}).get("generation", 1) + 1
        data["metadata"] = meta
        object.__setattr__(request, "data", data)
        self._prune(request)
        return self._invalid(request.resource, kmock_dicts.patch_dict(dict(current), data))

    def _prune(self, request: kmock.Request) -> None:
        """A structural schema drops unknown fields without an error (a real API server does; so must we)."""
        schema = self.raw_schemas.get(request.resource)
        if schema is not None:
            object.__setattr__(request, "data", prune(schema, request.data))

    def _has_status(self, resource: kmock.resource) -> bool:
        return resource in self.resources and "status" in self.resources[resource].subresources

    def _invalid(self, resource: kmock.resource, obj: dict[str, Any]) -> str | None:
        check = self.schemas.get(resource)
        if check is None:
            return None
        errors = [f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in check.iter_errors(obj)]
        return "; ".join(errors) or None


def declare_all(server: ApiServer) -> None:
    """Our CRDs (validated), KubeRay's RayService (validated) and core Secrets."""
    server.declare(TP, "TenantProfile", status=True, schema=crd_schema(CRDS / "switchboard.dev_tenantprofiles.yaml"))
    server.declare(TM, "TaskModel", status=True, schema=crd_schema(CRDS / "switchboard.dev_taskmodels.yaml"))
    server.declare(RS, "RayService", status=True, schema=crd_schema(KUBERAY_CRD, "v1"))
    server.declare(SECRETS, "Secret", status=False)
    server.declare(PVCS, "PersistentVolumeClaim", status=False)
