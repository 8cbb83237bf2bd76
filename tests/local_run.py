"""Starting `switchboard run` in an end-to-end test: a free port, and waiting for /readyz with the log on failure."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
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


@contextlib.contextmanager
def serving(cmd: list[str], env: dict[str, str], log_path: Path, port: int, timeout_s: float,
            cwd: Path) -> Iterator[str]:
    """Run `cmd` (a platform on 127.0.0.1:`port`), yield its base URL once /readyz answers, and stop it on exit with
    SIGINT, as Ctrl-C would (the launcher stops Ray and what it started); killed if it is still up after 60 s."""
    with open(log_path, "w+") as log:
        proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=cwd)
        try:
            base = f"http://127.0.0.1:{port}"
            wait_ready(base, proc, log, timeout_s)
            yield base
        finally:
            if proc.poll() is None:
                proc.send_signal(2)
                try:
                    proc.wait(60)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(30)
