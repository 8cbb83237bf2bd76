"""A built worker group's `ray start`, composed exactly as KubeRay does, joins a real local Ray head with its pool:*.

Faked: no Kubernetes, so the head is `ray start --head` on this machine and the worker's command runs through
`bash -c` here (as KubeRay's container does); the head address and the two ports KubeRay defaults (metrics,
dashboard agent) are swapped for free local ones so parallel runs cannot collide. Everything else is the built command.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

import pytest

from operators.switchboard_operator.builders import RouterOptions, build_rayservice
from tests.kuberay_command import ray_start_command
from tests.operator.test_builders import accepted, groups

pytestmark = pytest.mark.ray
RAY = shutil.which("ray", path=os.path.dirname(sys.executable))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _node_ip() -> str:
    from ray.util import get_node_ip_address

    return get_node_ip_address()


def _wait_for_head(host: str, port: int, env: dict) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=1):
            time.sleep(2)  # the GCS port opens before the head's raylet registers
            return
        time.sleep(0.3)
    raise AssertionError("local Ray head did not start")


def test_kuberay_composed_command_quotes_resources_as_json():
    group = groups(build_rayservice("support", accepted("cpu.yaml"), RouterOptions()))["cpu"]
    assert """--resources='{"pool:cpu":1000}'""" in ray_start_command(group, head=False)


@pytest.mark.skipif(RAY is None, reason="ray CLI not in the venv")
def test_built_worker_command_joins_a_head_with_its_pool_resource():
    group = groups(build_rayservice("support", accepted("cpu.yaml"), RouterOptions(worker_memory="1Gi")))["cpu"]
    port = _free_port()
    temp = tempfile.mkdtemp(prefix="rj-", dir="/tmp")
    # HOME of its own: a ~/.ray/auth_token left by another cluster on this machine would make the head demand it.
    env = {**os.environ, "HOME": temp, "RAY_USAGE_STATS_ENABLED": "0", "PATH": f"{os.path.dirname(sys.executable)}:{os.environ['PATH']}"}
    head = [RAY, "start", "--head", f"--port={port}", "--num-cpus=0", "--include-dashboard=false",
            f"--temp-dir={temp}", "--disable-usage-stats", "--block"]
    # --block and a session of its own: the head (and only it) is stopped by its process group, never `ray stop`.
    head_proc = subprocess.Popen(head, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    procs = [head_proc]
    try:
        host = _node_ip()
        _wait_for_head(host, port, env)
        command = ray_start_command(group, head=False, head_address=f"{host}:{port}")
        command = command.replace("=8080 ", f"={_free_port()} ").replace("=52365 ", f"={_free_port()} ")
        worker = subprocess.Popen(["/bin/bash", "-c", "--", command], env=env, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, start_new_session=True)
        procs.append(worker)
        probe = (f"import json,ray; ray.init(address='{host}:{port}', log_to_driver=False);"
                 "print(json.dumps([n['Resources'] for n in ray.nodes() if n['Alive']]))")
        deadline, nodes = time.monotonic() + 30, []
        while time.monotonic() < deadline and worker.poll() is None:
            out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=30,
                                 check=False)
            nodes = json.loads(out.stdout.strip().splitlines()[-1]) if out.returncode == 0 else []
            if any("pool:cpu" in n for n in nodes):
                break
            time.sleep(1)
        assert worker.poll() is None, worker.stdout.read().decode()[-2000:]
        pool = [n for n in nodes if "pool:cpu" in n]
        assert pool and pool[0]["pool:cpu"] == 1000 and pool[0]["CPU"] == 2
    finally:
        for proc in procs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, 9)  # the whole group: raylet, GCS and agents go with it
            proc.wait(timeout=20)
        shutil.rmtree(temp, ignore_errors=True)
