"""The operator's only door to the API server: a few calls of the kubernetes client, errors translated for kopf."""

from __future__ import annotations

import asyncio
from typing import Any

import kopf

from operators.switchboard_operator.models import GROUP, PLURAL, VERSION

RAY_GROUP, RAY_VERSION, RAY_PLURAL = "ray.io", "v1", "rayservices"
PROFILE_PLURAL = "tenantprofiles"


class Cluster:
    """Blocking kubernetes-client calls run in a thread; 404 becomes None, the rest kopf.Temporary/PermanentError."""

    def __init__(self, api_client: Any):
        from kubernetes import client

        self._custom = client.CustomObjectsApi(api_client)
        self._core = client.CoreV1Api(api_client)

    async def list_taskmodels(self, namespace: str) -> list[dict[str, Any]]:
        result = await self._call(self._custom.list_namespaced_custom_object, GROUP, VERSION, namespace, PLURAL)
        return [i for i in (result or {}).get("items", []) if not i.get("metadata", {}).get("deletionTimestamp")]

    async def get_rayservice(self, namespace: str, name: str) -> dict[str, Any] | None:
        return await self._call(
            self._custom.get_namespaced_custom_object, RAY_GROUP, RAY_VERSION, namespace, RAY_PLURAL, name
        )

    async def create_rayservice(self, namespace: str, body: dict[str, Any]) -> None:
        await self._call(
            self._custom.create_namespaced_custom_object, RAY_GROUP, RAY_VERSION, namespace, RAY_PLURAL, body
        )

    async def patch_rayservice(self, namespace: str, name: str, patch: dict[str, Any]) -> None:
        await self._call(
            self._custom.patch_namespaced_custom_object, RAY_GROUP, RAY_VERSION, namespace, RAY_PLURAL, name, patch
        )

    async def delete_rayservice(self, namespace: str, name: str) -> None:
        await self._call(
            self._custom.delete_namespaced_custom_object, RAY_GROUP, RAY_VERSION, namespace, RAY_PLURAL, name
        )

    async def patch_status(self, plural: str, namespace: str, name: str, status: dict[str, Any]) -> None:
        await self._call(
            self._custom.patch_namespaced_custom_object_status,
            GROUP,
            VERSION,
            namespace,
            plural,
            name,
            {"status": status},
        )

    async def secret_has_key(self, namespace: str, name: str, key: str) -> bool | None:
        """None when the Secret does not exist; never returns or logs the key itself."""
        secret = await self._call(self._core.read_namespaced_secret, name, namespace)
        if secret is None:
            return None
        return key in (secret.data or {})

    async def claim_exists(self, namespace: str, name: str) -> bool | None:
        """Whether a PersistentVolumeClaim exists; None when the operator may not look (403)."""
        try:
            return await self._call(self._core.read_namespaced_persistent_volume_claim, name, namespace) is not None
        except kopf.PermanentError:
            return None

    async def _call(self, fn, *args) -> Any:
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        try:
            return await asyncio.to_thread(fn, *args)
        except ApiException as exc:
            if exc.status == 404:
                return None
            if exc.status in (400, 403, 422):
                raise kopf.PermanentError(f"API server refused {fn.__name__}: {exc.status} {exc.reason}") from None
            raise kopf.TemporaryError(
                f"API server error in {fn.__name__}: {exc.status} {exc.reason}", delay=10
            ) from None
        except HTTPError as exc:
            raise kopf.TemporaryError(f"API server unreachable in {fn.__name__}: {exc}", delay=10) from None
