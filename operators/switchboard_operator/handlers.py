"""Thin kopf handlers: observe, call the pure builders and status functions, write what they return."""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import logging
from typing import Any, NamedTuple

import kopf
from pydantic import ValidationError

from operators.switchboard_operator import builders
from operators.switchboard_operator import status as st
from operators.switchboard_operator.builders import AcceptedModel, RouterOptions
from operators.switchboard_operator.cluster import PROFILE_PLURAL, RAY_GROUP, RAY_PLURAL, RAY_VERSION, Cluster
from operators.switchboard_operator.kuberay_update import ClusterAction, UpdatePlan, plan_update
from operators.switchboard_operator.models import GROUP, PLURAL, VERSION, TaskModelSpec
from serving.errors import ProfileError
from serving.profiles import approximate_counter, compile_profile, parse_document
from serving.vocabulary.validation import describe

log = logging.getLogger(__name__)
MANAGED = {"app.kubernetes.io/managed-by": "switchboard-operator"}


class Reconciler:
    """Rebuilds a namespace's RayService from all its TaskModels; one namespace at a time, idempotent."""

    def __init__(self, cluster: Cluster, options: RouterOptions):
        self.cluster = cluster
        self.options = options
        self._locks: dict[str, asyncio.Lock] = collections.defaultdict(asyncio.Lock)

    async def reconcile(self, namespace: str) -> None:
        async with self._locks[namespace]:
            items = await self.cluster.list_taskmodels(namespace)
            current = await self.cluster.get_rayservice(namespace, self.options.name)
            last_good = builders.accepted_from(current)
            accepted, rejected = select(items, last_good)
            await self._check_claims(namespace, items, accepted, rejected, last_good)
            try:
                plan = await self._apply(namespace, current, list(accepted.values()))
            except kopf.PermanentError as exc:
                # The API server refused the RayService (400/403/422): say so on every TaskModel it carried.
                refused = {name: ("ApplyFailed", str(exc)) for name in accepted}
                await self._write_statuses(namespace, items, {}, {**rejected, **refused})
                raise
            await self._write_statuses(namespace, items, accepted, rejected, plan)

    async def _check_claims(
        self, namespace: str, items: list[dict], accepted: dict, rejected: dict, last_good: dict
    ) -> None:
        """A pvc:// model or adapter whose claim does not exist would leave its pool's pods Pending (and the whole
        new cluster with them): such a TaskModel is refused with the claim named; its last accepted spec keeps serving."""
        uids = {i["metadata"]["name"]: i["metadata"].get("uid", "") for i in items}
        for name, model in list(accepted.items()):
            if name in rejected:
                continue  # already refused (its last good spec is what is accepted)
            if await self._claim_missing(namespace, model.fallback_adapter):  # a fallback only helps if it mounts
                accepted[name] = model = dataclasses.replace(model, fallback_adapter=None)
            for field, ref in (("model", model.spec.model), ("adapter", model.spec.adapter)):
                if await self._claim_missing(namespace, ref):
                    claim = ref.removeprefix("pvc://").split("/", 1)[0]
                    message = f"spec.{field}: PersistentVolumeClaim {claim!r} not found in namespace {namespace!r}"
                    previous = last_good.get(name)
                    if previous is not None and previous.uid == uids.get(name):
                        accepted[name] = previous
                        message += "; the last accepted spec keeps serving"
                    else:
                        accepted.pop(name)
                    rejected[name] = (f"{field.title()}Unreachable", message)
                    break

    async def _claim_missing(self, namespace: str, ref: str | None) -> bool:
        claim = ref.removeprefix("pvc://").split("/", 1)[0] if ref and ref.startswith("pvc://") else None
        if not claim:
            return False
        return await self.cluster.claim_exists(namespace, claim) is False

    async def _apply(self, namespace: str, current: dict | None, models: list[AcceptedModel]) -> UpdatePlan | None:
        """Create, patch or delete the RayService; what KubeRay will do with the change (None: nothing changed)."""
        name = self.options.name
        if not models:
            if current is not None:
                await self.cluster.delete_rayservice(namespace, name)
            return None
        desired = builders.build_rayservice(namespace, models, self.options, current)
        if current is None:
            await self.cluster.create_rayservice(namespace, desired)
            return plan_update(None, desired)
        patch = builders.merge_patch(_managed_part(current), _managed_part(desired))
        if not patch:
            return None
        plan = plan_update(current, desired)
        if plan.cluster == ClusterAction.NEW_CLUSTER or plan.ignored:
            log.warning("RayService %s/%s: %s", namespace, name, plan.summary())
        await self.cluster.patch_rayservice(namespace, name, patch)
        return plan

    async def _write_statuses(
        self, namespace: str, items: list[dict], accepted: dict, rejected: dict, plan: UpdatePlan | None = None
    ) -> None:
        at = st.now()
        update = plan.summary() if plan is not None else None
        for item in items:
            meta, old = item["metadata"], item.get("status") or {}
            if meta["name"] in rejected:
                reason, message = rejected[meta["name"]]
                new = st.taskmodel_rejected(old, meta.get("generation"), reason, message, at)
            else:
                model = accepted.get(meta["name"])
                adapter = model.spec.adapter if model is not None else None
                new = st.taskmodel_gated(old, meta.get("generation"), self.options.name, adapter, at, update)
            if _changed(old, new):
                await self.cluster.patch_status(PLURAL, namespace, meta["name"], new)

    async def observe(self, namespace: str, rayservice_status: dict[str, Any] | None) -> None:
        """The RayService changed: copy what Serve reports about each task into its TaskModel's Ready condition."""
        async with self._locks[namespace]:  # conditions are one list: never interleave with a reconcile's writes
            await self._observe(namespace, rayservice_status)

    async def _observe(self, namespace: str, rayservice_status: dict[str, Any] | None) -> None:
        at = st.now()
        for item in await self.cluster.list_taskmodels(namespace):
            try:
                spec = TaskModelSpec.model_validate(item.get("spec") or {})
            except ValidationError:
                continue
            old = item.get("status") or {}
            new = st.taskmodel_ready(old, rayservice_status, spec.task.value, spec.replicas.min, at)
            if _changed(old, new):
                await self.cluster.patch_status(PLURAL, namespace, item["metadata"]["name"], new)


