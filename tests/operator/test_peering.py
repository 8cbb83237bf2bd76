"""Two operator replicas: kopf peering lets only the one with the higher priority work, the other waits.

Faked: the API server (kmock's emulator, tests/k8s_helpers.py, with kopf's KopfPeering CRD declared); both replicas
are kopf's real engine with our handlers in this event loop, as two pods of the Deployment would be.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import kmock
import kopf

from operators.switchboard_operator.__main__ import peering_priority
from operators.switchboard_operator.builders import RouterOptions
from operators.switchboard_operator.cluster import Cluster
from operators.switchboard_operator.handlers import register
from tests.k8s_helpers import RS, load_samples
from tests.operator.conftest import NAMESPACE, eventually

PEERINGS = kmock.resource("kopf.dev", "v1", "kopfpeerings")


def test_replicas_get_distinct_priorities_from_their_pod_names():
    names = [f"sb-switchboard-operator-7d9f8c6b5-{suffix}" for suffix in ("x2k4q", "p9z7m", "a1b2c")]
    priorities = [peering_priority(n) for n in names]
    assert len(set(priorities)) == 3 and all(p > 0 for p in priorities)
    assert peering_priority(names[0]) == priorities[0]  # stable across restarts of the same pod


@contextlib.asynccontextmanager
async def replica(api, api_client, priority: int, seen: list):
    registry = kopf.OperatorRegistry()
    reconciler = register(registry, Cluster(api_client), RouterOptions(image="example.com/switchboard:test"))
    original = reconciler.reconcile

    async def counted(namespace: str) -> None:
        seen.append(priority)
        await original(namespace)

    reconciler.reconcile = counted

    @kopf.on.login(registry=registry)
    def login(**_):
        return kopf.ConnectionInfo(server=str(api.url).rstrip("/"), insecure=True)

    settings = kopf.OperatorSettings()
    settings.posting.enabled = False
    settings.scanning.disabled = True
    settings.watching.reconnect_backoff = 0.1
    settings.queueing.exit_timeout = 0.1
    settings.networking.request_timeout = 5
    settings.networking.error_backoffs = [0.1, 0.2]  # leaving the peering on exit retries quickly
    logging.getLogger("kopf").setLevel(logging.WARNING)
    task = asyncio.create_task(kopf.operator(registry=registry, settings=settings, namespaces=[NAMESPACE],
                                             peering_name="sb-switchboard-operator", priority=priority))
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, 10)


async def test_only_the_higher_priority_replica_reconciles(api, api_client):
    api.declare(PEERINGS, "KopfPeering", status=False)
    async with api.post(f"/apis/kopf.dev/v1/namespaces/{NAMESPACE}/kopfpeerings",
                        json={"apiVersion": "kopf.dev/v1", "kind": "KopfPeering",
                              "metadata": {"name": "sb-switchboard-operator"}}) as response:
        assert response.status == 201
    seen: list[int] = []
    async with replica(api, api_client, 200, seen), replica(api, api_client, 100, seen):
        await asyncio.sleep(2)  # both announce themselves; the lower one pauses
        sample = load_samples("taskmodels/cpu.yaml")[0]
        async with api.post(f"/apis/switchboard.dev/v1alpha1/namespaces/{NAMESPACE}/taskmodels", json=sample) as response:
            assert response.status == 201
        await eventually(lambda: (RS, NAMESPACE, "switchboard") in api.objects, what="RayService built", timeout=15)
        await asyncio.sleep(1)
    assert seen and set(seen) == {200}
