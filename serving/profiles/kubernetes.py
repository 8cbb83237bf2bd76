"""KubernetesProfileSource: TenantProfiles (and their key Secrets) from the API server, watched; `kubernetes` is imported lazily."""

from __future__ import annotations

import asyncio
import base64
import logging
import threading
from typing import Any, cast

from serving.errors import ProfileError
from serving.profiles.compiler import parse_document
from serving.profiles.model import TenantProfileSpec, hash_api_key
from serving.profiles.registry import ProfileRegistry

log = logging.getLogger(__name__)

GROUP, VERSION, PLURAL = "switchboard.dev", "v1alpha1", "tenantprofiles"


class SecretKeyResolver:
    """KeyResolver for `apiKey.secretRef`: hashes the key read from the Secret; only hashes are kept, never keys."""

    def __init__(self, core_api: Any):
        self._core = core_api
        self._hashes: dict[tuple[str, str, str], str | None] = {}
        self._lock = threading.Lock()

    def __call__(self, origin: str, spec: TenantProfileSpec) -> str:
        if spec.api_key.sha256 is not None:
            return spec.api_key.sha256
        ref = spec.api_key.secret_ref
        assert ref is not None  # the spec validator guarantees one of the two
        namespace = origin.split("/")[1]
        key_hash = self._lookup(namespace, ref.name, ref.key)
        if key_hash is None:
            raise ProfileError(
                f"{origin}: Secret {ref.name!r} has no key {ref.key!r} (or is missing)", field="spec.apiKey"
            )
        return key_hash

    def forget(self, namespace: str, name: str) -> None:
        """The Secret changed: the next lookup reads it again."""
        with self._lock:
            for entry in [k for k in self._hashes if k[:2] == (namespace, name)]:
                del self._hashes[entry]

    def forget_all(self) -> None:
        with self._lock:
            self._hashes.clear()

    def _lookup(self, namespace: str, name: str, key: str) -> str | None:
        with self._lock:
            if (namespace, name, key) in self._hashes:
                return self._hashes[(namespace, name, key)]
        key_hash = self._read(namespace, name, key)
        with self._lock:
            self._hashes[(namespace, name, key)] = key_hash
        return key_hash

    def _read(self, namespace: str, name: str, key: str) -> str | None:
        from kubernetes.client.exceptions import ApiException

        try:
            secret = self._core.read_namespaced_secret(name, namespace)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise ProfileError(f"cannot read Secret {namespace}/{name}: {exc.status} {exc.reason}") from None
        raw = (secret.data or {}).get(key)
        if raw is None:
            return None
        return hash_api_key(base64.b64decode(raw).decode("utf-8").strip())


