"""A replica SIGKILLed mid-load, as an OOM kill or a lost node would: what clients and a running batch job see; and
the edge middlewares in Serve's own proxy.

Real local Ray and Ray Serve (`switchboard run`, the controller replacing the dead replica, its HTTP proxy with
Switchboard's replay middleware, the batch worker resuming in the surviving router). Faked: the generative engine is
the FakeEngine (a batch of at most 4 requests in 1 s per replica), so the load can be held at half of the two replicas'
known capacity and any failure is the kill's, not overload's; the failure handling under test does not depend on the
engine. The scenario is benchmarks/fault.py's, shorter; that benchmark reports the recovery time against its target.
"""

from __future__ import annotations

import asyncio
import socket
import tempfile
from pathlib import Path

import pytest

from benchmarks import fault

pytestmark = pytest.mark.ray


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def platform():
    with tempfile.TemporaryDirectory() as tmp:
        profiles = Path(tmp) / "profiles"
        profiles.mkdir()
        fault.write_profiles(profiles)
        port = _free_port()
        base = f"http://127.0.0.1:{port}"
        proc = fault.start(fault.fault_env("fake", port, profiles), base, Path(tmp) / "platform.log")
        try:
            yield {"base": base, "pid": proc.pid, "log": Path(tmp) / "platform.log"}
        finally:
            fault.stop(proc)


def _scenario(platform, deployment: str) -> dict:
    return asyncio.run(fault.scenario(platform["base"], platform["pid"], deployment, rate=4.0, seconds=20.0,
                                      batch_lines=40, max_tokens=8))


@pytest.mark.parametrize("deployment", ["generate", "router"])
def test_a_killed_replica_costs_no_request_and_no_batch_line(platform, deployment):
    result = _scenario(platform, deployment)
    assert result["killed"].get("pid") in result["replica_pids_before"], result  # one of this platform's replicas died
    clients, batch = result["clients"], result["batch"]
    # Every request answered: a success, or an explicit error with a JSON body (no reset, no bare 500), and few.
    assert clients["all_failures_explicit"], clients
    assert clients["failed_pct"] <= 1.0, clients
    # The deployment is whole again (a replacement replica serving); the time it took is the benchmark's figure.
    assert result["recovery_s"] is not None, result
    # The batch job finished with every line exactly once, in input order, each answered.
    assert batch["status"] == "completed", batch
    assert (batch["lost"], batch["duplicated"], batch["in_input_order"]) == (0, 0, True), batch
    assert batch["answered"] == batch["lines"], batch


def test_serve_s_own_proxy_runs_the_edge_middlewares(platform):
    """The same proxy (Ray's, configured through RAY_SERVE_HTTP_PROXY_CALLBACK_IMPORT_PATH) refuses 101 headers."""
    import httpx

    headers = {f"x-extra-{i}": "1" for i in range(101)}
    r = httpx.get(f"{platform['base']}/healthz", headers=headers, timeout=10)
    assert r.status_code == 431, r.text
    assert "at most 100" in r.json()["error"]["message"]
    assert httpx.get(f"{platform['base']}/healthz", timeout=10).status_code == 200
