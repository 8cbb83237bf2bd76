"""Fault test: a replica SIGKILLed mid-load, with a bulk job running, and what clients and the job saw.

    python benchmarks/fault.py [--engine fake|transformers] [--kill generate|router|both] [--out results/fault.json]

Starts `switchboard run` (127.0.0.1, bounded) with the `generate` deployment and the router pinned at two replicas
each (no autoscaling, so recovery is the Serve controller replacing the dead replica, not a scale-up). Then, per scenario:

- an open-loop interactive summarize load at about half the two replicas' capacity, plus one `/v1/batches` job at
  batch priority started first;
- one replica process of the named deployment (`generate`, or `router`: the ingress that also runs the batch worker)
  is SIGKILLed a few seconds in, as the kernel's OOM killer or a node loss would;
- the load runs on, then the job is awaited.

Measured against the issue's targets (#15): failed requests at most 1 % and all explicit (an HTTP status with a JSON
error body; not a reset connection, a client timeout or a 500); recovery at most 30 s (seconds from the kill until the
deployment runs its two replicas again and a probe request succeeds); no batch line lost or duplicated (every
custom_id once, in input order, each with a response or an explicit per-line error).

The fake engine (a batch of at most 4 requests in 1 s per replica) keeps the capacity known and the run short; the
failure handling under test (Ray Serve's replica replacement, the router's retry, the batch worker's resume) is the
same for every engine. `--engine transformers` measures capacity first and runs the same phases on SmolLM2.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import signal
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _platform import (
    KEYS,
    ROOT,
    Load,
    Outcome,
    batch_body,
    gauges,
    of,
    pct,
    platform_env,
    replica_pids,
    start,
    stop,
    write_profiles,
)

TARGETS = {"failed_pct": 1.0, "recovery_s": 30.0}
REPLICAS = 2


def fault_env(engine: str, port: int, profiles: Path) -> dict[str, str]:
    """The load test's platform with `generate` and the router pinned at two replicas each (as a cluster runs them) and a
    small batch worker."""
    env = platform_env(engine, port, profiles)
    for deployment in ("GENERATE", "ROUTER"):
        env[f"SWITCHBOARD_DEPLOYMENTS__{deployment}__MIN_REPLICAS"] = str(REPLICAS)
        env[f"SWITCHBOARD_DEPLOYMENTS__{deployment}__MAX_REPLICAS"] = str(REPLICAS)
    # Logical CPUs only (the replicas share the 2 real cores either way): summarize and reply get their own generate
    # deployments when their adapters pass the gate, so 3 x 2 generate replicas at the load test's 0.25 plus router,
    # redact and classify-intent would reserve 2.3 of Ray's 2 and a killed replica could not be rescheduled.
    env["SWITCHBOARD_DEPLOYMENTS__GENERATE__NUM_CPUS"] = "0.15"
    env["SWITCHBOARD_BATCH_CONCURRENCY"] = "4"
    return env


# --- what a client saw ----------------------------------------------------------------------------------------
def explicit(outcome: Outcome) -> bool:
    """A failure the client can act on: an HTTP error status other than 500 with a JSON error body (the status is
    stored with a `+body` suffix by `Fault.status_of` when the body had an error message)."""
    return isinstance(outcome.status, str) and outcome.status.endswith("+body") and not outcome.status.startswith("500")


def clients_saw(outcomes: list[Outcome]) -> dict:
    failed = [o for o in outcomes if o.status != 200]
    by_status = Counter(str(o.status) for o in outcomes)
    ok = [o.latency_s for o in outcomes if o.status == 200]
    return {"sent": len(outcomes), "succeeded": len(outcomes) - len(failed), "failed": len(failed),
            "failed_pct": round(100 * len(failed) / max(1, len(outcomes)), 2),
            "all_failures_explicit": all(explicit(o) for o in failed), "by_status": dict(by_status),
            "p50_s": pct(ok, 0.5), "p99_s": pct(ok, 0.99)}


def batch_integrity(lines: int, records: list[dict]) -> dict:
    """Every input line's custom_id exactly once, in input order, each with a response or an explicit error."""
    ids = [r.get("custom_id") for r in records]
    expected = [f"c{i}" for i in range(lines)]
    counts = Counter(ids)
    answered = sum(1 for r in records if r.get("response") is not None or (r.get("error") or {}).get("message"))
    return {"lines": lines, "records": len(records), "lost": len(set(expected) - set(ids)),
            "duplicated": sum(n - 1 for n in counts.values() if n > 1), "in_input_order": ids == expected,
            "answered": answered, "failed_lines": sum(1 for r in records if r.get("error"))}


