"""Render the Grafana dashboard's panels to a PNG from a real local run (no Grafana needed).

Drives a bounded mixed load against the running platform on 127.0.0.1 (redact, classify-intent for two tenants,
summarize, and some requests with a wrong key), scrapes `/metrics` every `--interval` seconds, reads replica counts from
Ray Serve, and draws the same six panels as charts/switchboard/dashboards/switchboard.json with the same formulas
(rates from counters, quantiles from histogram buckets).
`make run` in one shell, then: `python benchmarks/render_dashboard.py [--seconds 90] [--out docs/dashboard.png]`
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import random
import time
from collections import defaultdict
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
KEYS = {"northbank": "sb-demo-northbank-7f3c9a", "shopright": "sb-demo-shopright-2b81d4"}


def parse_metrics(text: str) -> dict[tuple[str, frozenset], float]:
    from prometheus_client.parser import text_string_to_metric_families

    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return out


async def load(base: str, seconds: float) -> None:
    banking = [row["text"] for row in csv.DictReader((DATA / "banking77" / "test.csv").open())]
    pii = [r["full_text"] for r in json.loads((DATA / "presidio_synth" / "synth_dataset_v2.json").read_text())]
    rng = random.Random(7)
    deadline = time.monotonic() + seconds

    async def worker(client: httpx.AsyncClient, i: int) -> None:
        while time.monotonic() < deadline:
            roll = rng.random()
            if roll < 0.45:
                path, key, body = "/v1/tasks/classify-intent", KEYS["northbank"], {"text": rng.choice(banking)}
            elif roll < 0.8:
                path, key, body = "/v1/tasks/redact", KEYS["shopright"], {"text": rng.choice(pii)}
            elif roll < 0.9:
                path, key, body = "/v1/tasks/classify-intent", KEYS["shopright"], {"text": rng.choice(banking)}
            elif roll < 0.95 and i == 0:
                path, key, body = "/v1/tasks/summarize", KEYS["shopright"], {"transcript": f"Customer: {rng.choice(banking)}", "max_tokens": 16}
            else:
                path, key, body = "/v1/tasks/redact", "sb-wrong-key", {"text": "x"}
            await client.post(path, json=body, headers={"Authorization": f"Bearer {key}"})

    async with httpx.AsyncClient(base_url=base, timeout=60) as client:
        await asyncio.gather(*(worker(client, i) for i in range(8)))


async def scrape(base: str, seconds: float, interval: float) -> list[tuple[float, dict, dict]]:
    import ray
    from ray import serve

    ray.init(address="auto", logging_level="error", log_to_driver=False)
    points = []
    started = time.monotonic()
    async with httpx.AsyncClient(base_url=base, timeout=10) as client:
        while time.monotonic() - started < seconds + 2 * interval:
            metrics = parse_metrics((await client.get("/metrics")).text)
            status = serve.status().applications.get("switchboard")
            replicas = {name: sum(d.replica_states.get(s, 0) for s in ("RUNNING",))
                        for name, d in (status.deployments.items() if status else [])}
            points.append((time.monotonic() - started, metrics, replicas))
            await asyncio.sleep(interval)
    ray.shutdown()
    return points


def series(points, name, by: tuple[str, ...], where=lambda labels: True):
    out = defaultdict(list)
    for t, metrics, _ in points:
        sums = defaultdict(float)
        for (metric, labels), value in metrics.items():
            labels = dict(labels)
            if metric == name and where(labels):
                sums[tuple(labels.get(k, "") for k in by)] += value
        for key, value in sums.items():
            out[key].append((t, value))
    return out


def rates(points, name, by, where=lambda labels: True):
    out = {}
    for key, values in series(points, name, by, where).items():
        out[key] = [(t1, (v1 - v0) / (t1 - t0)) for (t0, v0), (t1, v1) in zip(values, values[1:]) if t1 > t0]
    return out


def quantile(points, q: float):
    """histogram_quantile over per-interval bucket increases, per task."""
    buckets = series(points, "switchboard_request_duration_seconds_bucket", ("task", "le"))
    tasks = {task for task, _ in buckets}
    out = {}
    for task in tasks:
        les = sorted((float(le), vals) for (t, le), vals in buckets.items() if t == task)
        line = []
        for i in range(1, min(len(v) for _, v in les)):
            increases = [(le, vals[i][1] - vals[i - 1][1]) for le, vals in les]
            total = increases[-1][1]
            if total <= 0:
                continue
            line.append((les[0][1][i][0], _interpolate(increases, q * total)))
        out[(task,)] = line
    return out


def _interpolate(cumulative: list[tuple[float, float]], rank: float) -> float:
    """Prometheus' histogram_quantile: linear interpolation inside the bucket that holds the rank."""
    lower_bound, lower_count = 0.0, 0.0
    for upper_bound, count in cumulative:
        if count >= rank:
            if upper_bound == float("inf"):
                return lower_bound
            width = count - lower_count
            return lower_bound + (upper_bound - lower_bound) * ((rank - lower_count) / width if width else 1.0)
        lower_bound, lower_count = upper_bound, count
    return lower_bound


def draw(points, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(3, 2, figsize=(15, 11))
    panels = [
        ("Latency per task (p50 / p95)", "seconds",
         {**{(f"p50 {k[0]}",): v for k, v in quantile(points, 0.5).items()},
          **{(f"p95 {k[0]}",): v for k, v in quantile(points, 0.95).items()}}),
        ("Requests per second by task and status", "req/s", rates(points, "switchboard_requests_total", ("task", "status"))),
        ("Queue depth: requests in flight per task", "requests", series(points, "switchboard_inflight_requests", ("task",))),
        ("Replicas per deployment", "replicas",
         {(name,): [(t, r.get(name, 0)) for t, _, r in points] for name in sorted({n for _, _, r in points for n in r})}),
        ("Tokens per second by tenant", "tokens/s", rates(points, "switchboard_tokens_total", ("tenant", "direction"))),
        ("Rejections per tenant and reason", "req/s", rates(points, "switchboard_rejected_requests_total", ("tenant", "reason"))),
    ]
    for ax, (title, unit, lines) in zip(axes.flat, panels):
        for key, values in sorted(lines.items()):
            if values:
                ax.plot([t for t, _ in values], [v for _, v in values], label=" ".join(key))
        ax.set_title(title)
        ax.set_ylabel(unit)
        ax.set_xlabel("seconds into the run")
        ax.grid(alpha=0.3)
        if lines:
            ax.legend(fontsize=7, loc="upper left")
    fig.suptitle("Switchboard dashboard, rendered from a local run (2-core machine, sample tenants)")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=90)


async def main_async(args) -> list:
    scraper = asyncio.create_task(scrape(args.base, args.seconds, args.interval))
    await asyncio.sleep(args.interval)
    await load(args.base, args.seconds)
    return await scraper


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", default="http://127.0.0.1:8000")
    parser.add_argument("--seconds", type=float, default=90)
    parser.add_argument("--interval", type=float, default=3)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "dashboard.png")
    args = parser.parse_args()
    if not args.base.startswith(("http://127.", "http://localhost")):
        parser.error("this script only targets the local machine")
    points = asyncio.run(main_async(args))
    draw(points, args.out)
    print(f"{len(points)} scrapes over {args.seconds:.0f} s; written: {args.out}")


if __name__ == "__main__":
    main()
