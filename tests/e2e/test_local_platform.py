"""The platform as a user runs it: `switchboard run` (real local Ray, Ray Serve, Presidio, MiniLM) over HTTP on 127.0.0.1.

Nothing is faked. One platform is started for the module (about a minute on 2 cores) with its own profiles folder
(copies of the samples) and port, then stopped with SIGINT as Ctrl-C would, and every process it started must be gone.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import NORTHBANK_KEY, SAMPLES, SHOPRIGHT_KEY

pytestmark = pytest.mark.ray

STARTUP_TIMEOUT_S = 240


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _descendants(pid: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found, stack = set(), [pid]
    while stack:
        for child in children.get(stack.pop(), []):
            if child not in found:
                found.add(child)
                stack.append(child)
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.fixture(scope="module")
def platform(tmp_path_factory):
    folder = tmp_path_factory.mktemp("profiles")
    for name in ("shopright.yaml", "northbank.yaml"):
        shutil.copy(SAMPLES / name, folder / name)
    port = _free_port()
    env = {**os.environ, "SWITCHBOARD_PORT": str(port), "SWITCHBOARD_PROFILES_DIR": str(folder),
           "SWITCHBOARD_PROFILE_POLL_INTERVAL_S": "0.3", "RAY_USAGE_STATS_ENABLED": "0"}
    log = open(tmp_path_factory.mktemp("logs") / "platform.log", "w+")
    proc = subprocess.Popen([sys.executable, "-m", "serving.cli", "run"], env=env, stdout=log, stderr=subprocess.STDOUT,
                            cwd=Path(__file__).resolve().parents[2])
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while True:
        if proc.poll() is not None:
            log.seek(0)
            pytest.fail(f"switchboard run exited with {proc.returncode}:\n{log.read()[-4000:]}")
        try:
            if httpx.get(f"{base}/readyz", timeout=5).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            proc.kill()
            log.seek(0)
            pytest.fail(f"not ready after {STARTUP_TIMEOUT_S} s:\n{log.read()[-4000:]}")
        time.sleep(1)
    info = {"base": base, "folder": folder, "proc": proc, "log": log}
    yield info
    if proc.poll() is None:
        proc.kill()
        proc.wait(30)


def call(platform, path, key, **body):
    return httpx.post(f"{platform['base']}{path}", json=body, headers={"Authorization": f"Bearer {key}"}, timeout=30)


def test_redact_over_http(platform):
    text = "Hi, I'm Maria Gonzalez, card 4111 1111 1111 1111, email maria.g@example.com, order #55123."
    response = call(platform, "/v1/tasks/redact", SHOPRIGHT_KEY, text=text)
    assert response.status_code == 200, response.text
    body = response.json()
    for value in ("4111 1111 1111 1111", "maria.g@example.com", "55123"):
        assert value not in body["text"]
    types = {e["type"] for e in body["entities"]}
    assert {"CREDIT_CARD", "EMAIL_ADDRESS"} <= types
    for e in body["entities"]:
        assert text[e["start"]:e["end"]].strip()


def test_classify_intent_over_http_with_each_tenants_taxonomy(platform):
    bank = call(platform, "/v1/tasks/classify-intent", NORTHBANK_KEY, text="I still have not received my new card")
    assert bank.status_code == 200, bank.text
    assert bank.json()["label"] == "card_arrival"
    shop = call(platform, "/v1/tasks/classify-intent", SHOPRIGHT_KEY, text="How do I send these shoes back?")
    assert shop.status_code == 200, shop.text
    assert shop.json()["label"] == "return_item"


def test_tenant_isolation_and_errors_over_http(platform):
    base = platform["base"]
    other = httpx.get(f"{base}/v1/tenants/northbank", headers={"Authorization": f"Bearer {SHOPRIGHT_KEY}"})
    assert other.status_code == 403 and other.json()["error"]["type"] == "forbidden"
    assert httpx.post(f"{base}/v1/tasks/redact", json={"text": "x"}).status_code == 401
    bad = call(platform, "/v1/tasks/classify-intent", SHOPRIGHT_KEY, text="")
    assert bad.status_code == 422 and "body.text" in bad.json()["error"]["message"]


def test_profile_change_is_served_within_two_seconds_without_restart(platform):
    path = platform["folder"] / "shopright.yaml"
    path.write_text(path.read_text().replace("threshold: 0.3", "threshold: 0.99"))
    deadline = time.monotonic() + 2.5
    while True:
        label = call(platform, "/v1/tasks/classify-intent", SHOPRIGHT_KEY, text="How do I send these shoes back?").json()["label"]
        if label is None:  # nothing clears a 0.99 threshold: the new version serves
            break
        assert time.monotonic() < deadline, "profile change not applied within 2 s"
        time.sleep(0.1)
    path.write_text(path.read_text().replace("  intents:", "  intents:\n    bogus: 1"))
    time.sleep(1.5)
    status = httpx.get(f"{platform['base']}/v1/tenants/shopright", headers={"Authorization": f"Bearer {SHOPRIGHT_KEY}"}).json()
    assert status["accepted"] is False and "bogus" in status["message"]
    still = call(platform, "/v1/tasks/classify-intent", SHOPRIGHT_KEY, text="How do I send these shoes back?")
    assert still.status_code == 200  # the last good version keeps serving


def test_ctrl_c_stops_ray_and_every_process_it_started(platform):
    proc = platform["proc"]
    started = _descendants(proc.pid)
    assert started, "the platform should have started Ray processes"
    proc.send_signal(signal.SIGINT)
    assert proc.wait(90) == 0
    deadline = time.monotonic() + 30
    while [p for p in started if _alive(p)] and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not [p for p in started if _alive(p)], "processes left running after Ctrl-C"
