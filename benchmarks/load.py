"""Load test of the local platform under overload (127.0.0.1 only, bounded in count and time).

    python benchmarks/load.py [--engine fake|transformers] [--quick] [--out results/load.json]

Starts `switchboard run` itself, with a temporary profiles folder of two tenants, `light` (weight 1) and `heavy`
(weight 3), and a `generate` deployment that autoscales from 1 to 3 replicas on ongoing requests. With `--engine fake`
a replica is a FakeEngine that answers a batch of at most 4 requests in 1 s (capacity: 4 requests/s per replica);
with `--engine transformers` it is SmolLM2 on the CPU (capacity measured first). Phases:

1. baseline: light load, latency at rest;
2. step: idle to 5x one replica's capacity: replicas added (seconds from the step to a new replica serving), and
   every request answered with success or 429/503/504 (sent = succeeded + rejected, nothing else);
3. recovery: light load again, latency back near the baseline;
4. priority: interactive requests alone, then the same with a concurrent bulk load at `batch` priority: interactive p95;
5. fair share: both tenants keep more requests open than the deployment takes; the heavy tenant's share of served
   tokens against its 3/4 entitlement (the fair-share error);
6. (fake only) kill: one replica process is SIGKILLed mid-load; what clients saw, and the deployment recovering;
7. (not fake) deadline: requests whose deadline ends long before their max_tokens; the tokens the engine made after
   each cancel (benchmarks/deadline_probe.py; target: at most one decoding step per cancelled request).

Prints each figure with what it is measured against, and writes JSON with every count.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import platform
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from deadline_probe import deadline_probe, describe  # noqa: E402 - a sibling script, not a package

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


def replica_pids(deployment: str = "generate") -> list[int]:
    """Processes of the deployment's replicas (Ray names them `ray::ServeReplica:<app>:<deployment>`)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if f"ServeReplica:switchboard:{deployment}" in cmd:
                pids.append(int(entry.name))
    return pids


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

    async def one(self, tenant: str, klass: str, phase: str, i: int) -> Outcome:
        body = {"transcript": f"Customer: my order {i} has not arrived, it was due last week.\nAgent: I will check.",
                "max_tokens": self.max_tokens}
        headers = {"Authorization": f"Bearer {KEYS[tenant]}", "X-Switchboard-Priority": klass,
                   "X-Switchboard-Deadline-Ms": "60000"}
        sent = self.now()
        try:
            r = await self.client.post("/v1/tasks/summarize", json=body, headers=headers)
            status, usage = r.status_code, (r.json().get("usage") or {}) if r.status_code == 200 else {}
            tokens = usage.get("tokens_in", 0) + usage.get("tokens_out", 0)
        except httpx.HTTPError as exc:
            status, tokens = f"client:{type(exc).__name__}", 0
        outcome = Outcome(tenant, klass, phase, sent, self.now() - sent, status, tokens)
        self.outcomes.append(outcome)
        return outcome

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
        body = "".join(json.dumps({"custom_id": f"c{i}", "task": "summarize", "body": {
            "transcript": f"Customer: refund for order {i} please.\nAgent: Done.", "max_tokens": self.max_tokens}}) + "\n"
            for i in range(lines))
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
                self.timeline.append({"t": round(self.now(), 2), **_gauges(text)})
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.5)


def _gauges(text: str) -> dict:
    def value(pattern: str) -> float:
        found = re.findall(pattern + r"\s+([0-9.e+-]+)", text)
        return sum(float(v) for v in found)

    return {"replicas": value(r'switchboard_replicas\{deployment="generate"\}'),
            "window": value(r'switchboard_deployment_window\{deployment="generate"\}'),
            "queued": value(r'switchboard_queued_requests\{deployment="generate",priority="[a-z]+"\}')}


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


def scale_up_s(timeline: list[dict], step_at: float) -> float | None:
    before = [p["replicas"] for p in timeline if p["t"] <= step_at] or [1]
    initial = before[-1]
    later = [p for p in timeline if p["t"] > step_at and p["replicas"] > initial]
    return round(later[0]["t"] - step_at, 1) if later else None


