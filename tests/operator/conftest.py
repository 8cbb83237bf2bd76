"""Operator fixtures: the API-server emulator (kmock, extended) and kopf running in-process against it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import kopf
import kmock as kmock_lib
import pytest

from tests.k8s_helpers import ApiServer, declare_all

NAMESPACE = "demo"


@pytest.fixture
def kmock_options() -> dict[str, Any]:
    return {"cls": ApiServer}


@pytest.fixture
def api(kmock: ApiServer) -> ApiServer:
    declare_all(kmock)
    # kopf's namespace observer waits until discovery shows core `namespaces` (scanning is off; see below).
    kmock.resources[kmock_lib.resource("", "v1", "namespaces")] = kmock_lib.ResourceInfo(
        kind="Namespace", namespaced=False, verbs={"list", "watch", "get"}
    )
    return kmock


@pytest.fixture
def api_client(api: ApiServer):
    from kubernetes import client

    configuration = client.Configuration(host=str(api.url).rstrip("/"))
    with client.ApiClient(configuration) as api_client:
        yield api_client


async def eventually(check: Callable[[], Any], timeout: float = 10, what: str = "condition") -> Any:
    """Poll until `check()` returns something truthy (the operator works asynchronously)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        with contextlib.suppress(Exception):  # not there yet (missing key, unknown tenant, ...)
            if result := check():
                return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def running_operator(api: ApiServer, registry: kopf.OperatorRegistry) -> AsyncIterator[None]:
    """kopf's real engine in this event loop, talking HTTP to the emulator; stopped and awaited on exit."""

    @kopf.on.login(registry=registry)
    def login(**_: Any) -> kopf.ConnectionInfo:
        return kopf.ConnectionInfo(server=str(api.url).rstrip("/"), insecure=True)

    settings = kopf.OperatorSettings()
    settings.posting.enabled = False  # no core Events in the emulator
    settings.scanning.disabled = True  # serve the named namespace without listing namespaces and CRDs
    settings.watching.reconnect_backoff = 0.1
    settings.networking.request_timeout = 5
    settings.queueing.exit_timeout = 0.1  # stop quickly: nothing is left to process when a test ends
    settings.queueing.idle_timeout = 0.5
    ready = asyncio.Event()
    logging.getLogger("kopf").setLevel(logging.WARNING)
    task = asyncio.create_task(
        kopf.operator(registry=registry, settings=settings, namespaces=[NAMESPACE], standalone=True,
                      ready_flag=ready)
    )
    await asyncio.wait_for(ready.wait(), 10)
    try:
        yield
    finally:
        # Cancel rather than set the stop flag: kopf would otherwise give every task started since its start-up,
        # the emulator's open watch responses included, 5 s to finish.
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, 10)