def select(items: list[dict], last_good: dict[str, AcceptedModel]) -> tuple[dict[str, AcceptedModel], dict[str, tuple]]:
    """Accepted models (an invalid one keeps its last good spec) and rejected ones with (reason, message)."""
    accepted: dict[str, AcceptedModel] = {}
    rejected: dict[str, tuple[str, str]] = {}
    for item in items:
        meta = item["metadata"]
        try:
            model = AcceptedModel(
                meta["name"], meta.get("uid", ""), TaskModelSpec.model_validate(item.get("spec") or {})
            )
            accepted[meta["name"]] = model.succeeding(last_good.get(meta["name"]))
        except ValidationError as exc:
            message = describe(exc, "spec")
            previous = last_good.get(meta["name"])
            if previous is not None and previous.uid == meta.get("uid", ""):
                accepted[meta["name"]] = previous
                message += "; the last accepted spec keeps serving"
            rejected[meta["name"]] = ("InvalidSpec", message)
    for name, reason in builders.conflicts(list(accepted.values())).items():
        accepted.pop(name)
        rejected[name] = ("Conflict", reason)
    return accepted, rejected


def _managed_part(rayservice: dict[str, Any]) -> dict[str, Any]:
    meta = rayservice.get("metadata", {})
    return {
        "metadata": {
            "labels": {k: v for k, v in (meta.get("labels") or {}).items() if k.startswith("app.kubernetes.io/")},
            "annotations": {
                k: v for k, v in (meta.get("annotations") or {}).items() if k == builders.ACCEPTED_SPECS_ANNOTATION
            },
            "ownerReferences": meta.get("ownerReferences", []),
        },
        "spec": rayservice.get("spec", {}),
    }


def _namespaced(namespace: str | None) -> str:
    """kopf types `namespace` for cluster-scoped objects too (None); every resource served here is namespaced."""
    if namespace is None:
        raise kopf.PermanentError("a cluster-scoped object: Switchboard's resources are namespaced")
    return namespace


def _changed(old: dict[str, Any], new: dict[str, Any]) -> bool:
    return any(old.get(k) != v for k, v in new.items())


# --- TenantProfile --------------------------------------------------------------------------------
class ProfileCheck(NamedTuple):
    """What the operator learnt from a TenantProfile: accepted or not, the reason (rejected) or the compiled version,
    instruction tokens per task, the message, and the default entity types its redaction leaves in clear."""

    ok: bool
    detail: str
    tokens: dict[str, int]
    message: str
    not_redacted: tuple[str, ...] = ()