class Fault(Load):
    """The load test's client, recording whether each failure was explicit."""

    def __init__(self, base: str, max_tokens: int, platform_pid: int | None = None):
        super().__init__(base, max_tokens)
        self.platform_pid = platform_pid

    deadline_ms = "30000"

    def status_of(self, r: httpx.Response) -> tuple[int | str, int]:
        if r.status_code == 200:
            return 200, 0
        return (f"{r.status_code}+body" if _error_message(r) else str(r.status_code)), 0

    async def submit_batch(self, lines: int) -> str | None:
        body = batch_body(lines, self.max_tokens)
        r = await self.client.post("/v1/batches", content=body, headers={**self._auth, "content-type": "application/jsonl"})
        return r.json()["id"] if r.status_code == 202 else None

    async def finished_batch(self, batch: str, timeout_s: float) -> tuple[dict, list[dict]]:
        """Polls through a router restart (connection errors and 5xx while it is gone are retried)."""
        deadline = self.now() + timeout_s
        info: dict = {}
        while self.now() < deadline:
            try:
                r = await self.client.get(f"/v1/batches/{batch}", headers=self._auth)
                info = r.json() if r.status_code == 200 else info
                if info.get("status") in ("completed", "cancelled", "failed"):
                    text = (await self.client.get(f"/v1/batches/{batch}/results", headers=self._auth)).text
                    return info, [json.loads(x) for x in text.splitlines()]
            except (httpx.HTTPError, ValueError):
                pass
            await asyncio.sleep(0.5)
        return {**info, "timed_out": True}, []

    async def recovered(self, deployment: str, killed_pid: int, killed_at: float, timeout_s: float) -> dict:
        """From the kill: `replaced_s`, when a replacement replica process exists and the router's replica gauge (read
        from the Serve controller once a second) shows REPLICAS running on two readings 1.5 s apart (so neither is
        from before the controller noticed the death); `recovery_s`, when a probe request then succeeds (None if not
        within timeout_s); and the probes' statuses. Conservative by the 1.5 s confirmation."""
        confirmed_at, replaced, probes = None, None, []
        while self.now() - killed_at < timeout_s:
            await asyncio.sleep(0.5)
            pids = replica_pids(deployment, self.platform_pid)
            try:
                running = gauges((await self.client.get("/metrics", timeout=2)).text, deployment)["replicas"]
            except httpx.HTTPError:
                continue
            whole = killed_pid not in pids and len(pids) >= REPLICAS and running >= REPLICAS
            if not whole:
                confirmed_at = None
                continue
            confirmed_at = confirmed_at or self.now()
            if self.now() - confirmed_at < 1.5:
                continue
            replaced = replaced or round(self.now() - killed_at, 1)
            probes.append(str((await self.one("light", "interactive", "probe", len(probes))).status))
            if probes[-1] == "200":
                return {"replaced_s": replaced, "recovery_s": round(self.now() - killed_at, 1), "probes": probes}
        return {"replaced_s": replaced, "recovery_s": None, "probes": probes}

    @property
    def _auth(self) -> dict:
        return {"Authorization": f"Bearer {KEYS['light']}"}


def _error_message(response: httpx.Response) -> bool:
    try:
        body = response.json()
    except ValueError:
        return False
    error = body.get("error") if isinstance(body, dict) else None
    return bool(error.get("message") if isinstance(error, dict) else error)


