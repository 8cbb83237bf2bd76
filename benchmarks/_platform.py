"""The local platform for the load and fault benchmarks: start `switchboard run` with load-test tenants, drive it.

Shared by benchmarks/load.py (overload, scale-up, priority, fair share) and benchmarks/fault.py (a replica killed
mid-load). Everything runs on 127.0.0.1, bounded in count and time.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
KEYS = {"light": "sb-load-light-0001", "heavy": "sb-load-heavy-0003"}
WEIGHTS = {"light": 1, "heavy": 3}
REJECTED = (429, 503, 504)
PROFILE = """apiVersion: switchboard.dev/v1alpha1
kind: TenantProfile
metadata:
  name: {tenant}
spec:
  tenantId: {tenant}
  apiKey:
    sha256: {sha}
  tasks: [redact, summarize, reply]
  instructions:
    summarize: Two sentences at most.
  redaction:
    applyToTasks: false
  limits:
    requestsPerSecond: 1000
    concurrentRequests: 1000
    tokensPerMinute: 100000000
  priority:
    defaultClass: interactive
    allowedClasses: [interactive, batch]
    weight: {weight}
"""


@dataclass
class Outcome:
    tenant: str
    klass: str
    phase: str
    sent_at: float
    latency_s: float
    status: int | str
    tokens: int = 0


# --- the platform ---------------------------------------------------------------------------------------------
def platform_env(engine: str, port: int, profiles: Path, scale_to_zero: bool = False) -> dict[str, str]:
    generate = {"MAX_ONGOING_REQUESTS": 4, "BATCH_SIZE": 4, "MIN_REPLICAS": 0 if scale_to_zero else 1, "MAX_REPLICAS": 3,
                "TARGET_ONGOING_REQUESTS": 2, "UPSCALE_DELAY_S": 2, "DOWNSCALE_DELAY_S": 5 if scale_to_zero else 15,
                "NUM_CPUS": 0.25, "MAX_QUEUED_REQUESTS": 48, "LOOK_BACK_PERIOD_S": 4, "METRICS_INTERVAL_S": 1}
    env = {**os.environ, "SWITCHBOARD_PORT": str(port), "SWITCHBOARD_PROFILES_DIR": str(profiles),
           "SWITCHBOARD_MODELS__GENERATOR_ENGINE": engine, "SWITCHBOARD_LOG_LEVEL": "WARNING",
           "SWITCHBOARD_BATCHES_DIR": str(profiles.parent / "batches"), "SWITCHBOARD_BATCH_CONCURRENCY": "8"}
    env.update({f"SWITCHBOARD_DEPLOYMENTS__GENERATE__{k}": str(v) for k, v in generate.items()})
    if engine == "fake":
        env["SWITCHBOARD_MODELS__ENGINE_OPTIONS"] = json.dumps({"latency_s": 1.0})
    return env


def write_profiles(folder: Path) -> None:
    for tenant, key in KEYS.items():
        sha = hashlib.sha256(key.encode()).hexdigest()
        (folder / f"{tenant}.yaml").write_text(PROFILE.format(tenant=tenant, sha=sha, weight=WEIGHTS[tenant]))


def start(env: dict, base: str, log: Path) -> subprocess.Popen:
    try:
        httpx.get(f"{base}/readyz", timeout=2)
        raise SystemExit(f"something already answers on {base} (another platform still stopping?); use another --port")
    except httpx.HTTPError:
        pass  # nothing there: ours will be the one that answers
    cli = Path(sys.executable).with_name("switchboard")
    proc = subprocess.Popen([str(cli), "run"], cwd=ROOT, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT,
                            start_new_session=True)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the platform exited with {proc.returncode}; see {log}")
        try:
            if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(1)
    stop(proc)
    raise SystemExit(f"the platform was not ready within 240 s; see {log}")


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(90)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


def replica_pids(deployment: str = "generate", platform_pid: int | None = None) -> list[int]:
    """Processes of the deployment's replicas (Ray names them `ray::ServeReplica:<app>:<deployment>`); with
    `platform_pid`, only those started by that `switchboard run` (another platform on the machine is left alone)."""
    parents, names = {}, {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                names[int(entry.name)] = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    mine = {pid for pid in names if platform_pid is None or _descends(pid, platform_pid, parents)}
    return sorted(pid for pid in mine if f"ServeReplica:switchboard:{deployment}" in names[pid])


def _descends(pid: int, ancestor: int, parents: dict[int, int]) -> bool:
    seen = set()
    while pid not in seen and pid > 1:
        if pid == ancestor:
            return True
        seen.add(pid)
        pid = parents.get(pid, 1)
    return False


# --- load -----------------------------------------------------------------------------------------------------
class Load:
    def __init__(self, base: str, max_tokens: int):
        self.client = httpx.AsyncClient(base_url=base, timeout=httpx.Timeout(180.0),
                                        limits=httpx.Limits(max_connections=400, max_keepalive_connections=100))
        self.max_tokens = max_tokens
        self.outcomes: list[Outcome] = []
        self.timeline: list[dict] = []
        self.t0 = time.monotonic()

    def now(self) -> float:
        return time.monotonic() - self.t0

    deadline_ms = "60000"

    async def one(self, tenant: str, klass: str, phase: str, i: int) -> Outcome:
        body = {"transcript": f"Customer: my order {i} has not arrived, it was due last week.\nAgent: I will check.",
                "max_tokens": self.max_tokens}
        headers = {"Authorization": f"Bearer {KEYS[tenant]}", "X-Switchboard-Priority": klass,
                   "X-Switchboard-Deadline-Ms": self.deadline_ms}
        sent = self.now()
        try:
            r = await self.client.post("/v1/tasks/summarize", json=body, headers=headers)
            status, tokens = self.status_of(r)
        except httpx.HTTPError as exc:
            status, tokens = f"client:{type(exc).__name__}", 0
        outcome = Outcome(tenant, klass, phase, sent, self.now() - sent, status, tokens)
        self.outcomes.append(outcome)
        return outcome

    def status_of(self, r: httpx.Response) -> tuple[int | str, int]:
        """The outcome's status and the tokens a success used."""
        usage = (r.json().get("usage") or {}) if r.status_code == 200 else {}
        return r.status_code, usage.get("tokens_in", 0) + usage.get("tokens_out", 0)

    async def open_loop(self, phase: str, rate: float, seconds: float, tenants=("light", "heavy"),
                        klass: str = "interactive") -> None:
        """`rate` requests per second whatever the answers (arrivals do not wait for the platform)."""
        tasks, n = [], int(rate * seconds)
        start = self.now()
        for i in range(n):
            await asyncio.sleep(max(0.0, start + i / rate - self.now()))
            tasks.append(asyncio.create_task(self.one(tenants[i % len(tenants)], klass, phase, i)))
        await asyncio.gather(*tasks)

    async def closed_loop(self, phase: str, clients: dict[str, int], seconds: float, klass: str = "interactive") -> None:
        """Each client sends its next request when the last one is answered, until `seconds` pass."""
        end = self.now() + seconds

        async def client(tenant: str, c: int) -> None:
            i = 0
            while self.now() < end:
                outcome = await self.one(tenant, klass, phase, c * 10_000 + i)
                i += 1
                if outcome.status in REJECTED:
                    await asyncio.sleep(0.5)

        await asyncio.gather(*(client(t, c) for t, n in clients.items() for c in range(n)))

    async def batch_job(self, lines: int) -> dict:
        """A bulk job through POST /v1/batches; waits for it and checks every line came back once, in order."""
        body = batch_body(lines, self.max_tokens)
        auth = {"Authorization": f"Bearer {KEYS['light']}"}
        started = self.now()
        created = await self.client.post("/v1/batches", content=body, headers={**auth, "content-type": "application/jsonl"})
        if created.status_code != 202:
            return {"lines": lines, "upload_status": created.status_code}
        batch = created.json()["id"]
        while (info := (await self.client.get(f"/v1/batches/{batch}", headers=auth)).json())["status"] not in (
                "completed", "cancelled"):
            await asyncio.sleep(0.5)
        results = [json.loads(x) for x in (await self.client.get(f"/v1/batches/{batch}/results", headers=auth)).text.splitlines()]
        in_order = [r["custom_id"] for r in results] == [f"c{i}" for i in range(lines)]
        return {"lines": lines, **info["counts"], "seconds": round(self.now() - started, 1),
                "results_once_in_input_order": in_order}

    async def until_replicas(self, replicas: int, timeout_s: float, steady_s: float = 8.0) -> float | None:
        """Seconds until the watched replica count has been at most `replicas` for `steady_s` (the router's gauge
        follows the Serve controller a few seconds late, so one reading is not enough); None: not within timeout_s."""
        started = self.now()
        while self.now() - started < timeout_s:
            recent = [p["replicas"] for p in self.timeline if p["t"] >= self.now() - steady_s]
            if self.now() - started >= steady_s and recent and max(recent) <= replicas:
                return round(self.now() - started, 1)
            await asyncio.sleep(0.5)
        return None

    async def watch(self, stop: asyncio.Event) -> None:
        """Replicas, window and queue of the generate deployment, from the router's /metrics, twice a second."""
        while not stop.is_set():
            try:
                text = (await self.client.get("/metrics", timeout=5)).text
                self.timeline.append({"t": round(self.now(), 2), **gauges(text)})
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.5)


