"""Router overhead of tracing: off, on at 1 % sampling, on at 100 %, measured side by side on this machine.

Each mode runs in its own process (an OpenTelemetry provider is set once per process): the real router app and task
service in-process over httpx's ASGI transport, the deterministic FakeEngine for summarize, redaction off, spans
exported through a BatchSpanProcessor to an exporter that drops them (so what is measured is the cost of making spans).
`python benchmarks/tracing_overhead.py [--requests 2000]`
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
MODES = {"off": None, "on-1%": 0.01, "on-100%": 1.0}


def run_mode(ratio: float | None, requests: int) -> dict:
    import httpx
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
    from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

    from serving.engines.fake import FakeEngine
    from serving.profiles import FolderProfileSource, ProfileRegistry, approximate_counter
    from serving.replica.local_backend import LocalBackend
    from serving.replica.runner import TaskRunner
    from serving.router import RouterContext, create_app
    from serving.settings import Settings

    class Drop(SpanExporter):
        def export(self, spans):
            return SpanExportResult.SUCCESS

    if ratio is not None:
        provider = TracerProvider(sampler=ParentBased(TraceIdRatioBased(ratio)))
        provider.add_span_processor(BatchSpanProcessor(Drop()))
        trace.set_tracer_provider(provider)
    folder = Path(tempfile.mkdtemp())
    text = (ROOT / "manifests" / "samples" / "shopright.yaml").read_text()
    (folder / "shopright.yaml").write_text(text.replace("    mode: placeholder", "    mode: placeholder\n    applyToTasks: false"))
    registry = ProfileRegistry(approximate_counter)
    backend = LocalBackend(TaskRunner(), FakeEngine(batch_wait_s=0))
    app = create_app(RouterContext(Settings(profiles_dir=folder), registry, FolderProfileSource(folder, registry), backend))
    body = {"turns": [{"speaker": "customer", "text": "my parcel never came, can you help"}], "max_tokens": 8}
    headers = {"Authorization": "Bearer sb-demo-shopright-2b81d4"}

    async def main() -> list[float]:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://router") as client:
                for _ in range(100):  # warm-up
                    await client.post("/v1/tasks/summarize", json=body, headers=headers)
                latencies = []
                for _ in range(requests):
                    started = time.perf_counter()
                    r = await client.post("/v1/tasks/summarize", json=body, headers=headers)
                    latencies.append(time.perf_counter() - started)
                    assert r.status_code == 200, r.text
                return latencies

    latencies = asyncio.run(main())
    q = statistics.quantiles(latencies, n=100)
    return {"requests": requests, "rps": round(requests / sum(latencies), 1), "p50_ms": round(q[49] * 1000, 3),
            "p99_ms": round(q[98] * 1000, 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--mode", choices=list(MODES), help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "tracing_overhead.json")
    args = parser.parse_args()
    if args.mode:
        print(json.dumps(run_mode(MODES[args.mode], args.requests)))
        return
    results = {}
    for mode in MODES:
        out = subprocess.run([sys.executable, __file__, "--mode", mode, "--requests", str(args.requests)],
                             check=True, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
        results[mode] = json.loads(out.stdout.strip().splitlines()[-1])
    base = results["off"]["p50_ms"]
    print(f"machine: {platform.processor() or platform.machine()} x{os.cpu_count()}, python {platform.python_version()}")
    print(f"{'mode':8} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'p50 added':>10}")
    for mode, r in results.items():
        print(f"{mode:8} {r['rps']:>8} {r['p50_ms']:>8} {r['p99_ms']:>8} {r['p50_ms'] - base:>+10.3f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