async def check_profile(
    body: dict[str, Any], cluster: Cluster, key_secrets: tuple[str, ...] | None = None
) -> ProfileCheck:
    """Validate and compile a TenantProfile as the router will.

    `key_secrets`: the Secrets the router's Role lets it read (the chart's router.keySecrets); None: unrestricted."""
    try:
        doc = parse_document({k: body.get(k) for k in ("apiVersion", "kind", "metadata", "spec")}, _origin(body))
        compiled = compile_profile(doc.metadata.name, doc.spec, approximate_counter)
    except ProfileError as exc:
        return ProfileCheck(False, "InvalidSpec", {}, exc.message)
    ref = doc.spec.api_key.secret_ref
    if ref is not None and key_secrets is not None and ref.name not in key_secrets:
        return ProfileCheck(
            False,
            "SecretNotReadable",
            {},
            (
                f"spec.apiKey.secretRef: the router may read only the Secrets in "
                f"router.keySecrets ({', '.join(key_secrets) or 'none'}), not {ref.name!r}"
            ),
        )
    if ref is not None:
        found = await cluster.secret_has_key(body["metadata"]["namespace"], ref.name, ref.key)
        if not found:
            what = f"Secret {ref.name!r} not found" if found is None else f"Secret {ref.name!r} has no key {ref.key!r}"
            return ProfileCheck(False, "SecretMissing", {}, f"spec.apiKey.secretRef: {what}")
    return ProfileCheck(True, compiled.version, compiled.instruction_tokens(), "accepted", compiled.not_redacted)


def _origin(body: dict[str, Any]) -> str:
    meta = body.get("metadata", {})
    return f"tenantprofiles/{meta.get('namespace')}/{meta.get('name')}"


# --- registration -------------------------------------------------------------------------------------
def register(registry: kopf.OperatorRegistry, cluster: Cluster, options: RouterOptions) -> Reconciler:
    """Register every handler on `registry` (one per test, or kopf's default one in production)."""
    reconciler = Reconciler(cluster, options)
    tm: dict[str, Any] = dict(group=GROUP, version=VERSION, plural=PLURAL, registry=registry)
    tp: dict[str, Any] = dict(group=GROUP, version=VERSION, plural=PROFILE_PLURAL, registry=registry)

    @kopf.on.startup(registry=registry)
    def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
        # Progress and diff-base live in annotations so that status holds only what the CRD schema declares.
        settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix="switchboard.dev")
        settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(prefix="switchboard.dev")
        settings.persistence.finalizer = "switchboard.dev/operator"
        settings.scanning.disabled = True  # the served resources are fixed: no need to list CRDs or namespaces
        settings.posting.level = logging.WARNING

    @kopf.on.resume(**tm)
    @kopf.on.create(**tm)
    @kopf.on.update(**tm)
    async def taskmodel_changed(namespace: str | None, **_: Any) -> None:
        await reconciler.reconcile(_namespaced(namespace))

    # Without a finalizer (owner references do the cleanup) a deletion is seen only as a DELETED event; a MODIFIED one
    # may carry a replica's quality-gate verdict (status.qualityGate) that the Accepted condition has yet to show.
    @kopf.on.event(**tm)
    async def taskmodel_event(namespace: str | None, type: str | None, body: kopf.Body, **_: Any) -> None:
        if type == "DELETED":
            await reconciler.reconcile(_namespaced(namespace))
        elif type == "MODIFIED" and st.gate_out_of_date(body.get("status"), (body.get("spec") or {}).get("adapter")):
            await reconciler.reconcile(_namespaced(namespace))  # a replica reported its quality gate's verdict

    @kopf.on.event(RAY_GROUP, RAY_VERSION, RAY_PLURAL, labels=MANAGED, registry=registry)
    async def rayservice_changed(namespace: str | None, status: kopf.Status, type: str | None, **_: Any) -> None:
        if type in ("ADDED", "MODIFIED", None):
            await reconciler.observe(_namespaced(namespace), dict(status))

    @kopf.on.resume(**tp)
    @kopf.on.create(**tp)
    @kopf.on.update(**tp)
    async def tenantprofile_changed(
        body: kopf.Body, meta: kopf.Meta, namespace: str | None, name: str, **_: Any
    ) -> None:
        namespace = _namespaced(namespace)
        ok, detail, tokens, message, not_redacted = await check_profile(dict(body), cluster, options.key_secrets)
        old, generation, at = dict(body.get("status") or {}), meta.get("generation"), st.now()
        if ok:
            new = st.profile_accepted(old, generation, tokens, detail, at, not_redacted)
        else:
            new = st.profile_rejected(old, generation, detail, message, at)
        if _changed(old, new):
            await cluster.patch_status(PROFILE_PLURAL, namespace, name, new)
        if detail == "SecretMissing":
            raise kopf.TemporaryError(message, delay=30)

    return reconciler


__all__ = ["ProfileCheck", "Reconciler", "check_profile", "register", "select"]