class KubernetesProfileSource:
    """ProfileSource over the API server: list then watch TenantProfiles and Secrets; reconnects with backoff."""

    def __init__(
        self,
        registry: ProfileRegistry,
        namespace: str,
        api_client: Any = None,
        resolver: SecretKeyResolver | None = None,
        watch_timeout_s: int = 60,
        read_timeout_s: float | None = None,
        backoff_s: tuple[float, float] = (0.5, 30.0),
    ):
        from kubernetes import client

        self.registry = registry
        self.namespace = namespace
        self._api_client = api_client or client.ApiClient()
        self._custom = client.CustomObjectsApi(self._api_client)
        self._core = client.CoreV1Api(self._api_client)
        self.resolver = resolver or SecretKeyResolver(self._core)
        self.watch_timeout_s = watch_timeout_s
        self.read_timeout_s = read_timeout_s or watch_timeout_s + 5
        self.backoff_s = backoff_s
        self._bodies: dict[str, dict[str, Any]] = {}
        self._resource_versions: dict[str, str | None] = {"profiles": None, "secrets": None}
        self._stopped = threading.Event()
        self._lock = threading.RLock()  # the two watch threads share the registry bookkeeping

    @classmethod
    def with_registry(
        cls, count_tokens, namespace: str, api_client: Any = None, **kwargs: Any
    ) -> "KubernetesProfileSource":
        """Builds the registry too, with a key resolver that reads the Secrets this source watches."""
        from kubernetes import client

        api_client = api_client or client.ApiClient()
        resolver = SecretKeyResolver(client.CoreV1Api(api_client))
        return cls(ProfileRegistry(count_tokens, resolver), namespace, api_client, resolver, **kwargs)

    # --- ProfileSource -----------------------------------------------------------------------------
    def sync(self) -> None:
        """List every TenantProfile once and bring the registry up to date (blocking)."""
        from kubernetes.client.exceptions import ApiException

        try:
            listing = cast(
                dict[str, Any], self._custom.list_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL)
            )
        except ApiException as exc:
            raise ProfileError(f"cannot list TenantProfiles in {self.namespace}: {exc.status} {exc.reason}") from None
        items = {self._origin(i): i for i in listing.get("items", [])}
        with self._lock:
            self._sync_items(items)
        self._resource_versions["profiles"] = (listing.get("metadata") or {}).get("resourceVersion")

    def _sync_items(self, items: dict[str, dict[str, Any]]) -> None:
        for origin in set(self._bodies) - set(items):
            self._forget(origin)
        for origin, body in items.items():
            if self._bodies.get(origin) != body:
                self._apply(origin, body)

    async def watch(self) -> None:
        """Watch profiles and Secrets until cancelled; after a failure, wait (backoff), re-list, watch again."""
        self._stopped.clear()
        try:
            await asyncio.gather(self._keep_watching("profiles"), self._keep_watching("secrets"))
        finally:
            self._stopped.set()  # the watch threads end at their next event or timeout

    # --- internals ------------------------------------------------------------------------------------
    async def _keep_watching(self, kind: str) -> None:
        delay = self.backoff_s[0]
        while True:
            try:
                await asyncio.to_thread(self._watch_once, kind)
                # The stream ended (server timeout): catch up with what a reconnect may not replay, then watch on.
                await asyncio.to_thread(self.sync if kind == "profiles" else self._refresh_keys)
                delay = self.backoff_s[0]
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - a dropped stream, an API error: reconnect after a pause
                if kind == "secrets" and getattr(exc, "status", None) == 403:
                    await self._poll_keys()  # least privilege: Secrets readable by name only
                log.warning(
                    "watch of %s failed (%s: %s); reconnecting in %.1f s",
                    kind,
                    type(exc).__name__,
                    str(exc)[:200],
                    delay,
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.backoff_s[1])
                await self._resync()

    async def _poll_keys(self) -> None:
        """RBAC grants the key Secrets by name (resourceNames), so no namespace-wide watch: re-read every key each
        watch_timeout_s instead, which picks up a rotation within that time."""
        log.info("Secrets are readable by name only; key Secrets are re-read every %s s", self.watch_timeout_s)
        while True:
            await asyncio.sleep(self.watch_timeout_s)
            await asyncio.to_thread(self._refresh_keys)

    async def _resync(self) -> None:
        try:
            await asyncio.to_thread(self.sync)
        except Exception as exc:  # noqa: BLE001 - the API server may still be away: the next failure retries
            log.error("cannot re-list TenantProfiles", extra={"reason": str(exc)[:200]})

    def _watch_once(self, kind: str) -> None:
        from kubernetes import watch
        from urllib3.exceptions import ReadTimeoutError

        lister = (
            (lambda **kw: self._custom.list_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL, **kw))
            if kind == "profiles"
            else (lambda **kw: self._core.list_namespaced_secret(self.namespace, **kw))  # events arrive as dicts
        )
        stream = watch.Watch().stream(
            lister,
            resource_version=self._resource_versions[kind],
            timeout_seconds=self.watch_timeout_s,
            _request_timeout=self.read_timeout_s,
        )
        try:
            self._consume(kind, stream)
        except ReadTimeoutError:
            return  # a quiet stream: reconnect from the last resourceVersion, no backoff

    def _consume(self, kind: str, stream) -> None:
        handle = self._on_profile if kind == "profiles" else self._on_secret
        for event in stream:
            if self._stopped.is_set():
                return
            if event["type"] == "ERROR":
                self._resource_versions[kind] = None
                raise RuntimeError(f"watch error: {event.get('raw_object', {}).get('message', 'unknown')}")
            with self._lock:
                handle(event["type"], event["object"])

    def _refresh_keys(self) -> None:
        with self._lock:
            self.resolver.forget_all()
            for origin, body in list(self._bodies.items()):
                if ((body.get("spec") or {}).get("apiKey") or {}).get("secretRef"):
                    self._apply(origin, body)

    def _on_profile(self, kind: str, body: dict[str, Any]) -> None:
        origin = self._origin(body)
        self._resource_versions["profiles"] = body.get("metadata", {}).get("resourceVersion")
        if kind == "DELETED":
            self._forget(origin)
        elif self._bodies.get(origin) != body:
            self._apply(origin, body)

    def _on_secret(self, kind: str, secret: dict[str, Any]) -> None:
        """Any change to a Secret: forget its hash and re-apply the profiles that reference it (the event's data is
        not read here; the resolver reads the Secret again)."""
        meta = secret.get("metadata", {})
        self._resource_versions["secrets"] = meta.get("resourceVersion")
        self.resolver.forget(meta.get("namespace") or self.namespace, meta.get("name"))
        for origin, body in list(self._bodies.items()):
            ref = ((body.get("spec") or {}).get("apiKey") or {}).get("secretRef") or {}
            if ref.get("name") == meta.get("name"):
                self._apply(origin, body)

    def _apply(self, origin: str, body: dict[str, Any]) -> None:
        self._bodies[origin] = body
        try:
            document = parse_document({k: body.get(k) for k in ("apiVersion", "kind", "metadata", "spec")}, origin)
        except ProfileError as exc:
            self.registry.reject(origin, exc)
            return
        self.registry.apply(origin, [document])

    def _forget(self, origin: str) -> None:
        self._bodies.pop(origin, None)
        self.registry.remove(origin)
        log.info("TenantProfile removed", extra={"origin": origin})

    @staticmethod
    def _origin(body: dict[str, Any]) -> str:
        meta = body.get("metadata", {})
        return f"tenantprofiles/{meta.get('namespace')}/{meta.get('name')}"


__all__ = ["KubernetesProfileSource", "SecretKeyResolver"]
