"""KubernetesProfileSource (the router's view of TenantProfiles) against an API server over HTTP.

Faked: the Kubernetes API server (kmock's emulator, extended in tests/k8s_helpers.py), because none can run on this
machine. The real kubernetes client lists and watches it; the registry, compiler and key hashing are the real ones.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import copy

import pytest

from serving.errors import Unauthenticated
from serving.profiles import approximate_counter
from serving.profiles.kubernetes import KubernetesProfileSource
from tests.conftest import SHOPRIGHT_KEY
from tests.k8s_helpers import load_samples
from tests.operator.conftest import NAMESPACE, eventually

TP_URL = f"/apis/switchboard.dev/v1alpha1/namespaces/{NAMESPACE}/tenantprofiles"
SECRET_URL = f"/api/v1/namespaces/{NAMESPACE}/secrets"
MERGE = {"Content-Type": "application/merge-patch+json"}


@contextlib.asynccontextmanager
async def watching(source: KubernetesProfileSource):
    task = asyncio.create_task(source.watch())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def send(api, method: str, url: str, body: dict) -> None:
    async with api.request(method, url, json=body, headers=MERGE if method == "PATCH" else {}) as response:
        assert response.status in (200, 201), await response.text()


@pytest.fixture
def source(api, api_client) -> KubernetesProfileSource:
    return KubernetesProfileSource.with_registry(approximate_counter, NAMESPACE, api_client, watch_timeout_s=1, read_timeout_s=0.5)


async def test_applies_a_profile_and_keeps_the_last_good_on_a_broken_update(api, source):
    await send(api, "POST", TP_URL, load_samples("shopright.yaml")[0])
    await asyncio.to_thread(source.sync)
    good = source.registry.authenticate(SHOPRIGHT_KEY)
    async with watching(source):
        # Schema-valid, semantically wrong: score-quality without a rubric.
        await send(api, "PATCH", f"{TP_URL}/shopright", {"spec": {"rubric": []}})
        status = await eventually(lambda: not source.registry.status("shopright").accepted and source.registry.status("shopright"),
                                  what="rejected update")
        assert source.registry.authenticate(SHOPRIGHT_KEY).version == good.version
        await send(api, "PATCH", f"{TP_URL}/shopright", {"spec": {"displayName": "ShopRight EU", "rubric": [
            {"id": "greeting", "description": "The agent greets the customer."}]}})
        fixed = await eventually(lambda: source.registry.get("shopright").spec.display_name == "ShopRight EU"
                                 and source.registry.get("shopright"), what="fixed update applied")
    assert "rubric: required" in status.message and status.serving_version == good.version
    assert fixed.version != good.version


async def test_key_comes_from_the_secret_and_follows_its_rotation(api, source):
    profile = copy.deepcopy(load_samples("shopright.yaml")[0])
    profile["spec"]["apiKey"] = {"secretRef": {"name": "shopright-key"}}
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "shopright-key"},
              "data": {"api-key": base64.b64encode(b"sb-first-key").decode()}}
    await send(api, "POST", SECRET_URL, secret)
    await send(api, "POST", TP_URL, profile)
    await asyncio.to_thread(source.sync)
    assert source.registry.authenticate("sb-first-key").tenant_id == "shopright"
    async with watching(source):
        await send(api, "PATCH", f"{SECRET_URL}/shopright-key", {"data": {"api-key": base64.b64encode(b"sb-rotated").decode()}})
        await eventually(lambda: source.registry.authenticate("sb-rotated"), what="rotated key accepted")
    with pytest.raises(Unauthenticated):
        source.registry.authenticate("sb-first-key")


async def test_deleted_profile_stops_being_served(api, source):
    await send(api, "POST", TP_URL, load_samples("shopright.yaml")[0])
    await asyncio.to_thread(source.sync)
    async with watching(source):
        async with api.delete(f"{TP_URL}/shopright") as response:
            assert response.status == 200
        await eventually(lambda: source.registry.tenants() == [], what="tenant removed")


async def test_with_secrets_granted_by_name_only_the_key_is_read_and_its_rotation_followed(api, source):
    """The chart's router Role names the key Secrets (resourceNames): no list, no namespace-wide watch. The emulator
    answers those with 403 as the API server would; the source reads the key by name and re-reads it on a timer."""
    profile = copy.deepcopy(load_samples("shopright.yaml")[0])
    profile["spec"]["apiKey"] = {"secretRef": {"name": "shopright-key"}}
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "shopright-key"},
              "data": {"api-key": base64.b64encode(b"sb-first-key").decode()}}
    await send(api, "POST", SECRET_URL, secret)
    await send(api, "POST", SECRET_URL, {**secret, "metadata": {"name": "helm-release"}})
    await send(api, "POST", TP_URL, profile)
    api.secret_names = {"shopright-key"}
    async with api.get(SECRET_URL) as listing, api.get(f"{SECRET_URL}/helm-release") as other:
        assert (listing.status, other.status) == (403, 403)
    await asyncio.to_thread(source.sync)
    assert source.registry.authenticate("sb-first-key").tenant_id == "shopright"
    async with watching(source):
        await send(api, "PATCH", f"{SECRET_URL}/shopright-key", {"data": {"api-key": base64.b64encode(b"sb-rotated").decode()}})
        await eventually(lambda: source.registry.authenticate("sb-rotated"), timeout=10, what="rotated key accepted")
