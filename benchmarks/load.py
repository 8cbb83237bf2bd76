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
6. (not fake) deadline: requests whose deadline ends long before their max_tokens; the tokens the engine made after
   each cancel (benchmarks/deadline_probe.py; target: at most one decoding step per cancelled request).

A replica killed mid-load is benchmarks/fault.py. Prints each figure with what it is measured against, and writes JSON with every count.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _platform import KEYS, ROOT, WEIGHTS, Load, Outcome, gauges, of, platform_env, start, stop, summary, write_profiles
from deadline_probe import deadline_probe, describe


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
        if engine != "fake":
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
        while gauges((await load.client.get("/metrics")).text)["replicas"] > 0:
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