def fair_share(outcomes: list[Outcome], warm_up_s: float = 3.0) -> dict:
    """Served tokens per tenant, counting requests that finished while both tenants were still sending (after a
    warm-up): once the clients stop, the drain of whatever is left queued is first come, first served by definition."""
    if not outcomes:
        return {"error": None}
    start, end = min(o.sent_at for o in outcomes) + warm_up_s, max(o.sent_at for o in outcomes)
    tokens = Counter()
    for o in outcomes:
        if start <= o.sent_at + o.latency_s <= end:
            tokens[o.tenant] += o.tokens
    total = sum(tokens.values()) or 1
    expected = WEIGHTS["heavy"] / sum(WEIGHTS.values())
    observed = tokens["heavy"] / total
    return {"window_s": round(end - start, 1), "tokens": dict(tokens), "heavy_share": round(observed, 3),
            "expected_share": expected,
            "error": round(abs(observed - expected) / expected, 3)}


# --- the run --------------------------------------------------------------------------------------------------
async def run(base: str, engine: str, quick: bool) -> dict:
    scale = 0.5 if quick else 1.0
    load = Load(base, max_tokens=8 if engine == "fake" else 16)
    stop_watch = asyncio.Event()
    watcher = asyncio.create_task(load.watch(stop_watch))
    results: dict = {}
    try:
        capacity = 4.0 if engine == "fake" else await measured_capacity(load, 20 * scale)
        results["capacity_rps_one_replica"] = round(capacity, 2)
        print(f"capacity of one replica: {capacity:.2f} requests/s ({'by construction' if engine == 'fake' else 'measured'})")

        # The step starts from one replica: the capacity probe may have scaled up; wait for the downscale.
        results["settle_to_one_replica_s"] = await load.until_replicas(1, timeout_s=120)
        await load.open_loop("baseline", max(0.2, capacity / 4), 12 * scale)
        step_at = load.now()
        results["replicas_at_step"] = load.timeline[-1]["replicas"] if load.timeline else None
        await load.open_loop("step", 5 * capacity, 45 * scale)
        await load.open_loop("recovery", max(0.2, capacity / 4), 20 * scale)
        results["scale_up_s"] = scale_up_s(load.timeline, step_at)
        results["max_replicas_seen"] = max((p["replicas"] for p in load.timeline), default=None)

        await load.open_loop("interactive_alone", max(0.3, capacity / 2), 20 * scale)
        job = asyncio.create_task(load.batch_job(int(120 * scale) if engine == "fake" else int(10 * scale)))
        bulk = asyncio.create_task(load.closed_loop("bulk", {"light": 8, "heavy": 8}, 24 * scale, klass="batch"))
        await asyncio.sleep(2)
        await load.open_loop("interactive_with_batch", max(0.3, capacity / 2), 20 * scale)
        await bulk
        results["batch_job"] = await job

        # Both tenants keep more requests open than the deployment and its queue share out (backlogged): the
        # share each gets is then the scheduler's choice, not the clients'.
        await load.closed_loop("fair_share", {"light": 20, "heavy": 20}, 30 * scale)
        if engine == "fake":
            await kill_phase(load, capacity, scale, results)
        else:
            results["settle_before_deadline_probe_s"] = await load.until_replicas(1, timeout_s=120)
            results["deadline"] = await deadline_probe(load.client, KEYS["light"])
    finally:
        stop_watch.set()
        await watcher
        await load.client.aclose()

    o = load.outcomes
    results["phases"] = {p: summary(of(o, p)) for p in dict.fromkeys(x.phase for x in o)}
    results["interactive_p95_alone_s"] = summary(of(o, "interactive_alone"))["p95_s"]
    results["interactive_p95_with_batch_s"] = summary(of(o, "interactive_with_batch"))["p95_s"]
    results["fair_share"] = fair_share([x for x in of(o, "fair_share") if x.status == 200])
    results["totals"] = summary(o)
    results["timeline"] = load.timeline
    return results


async def cold_start(base: str) -> dict:
    """With min_replicas 0: wait until the deployment has scaled to zero, then time the requests that wake it."""
    load = Load(base, max_tokens=8)
    try:
        await load.one("light", "interactive", "warm", 0)
        deadline = load.now() + 120
        while _gauges((await load.client.get("/metrics")).text)["replicas"] > 0:
            if load.now() > deadline:
                return {"scaled_to_zero": False}
            await asyncio.sleep(1)
        idle_at = load.now()
        ready_at_zero = (await load.client.get("/readyz")).status_code
        woken = await asyncio.gather(*(load.one("light", "interactive", "cold", i) for i in range(4)))
        return {"scaled_to_zero": True, "seconds_to_zero": round(idle_at, 1), "readyz_at_zero": ready_at_zero,
                "cold_statuses": [o.status for o in woken], "cold_latency_s": [round(o.latency_s, 2) for o in woken]}
    finally:
        await load.client.aclose()