# --- one scenario ---------------------------------------------------------------------------------------------
async def scenario(base: str, platform_pid: int, deployment: str, rate: float, seconds: float, batch_lines: int,
                   max_tokens: int) -> dict:
    """One replica of `deployment` killed a few seconds into `seconds` of load at `rate`, a batch job running."""
    load = Fault(base, max_tokens=max_tokens, platform_pid=platform_pid)
    try:
        batch = await load.submit_batch(batch_lines)
        before = replica_pids(deployment, platform_pid)
        killed: dict = {}

        async def killer() -> float | None:
            await asyncio.sleep(min(6.0, seconds / 4))
            pids = replica_pids(deployment, platform_pid)
            if not pids:
                return None
            os.kill(pids[0], signal.SIGKILL)
            killed.update(pid=pids[0], at=round(load.now(), 1))
            return await load.recovered(deployment, pids[0], load.now(), 180)

        _, recovery = await asyncio.gather(load.open_loop("load", rate, seconds), killer())
        recovery = recovery or {"replaced_s": None, "recovery_s": None, "probes": []}
        info, records = await load.finished_batch(batch, 300) if batch else ({"upload": "refused"}, [])
        return {"deployment": deployment, "replica_pids_before": before, "killed": killed,
                "rate_rps": rate, "seconds": seconds, "clients": clients_saw(of(load.outcomes, "load")),
                **recovery, "batch": {"status": info.get("status"), "counts": info.get("counts"),
                                                  **batch_integrity(batch_lines, records)}}
    finally:
        await load.client.aclose()


def verdict(result: dict) -> list[str]:
    c, b = result["clients"], result["batch"]
    return [
        f"failed {c['failed']}/{c['sent']} = {c['failed_pct']} % (target <= {TARGETS['failed_pct']} %), "
        f"all explicit: {c['all_failures_explicit']} ({c['by_status']})",
        f"recovery {result['recovery_s']} s (target <= {TARGETS['recovery_s']} s): replacement running after "
        f"{result['replaced_s']} s, then probes {result['probes']}",
        f"batch: {b['records']}/{b['lines']} lines back, lost {b['lost']}, duplicated {b['duplicated']}, in order "
        f"{b['in_input_order']}, failed lines {b['failed_lines']} (status {b['status']})",
    ]


async def measured_capacity(base: str, max_tokens: int) -> float:
    load = Fault(base, max_tokens=max_tokens)
    try:
        start_at = load.now()
        await load.closed_loop("capacity", {"light": 4, "heavy": 4}, 20)
        done = [o for o in load.outcomes if o.status == 200]
        return len(done) / max(1e-9, load.now() - start_at)
    finally:
        await load.client.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine", choices=["fake", "transformers"], default="fake")
    parser.add_argument("--kill", choices=["generate", "router", "both"], default="both")
    parser.add_argument("--seconds", type=float, default=30.0, help="length of the load around each kill")
    parser.add_argument("--batch-lines", type=int, default=60)
    parser.add_argument("--port", type=int, default=8310)
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "fault.json")
    parser.add_argument("--log", type=Path, help="keep the platform's log here (default: a temporary file)")
    args = parser.parse_args()
    base = f"http://127.0.0.1:{args.port}"
    max_tokens = 8 if args.engine == "fake" else 16
    results: dict = {"engine": args.engine, "targets": TARGETS, "scenarios": []}
    with tempfile.TemporaryDirectory() as tmp:
        profiles = Path(tmp) / "profiles"
        profiles.mkdir()
        write_profiles(profiles)
        started = time.monotonic()
        proc = start(fault_env(args.engine, args.port, profiles), base, args.log or Path(tmp) / "platform.log")
        print(f"platform ready in {time.monotonic() - started:.0f} s (engine {args.engine}, generate pinned at {REPLICAS})")
        try:
            capacity = 4.0 * REPLICAS if args.engine == "fake" else asyncio.run(measured_capacity(base, max_tokens))
            rate = round(capacity / 2, 2)
            print(f"capacity {capacity:.2f} requests/s ({'by construction' if args.engine == 'fake' else 'measured'}); "
                  f"load {rate} requests/s")
            for deployment in (["generate", "router"] if args.kill == "both" else [args.kill]):
                result = asyncio.run(scenario(base, proc.pid, deployment, rate, args.seconds, args.batch_lines, max_tokens))
                results["scenarios"].append(result)
                print(f"\nkill one `{deployment}` replica (pid {result['killed'].get('pid')}) "
                      f"{result['killed'].get('at', 0):.1f} s into a {args.seconds:.0f} s load:")
                for line in verdict(result):
                    print("  " + line)
        finally:
            stop(proc)
    results["machine"] = {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                          "python": platform.python_version(), "load_avg": os.getloadavg()}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1))
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
