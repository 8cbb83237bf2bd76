"""The last good compiled profile of every tenant, and the status of every profile a source delivered."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from serving.errors import NotFound, ProfileError, Unauthenticated
from serving.profiles.compiler import CompiledProfile, TokenCounter, compile_profile
from serving.profiles.model import TenantProfileDocument, TenantProfileSpec, hash_api_key

log = logging.getLogger(__name__)

KeyResolver = Callable[[str, TenantProfileSpec], str]
"""Returns the hex SHA-256 of a tenant's API key (from the spec, or a Secret the resolver reads)."""


def spec_key_hash(origin: str, spec: TenantProfileSpec) -> str:
    """Local mode: the key hash is written in the profile itself."""
    if spec.api_key.sha256 is None:
        raise ProfileError(
            f"{origin}: spec.apiKey.secretRef needs the Kubernetes profile source; use spec.apiKey.sha256 locally",
            field="spec.apiKey",
        )
    return spec.api_key.sha256


@dataclass(frozen=True)
class ProfileStatus:
    """What `/v1/tenants/{id}` and the TenantProfile status report."""

    tenant_id: str
    origin: str
    accepted: bool
    message: str
    serving_version: str | None
    instruction_tokens: dict[str, int] = field(default_factory=dict)
    updated_at: float = field(default_factory=time.time)


@dataclass(frozen=True)
class _Entry:
    profile: CompiledProfile
    key_hash: str
    origin: str


class ProfileRegistry:
    """Validated, compiled profiles by tenant; a rejected update never replaces the last good version."""

    def __init__(self, count_tokens: TokenCounter, resolve_key: KeyResolver = spec_key_hash):
        self._count_tokens = count_tokens
        self._resolve_key = resolve_key
        self._lock = threading.Lock()
        self._entries: dict[str, _Entry] = {}
        self._by_key: dict[str, str] = {}
        self._status: dict[str, ProfileStatus] = {}
        self._origins: dict[str, set[str]] = {}
        self._origin_errors: dict[str, str] = {}

    # --- what sources call -------------------------------------------------------------------
    def apply(self, origin: str, documents: list[TenantProfileDocument]) -> list[ProfileStatus]:
        """Apply everything one origin (a file, a custom resource) holds now; returns the new statuses."""
        with self._lock:
            self._origin_errors.pop(origin, None)
            statuses = [self._apply_one(origin, doc) for doc in documents]
            kept = {s.tenant_id for s in statuses}
            for gone in self._origins.get(origin, set()) - kept:
                self._drop(gone, origin)
            self._origins[origin] = kept
            return statuses

    def reject(self, origin: str, error: ProfileError) -> None:
        """The origin could not be read or parsed: its tenants keep their last good version."""
        with self._lock:
            self._origin_errors[origin] = error.message
            for tenant in self._origins.get(origin, set()):
                self._mark_rejected(tenant, origin, error.message)
        log.warning(
            "profile rejected; last good version keeps serving", extra={"origin": origin, "reason": error.message}
        )

    def remove(self, origin: str) -> None:
        """The origin is gone (file deleted, resource deleted): its tenants stop being served."""
        with self._lock:
            for tenant in self._origins.pop(origin, set()):
                self._drop(tenant, origin)
            self._origin_errors.pop(origin, None)

    # --- what the router calls ------------------------------------------------------------------
    def authenticate(self, api_key: str) -> CompiledProfile:
        tenant = self._by_key.get(hash_api_key(api_key))
        entry = self._entries.get(tenant) if tenant else None
        if entry is None:
            raise Unauthenticated("the API key matches no tenant")
        return entry.profile

    def get(self, tenant_id: str) -> CompiledProfile:
        entry = self._entries.get(tenant_id)
        if entry is None:
            raise NotFound(f"no tenant {tenant_id!r}")
        return entry.profile

    def status(self, tenant_id: str) -> ProfileStatus:
        status = self._status.get(tenant_id)
        if status is None:
            raise NotFound(f"no tenant {tenant_id!r}")
        return status

    def tenants(self) -> list[str]:
        return sorted(self._entries)

    def errors(self) -> dict[str, str]:
        """Origins that could not be read at all, with why."""
        return dict(self._origin_errors)

    # --- internals (called with the lock held) --------------------------------------------------
    def _apply_one(self, origin: str, doc: TenantProfileDocument) -> ProfileStatus:
        tenant = doc.spec.tenant_id
        try:
            self._check_owner(origin, tenant)
            compiled = compile_profile(doc.metadata.name, doc.spec, self._count_tokens)
            key_hash = self._resolve_key(origin, doc.spec)
            self._check_key_unique(tenant, key_hash)
        except ProfileError as exc:
            return self._mark_rejected(tenant, origin, exc.message)
        previous = self._entries.get(tenant)
        if previous is not None:
            self._by_key.pop(previous.key_hash, None)
        self._entries[tenant] = _Entry(compiled, key_hash, origin)
        self._by_key[key_hash] = tenant
        status = ProfileStatus(tenant, origin, True, "accepted", compiled.version, compiled.instruction_tokens())
        self._status[tenant] = status
        if previous is None or previous.profile.version != compiled.version:
            log.info(
                "profile accepted", extra={"tenant": tenant, "origin": origin, "profile_version": compiled.version}
            )
        return status

    def _check_owner(self, origin: str, tenant: str) -> None:
        current = self._entries.get(tenant)
        if current is not None and current.origin != origin:
            raise ProfileError(
                f"{origin}: tenantId {tenant!r} is already defined by {current.origin}", field="spec.tenantId"
            )

    def _check_key_unique(self, tenant: str, key_hash: str) -> None:
        owner = self._by_key.get(key_hash)
        if owner is not None and owner != tenant:
            raise ProfileError("spec.apiKey: the same key is already used by another tenant", field="spec.apiKey")

    def _mark_rejected(self, tenant: str, origin: str, message: str) -> ProfileStatus:
        entry = self._entries.get(tenant)
        previous = self._status.get(tenant)
        serving = entry.profile.version if entry else None
        tokens = previous.instruction_tokens if previous and entry else {}
        status = ProfileStatus(tenant, origin, False, message, serving, tokens)
        if entry is None or entry.origin == origin:
            self._status[tenant] = status
        log.warning("profile rejected", extra={"tenant": tenant, "origin": origin, "reason": message})
        return status

    def _drop(self, tenant: str, origin: str) -> None:
        entry = self._entries.get(tenant)
        if entry is None or entry.origin != origin:
            return
        del self._entries[tenant]
        self._by_key.pop(entry.key_hash, None)
        self._status.pop(tenant, None)
        log.info("profile removed", extra={"tenant": tenant, "origin": origin})