async def measured_capacity(load: Load, seconds: float) -> float:
    start = load.now()
    await load.closed_loop("capacity", {"light": 2, "heavy": 2}, seconds)
    done = [x for x in of(load.outcomes, "capacity") if x.status == 200]
    return len(done) / max(1e-9, load.now() - start)


async def kill_phase(load: Load, capacity: float, scale: float, results: dict) -> None:
    async def killer() -> None:
        await asyncio.sleep(5)
        pids = replica_pids()
        results["killed_replica_pid"] = pids[0] if pids else None
        if pids:
            os.kill(pids[0], signal.SIGKILL)

    await asyncio.gather(load.open_loop("kill", capacity * 1.5, 20 * scale), killer())
    await asyncio.sleep(3)
    await load.open_loop("after_kill", 1, 10 * scale)


def report(results: dict) -> None:
    print("\nphase                    sent    ok  429  503  504 other   p50 s   p95 s")
    for phase, s in results["phases"].items():
        b = s["by_status"]
        print(f"{phase:<24}{s['sent']:>5}{s['succeeded']:>6}{b.get('429', 0):>5}{b.get('503', 0):>5}{b.get('504', 0):>5}"
              f"{s['other']:>6}{_f(s['p50_s']):>8}{_f(s['p95_s']):>8}")
    t = results["totals"]
    print(f"\ncount check: sent {t['sent']} = succeeded {t['succeeded']} + rejected {t['rejected']} "
          f"+ other {t['other']}  ->  {'OK' if t['other'] == 0 else 'NOT OK'} (other = neither success nor 429/503/504)")
    print(f"scale-up: {results['scale_up_s']} s from the 5x step (at {results['replicas_at_step']} replica(s)) "
          "to a new replica serving "
          f"(max replicas seen {results['max_replicas_seen']}; upscale_delay_s 2, Ray controller and replica start)")
    print(f"interactive p95: {results['interactive_p95_alone_s']} s alone vs {results['interactive_p95_with_batch_s']} s "
          f"with a concurrent batch-priority load (16 clients + a /v1/batches job)")
    print(f"/v1/batches job: {results['batch_job']}")
    fs = results["fair_share"]
    print(f"fair share (weights 1:3): heavy tenant got {fs['heavy_share']:.1%} of served tokens, entitled to "
          f"{fs['expected_share']:.0%} -> error {fs['error']:.1%}")
    if "deadline" in results:
        print(describe(results["deadline"]))
    if "kill" in results["phases"]:
        k, a = results["phases"]["kill"], results["phases"]["after_kill"]
        print(f"killed replica pid {results.get('killed_replica_pid')}: during {k['by_status']}; after {a['by_status']}")


def _f(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine", choices=["fake", "transformers", "vllm"], default="fake")
    parser.add_argument("--quick", action="store_true", help="half-length phases")
    parser.add_argument("--port", type=int, default=8300)
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "load.json")
    parser.add_argument("--scale-to-zero", action="store_true",
                        help="only check that a deployment scaled to zero holds (not refuses) the requests that wake it")
    args = parser.parse_args()
    base = f"http://127.0.0.1:{args.port}"
    with tempfile.TemporaryDirectory() as tmp:
        profiles = Path(tmp) / "profiles"
        profiles.mkdir()
        write_profiles(profiles)
        log = Path(tmp) / "platform.log"
        started = time.monotonic()
        proc = start(platform_env(args.engine, args.port, profiles, args.scale_to_zero), base, log)
        print(f"platform ready in {time.monotonic() - started:.0f} s (engine {args.engine})")
        try:
            if args.scale_to_zero:
                results = asyncio.run(cold_start(base))
                print(f"scale to zero: {results}")
                args.out.parent.mkdir(parents=True, exist_ok=True)
                args.out.with_name("load_scale_to_zero.json").write_text(json.dumps(results, indent=1))
                return
            results = asyncio.run(run(base, args.engine, args.quick))
        finally:
            stop(proc)
    results["machine"] = {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                          "python": platform.python_version(), "load_avg": os.getloadavg()}
    results["engine"], results["quick"] = args.engine, args.quick
    report(results)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1))
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
