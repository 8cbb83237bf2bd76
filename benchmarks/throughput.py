"""Requests per second and latency of each task through the running platform's HTTP API (127.0.0.1 only).

Start the platform first (`make run`), then: `python benchmarks/throughput.py [--requests 400] [--concurrency 1 8 32]`.
Texts: BANKING77 test utterances (classify-intent) and Presidio synthetic texts (redact), read from ../shared/data.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import hashlib
import json
import os
import platform
import statistics
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
KEYS = {"northbank": "sb-demo-northbank-7f3c9a", "shopright": "sb-demo-shopright-2b81d4"}


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def workloads() -> dict[str, tuple[str, str, list[str], Path]]:
    banking = DATA / "banking77" / "test.csv"
    synth = DATA / "presidio_synth" / "synth_dataset_v2.json"
    utterances = [row["text"] for row in csv.DictReader(banking.open())]
    pii_texts = [r["full_text"] for r in json.loads(synth.read_text())]
    return {
        "classify-intent": ("/v1/tasks/classify-intent", KEYS["northbank"], utterances, banking),
        "redact": ("/v1/tasks/redact", KEYS["shopright"], pii_texts, synth),
    }


async def run_level(client: httpx.AsyncClient, path: str, key: str, texts: list[str], total: int, concurrency: int) -> dict:
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    counter = iter(range(total))

    async def worker() -> None:
        for i in counter:
            started = time.perf_counter()
            r = await client.post(path, json={"text": texts[i % len(texts)]}, headers={"Authorization": f"Bearer {key}"})
            latencies.append(time.perf_counter() - started)
            statuses[r.status_code] = statuses.get(r.status_code, 0) + 1

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    q = statistics.quantiles(latencies, n=100)
    return {"concurrency": concurrency, "requests": total, "rps": round(total / elapsed, 1),
            "p50_ms": round(q[49] * 1000, 1), "p95_ms": round(q[94] * 1000, 1), "p99_ms": round(q[98] * 1000, 1),
            "statuses": statuses}


async def main_async(args: argparse.Namespace) -> dict:
    results: dict = {"machine": {"cpu": _cpu(), "cores": os.cpu_count(), "python": platform.python_version()},
                     "base": args.base, "tasks": {}, "data": {}}
    async with httpx.AsyncClient(base_url=args.base, timeout=60, limits=httpx.Limits(max_connections=256)) as client:
        (await client.get("/readyz")).raise_for_status()
        for task, (path, key, texts, source) in workloads().items():
            if args.tasks and task not in args.tasks:
                continue
            results["data"][source.name] = sha256(source)
            await run_level(client, path, key, texts, min(20, args.requests), 4)  # warm-up
            results["tasks"][task] = [await run_level(client, path, key, texts, args.requests, c) for c in args.concurrency]
    return results


def _cpu() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", default="http://127.0.0.1:8000")
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--tasks", nargs="*", help="only these tasks")
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "throughput.json")
    args = parser.parse_args()
    if not args.base.startswith(("http://127.", "http://localhost", "http://[::1]")):
        parser.error("this benchmark only targets the local machine")
    results = asyncio.run(main_async(args))
    print(f"machine: {results['machine']['cpu']} x{results['machine']['cores']}; data sha256: {results['data']}")
    print(f"{'task':16} {'conc':>4} {'req/s':>7} {'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7}  statuses")
    for task, levels in results["tasks"].items():
        for r in levels:
            print(f"{task:16} {r['concurrency']:>4} {r['rps']:>7} {r['p50_ms']:>7} {r['p95_ms']:>7} {r['p99_ms']:>7}  {r['statuses']}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    print(f"written: {args.out}")


if __name__ == "__main__":
    main()
