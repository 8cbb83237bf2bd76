"""Starting `switchboard run` in an end-to-end test: a free port, and waiting for /readyz with the log on failure."""

from __future__ import annotations

import socket
import subprocess
import time
from typing import IO

import httpx
import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(base: str, proc: subprocess.Popen, log: IO[str], timeout_s: float) -> None:
    """Return once `base`/readyz answers 200; fail the test with the log's tail if the platform exits first or is not
    ready within `timeout_s` (then it is killed)."""
    deadline = time.monotonic() + timeout_s
    while True:
        if proc.poll() is not None:
            log.seek(0)
            pytest.fail(f"switchboard run exited with {proc.returncode}:\n{log.read()[-4000:]}")
        try:
            if httpx.get(f"{base}/readyz", timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            proc.kill()
            log.seek(0)
            pytest.fail(f"not ready after {timeout_s} s:\n{log.read()[-4000:]}")
        time.sleep(1)