def batch_body(lines: int, max_tokens: int) -> str:
    """A JSONL upload of `lines` summarize lines with custom_ids c0, c1, ..."""
    return "".join(json.dumps({"custom_id": f"c{i}", "task": "summarize", "body": {
        "transcript": f"Customer: refund for order {i} please.\nAgent: Done.", "max_tokens": max_tokens}}) + "\n"
        for i in range(lines))


def gauges(text: str, deployment: str = "generate") -> dict:
    def value(pattern: str) -> float:
        found = re.findall(pattern + r"\s+([0-9.e+-]+)", text)
        return sum(float(v) for v in found)

    d = re.escape(deployment)
    return {"replicas": value(rf'switchboard_replicas\{{deployment="{d}"\}}'),
            "window": value(rf'switchboard_deployment_window\{{deployment="{d}"\}}'),
            "queued": value(rf'switchboard_queued_requests\{{deployment="{d}",priority="[a-z]+"\}}')}


# --- figures --------------------------------------------------------------------------------------------------
def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 3)


def summary(outcomes: list[Outcome]) -> dict:
    statuses = Counter(o.status for o in outcomes)
    ok = [o.latency_s for o in outcomes if o.status == 200]
    rejected = sum(statuses[s] for s in REJECTED)
    return {"sent": len(outcomes), "succeeded": statuses[200], "rejected": rejected,
            "other": len(outcomes) - statuses[200] - rejected, "by_status": {str(k): v for k, v in statuses.items()},
            "p50_s": pct(ok, 0.5), "p95_s": pct(ok, 0.95), "p99_s": pct(ok, 0.99)}


def of(outcomes: list[Outcome], phase: str, klass: str | None = None) -> list[Outcome]:
    return [o for o in outcomes if o.phase == phase and (klass is None or o.klass == klass)]
