"""Requests per second and latency of each task through the running platform's HTTP API (127.0.0.1 only).

Start the platform first (`make run`), then: `python benchmarks/throughput.py [--requests 400] [--concurrency 1 8 32]`
(`--base-url http://127.0.0.1:8200` for a platform on another port).
Texts: BANKING77 test utterances (classify-intent), Presidio synthetic texts (redact), and Bitext customer messages
with the first sentence of the dataset's agent response (summarize, score-quality, reply), read from ../shared/data.
Generative tasks use `--gen-requests` and `--max-tokens`, since a CPU model answers a few per second at best;
score-quality uses the platform's default max_tokens unless `--score-max-tokens` is given (its JSON needs the room).
A level never sends fewer requests than its concurrency. `rps` counts every answer, `ok_rps` the 200s only.
`--engine` only labels the results (the platform's engine is set where it starts: SWITCHBOARD_MODELS__GENERATOR_ENGINE).
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _bench import DATA, KEYS, RESULTS, cpu_model, sha256  # noqa: E402


def workloads(max_tokens: int, score_max_tokens: int | None = None) -> dict[str, tuple[str, str, list[dict], Path]]:
    banking = DATA / "banking77" / "test.csv"
    synth = DATA / "presidio_synth" / "synth_dataset_v2.json"
    bitext = DATA / "bitext" / "bitext_customer_support_sample_4514.csv"
    utterances = [{"text": row["text"]} for row in csv.DictReader(banking.open())]
    pii_texts = [{"text": r["full_text"]} for r in json.loads(synth.read_text())]
    conversations = [{"turns": [{"speaker": "customer", "text": row["instruction"]},
                                {"speaker": "agent", "text": row["response"].split(".")[0][:300] + "."}],
                      "max_tokens": max_tokens} for row in csv.DictReader(bitext.open())]
    return {
        "classify-intent": ("/v1/tasks/classify-intent", KEYS["northbank"], utterances, banking),
        "redact": ("/v1/tasks/redact", KEYS["shopright"], pii_texts, synth),
        "summarize": ("/v1/tasks/summarize", KEYS["shopright"], conversations, bitext),
        "reply": ("/v1/tasks/reply", KEYS["shopright"], [{**c, "turns": c["turns"][:1]} for c in conversations], bitext),
        "score-quality": ("/v1/tasks/score-quality", KEYS["shopright"], [_score_body(c, score_max_tokens) for c in conversations],
                          bitext),
    }


GENERATIVE = ("summarize", "reply", "score-quality")


def _score_body(conversation: dict, max_tokens: int | None) -> dict:
    body = {k: v for k, v in conversation.items() if k != "max_tokens"}
    return {**body, "max_tokens": max_tokens} if max_tokens else body


async def run_level(client: httpx.AsyncClient, path: str, key: str, bodies: list[dict], total: int, concurrency: int) -> dict:
    latencies: list[float] = []
    tokens_out: list[int] = []
    statuses: dict[int | str, int] = {}
    total = max(total, concurrency)
    counter = iter(range(total))

    async def worker() -> None:
        for i in counter:
            started = time.perf_counter()
            r = await client.post(path, json=bodies[i % len(bodies)], headers={"Authorization": f"Bearer {key}"})
            if r.status_code == 200:
                tokens_out.append(r.json().get("usage", {}).get("tokens_out", 0))
            latencies.append(time.perf_counter() - started)
            statuses[r.status_code] = statuses.get(r.status_code, 0) + 1

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    q = statistics.quantiles(latencies, n=100)
    ok = statuses.get(200, 0)
    return {"concurrency": concurrency, "requests": total, "rps": round(total / elapsed, 3),
            "ok_rps": round(ok / elapsed, 3), "failed_share": round(1 - ok / total, 3), "seconds": round(elapsed, 1),
            "p50_ms": round(q[49] * 1000, 1), "p95_ms": round(q[94] * 1000, 1), "p99_ms": round(q[98] * 1000, 1),
            "tokens_out_per_s": round(sum(tokens_out) / elapsed, 1), "statuses": statuses}


async def main_async(args: argparse.Namespace) -> dict:
    results: dict = {"benchmark": "throughput", "machine": {"cpu": cpu_model(), "cores": os.cpu_count(),
                                 "python": platform.python_version(), "loadavg_before": os.getloadavg()},
                     "base": args.base, "engine": args.engine, "max_tokens": args.max_tokens,
                     "score_max_tokens": args.score_max_tokens, "tasks": {}, "data": {}}
    async with httpx.AsyncClient(base_url=args.base, timeout=args.timeout, limits=httpx.Limits(max_connections=256)) as client:
        (await client.get("/readyz")).raise_for_status()
        for task, (path, key, bodies, source) in workloads(args.max_tokens, args.score_max_tokens).items():
            if args.tasks and task not in args.tasks:
                continue
            results["data"][source.name] = sha256(source)
            generative = task in GENERATIVE
            total = args.gen_requests if generative else args.requests
            levels = args.gen_concurrency if generative else args.concurrency
            await run_level(client, path, key, bodies, 2 if generative else 20, 2 if generative else 4)  # warm-up
            results["tasks"][task] = [await run_level(client, path, key, bodies, total, c) for c in levels]
    # Other processes on the machine share its cores: the load around the run says how much they took.
    results["machine"]["loadavg_after"] = os.getloadavg()
    return results



def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", "--base-url", "--url", dest="base", default="http://127.0.0.1:8000",
                        help="the platform's address (local only), e.g. http://127.0.0.1:8200")
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--gen-requests", type=int, default=32, help="requests per level for generative tasks")
    parser.add_argument("--gen-concurrency", type=int, nargs="+", default=[1, 16])
    parser.add_argument("--max-tokens", type=int, default=32, help="max_tokens of generative requests")
    parser.add_argument("--score-max-tokens", type=int, default=None, help="max_tokens of score-quality (default: the platform's)")
    parser.add_argument("--engine", default="transformers", help="label only: the engine the platform was started with")
    parser.add_argument("--timeout", type=float, default=600, help="client timeout per request, seconds")
    parser.add_argument("--tasks", nargs="*", help="only these tasks")
    parser.add_argument("--out", type=Path, default=RESULTS / "throughput.json")
    args = parser.parse_args(argv)
    if not args.base.startswith(("http://127.", "http://localhost", "http://[::1]")):
        parser.error("this benchmark only targets the local machine")
    results = asyncio.run(main_async(args))
    machine = results["machine"]
    print(f"machine: {machine['cpu']} x{machine['cores']}; load average before {machine['loadavg_before']}, "
          f"after {machine['loadavg_after']}; data sha256: {results['data']}")
    print(f"{'task':16} {'conc':>4} {'req/s':>7} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'tok/s':>6}  statuses")
    for task, levels in results["tasks"].items():
        for r in levels:
            print(f"{task:16} {r['concurrency']:>4} {r['rps']:>7} {r['p50_ms']:>8} {r['p95_ms']:>8} {r['p99_ms']:>8} "
                  f"{r['tokens_out_per_s']:>6}  {r['statuses']}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    results["loadavg_end"] = list(os.getloadavg())
    args.out.write_text(json.dumps(results, indent=2))
    print(f"written: {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
