"""Router overhead: the full Switchboard router against a bare Ray Serve deployment, both on the same FakeEngine.

    python benchmarks/router_overhead.py [--port 8102] [--requests 1000] [--concurrency 16] [--out results/router_overhead.json]

One local Ray instance, one Serve HTTP proxy on `--port` (127.0.0.1), two applications side by side:

- `switchboard` at `/`: `serving.app.build_app` with the fake engine (SWITCHBOARD_MODELS__GENERATOR_ENGINE
  =fake): router deployment (auth by API key, per-tenant admission, profile lookup, prompt composition, metrics)
  dispatching through a handle to the `generate` deployment. Requests: POST /v1/tasks/summarize as the sample tenant
  shopright, whose profile is copied to a temporary folder with `redaction.applyToTasks: false` (redaction off) and
  request limits high enough that admission (still checked on every request) answers no 429.
- `bare` at `/bare`: one Ray Serve deployment holding a FakeEngine with the same options, answering the same JSON
  body (the turns as chat messages, max_tokens) straight from the engine.
- `forward` at `/forward`: the floor of any router on Ray Serve. A deployment that does nothing but read the body and
  pass the messages through a handle (over the same gRPC transport the router uses, `_by_reference=False`) to a
  second deployment holding the same FakeEngine: the router's two hops, with none of its code. If this arm is below
  the throughput target against `bare`, no router built as a Serve deployment in front of task deployments reaches it.

Both engines answer at once (no simulated latency) and batch with `batch_wait_s` 0 (the router's generate deployment
is started with SWITCHBOARD_DEPLOYMENTS__GENERATE__BATCH_WAIT_S=0), so what differs is the router and its extra hop.
Latency: requests one at a time, alternating blocks of 50 between the two (so a load change on this shared machine
hits both); throughput: `--concurrency` requests in flight, alternating blocks too. Reports p50/p99 of each and the
difference, and the throughput ratio router/bare. Also the CPU time each Ray process of this run (found under this
process in /proc: the proxy, the controller, the router, generate and bare replicas) spent per request during the
one-at-a-time blocks: on a shared machine latency mostly measures the other jobs, CPU per request much less so.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _bench import (  # noqa: E402
    KEYS, RESULTS, ROOT, machine, print_provenance, quantiles_ms, raise_limits, sha256, write_result,
)

sys.path.insert(0, str(ROOT))
BODY = {"turns": [{"speaker": "customer", "text": "my parcel never came, can you help"}], "max_tokens": 8}
BLOCK = 50


def profiles_folder() -> Path:
    folder = Path(tempfile.mkdtemp(prefix="sb-overhead-"))
    text = (ROOT / "manifests" / "samples" / "shopright.yaml").read_text()
    text = text.replace("    mode: placeholder", "    mode: placeholder\n    applyToTasks: false")
    (folder / "shopright.yaml").write_text(raise_limits(text))
    return folder


def bare_deployment(batch_size: int, batch_wait_s: float):
    from ray import serve
    from starlette.requests import Request
    from starlette.responses import JSONResponse

    @serve.deployment(name="bare", max_ongoing_requests=256, ray_actor_options={"num_cpus": 0.1})
    class Bare:
        def __init__(self):
            from serving.engines.fake import FakeEngine

            self.engine = FakeEngine(max_batch_size=batch_size, batch_wait_s=batch_wait_s)

        async def __call__(self, request: Request) -> JSONResponse:
            from serving.engines.base import GenerationRequest, SamplingParams

            body = await request.json()
            roles = {"customer": "user", "agent": "assistant"}
            messages = [{"role": roles[t["speaker"]], "content": t["text"]} for t in body["turns"]]
            result = await self.engine.generate(GenerationRequest(messages=messages,
                                                                  sampling=SamplingParams(max_tokens=body["max_tokens"])))
            return JSONResponse({"summary": result.text, "finish_reason": result.finish_reason,
                                 "usage": {"tokens_in": result.tokens_in, "tokens_out": result.tokens_out}})

    return Bare.bind()


def forward_deployment(batch_size: int, batch_wait_s: float):
    from ray import serve
    from starlette.requests import Request
    from starlette.responses import JSONResponse

    @serve.deployment(name="forward-engine", max_ongoing_requests=256, ray_actor_options={"num_cpus": 0.1})
    class ForwardEngine:
        def __init__(self):
            from serving.engines.fake import FakeEngine

            self.engine = FakeEngine(max_batch_size=batch_size, batch_wait_s=batch_wait_s)

        async def generate(self, messages: list[dict], max_tokens: int) -> dict:
            from serving.engines.base import GenerationRequest, SamplingParams

            result = await self.engine.generate(GenerationRequest(messages=messages,
                                                                  sampling=SamplingParams(max_tokens=max_tokens)))
            return {"text": result.text, "finish_reason": result.finish_reason, "tokens_in": result.tokens_in,
                    "tokens_out": result.tokens_out}

    @serve.deployment(name="forward", max_ongoing_requests=256, ray_actor_options={"num_cpus": 0.1})
    class Forward:
        def __init__(self, engine):
            self.engine = engine.options(_by_reference=False)

        async def __call__(self, request: Request) -> JSONResponse:
            body = await request.json()
            roles = {"customer": "user", "agent": "assistant"}
            messages = [{"role": roles[t["speaker"]], "content": t["text"]} for t in body["turns"]]
            result = await self.engine.generate.remote(messages, body["max_tokens"])
            return JSONResponse({"summary": result["text"], "finish_reason": result["finish_reason"],
                                 "usage": {"tokens_in": result["tokens_in"], "tokens_out": result["tokens_out"]}})

    return Forward.bind(ForwardEngine.bind())


def start(port: int, folder: Path):
    import ray
    from ray import serve

    from serving.app import build_app
    from serving.settings import load_settings

    os.environ["SWITCHBOARD_MODELS__GENERATOR_ENGINE"] = "fake"
    os.environ["SWITCHBOARD_DEPLOYMENTS__GENERATE__BATCH_WAIT_S"] = "0"
    settings = load_settings(port=port, profiles_dir=folder)
    ray.init(address="local", include_dashboard=False, logging_level="error", log_to_driver=False)  # never join another
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    serve.run(build_app(settings), name="switchboard", route_prefix="/", blocking=False)
    generate = settings.deployments.generate
    serve.run(bare_deployment(generate.batch_size, generate.batch_wait_s), name="bare", route_prefix="/bare",
              blocking=False)
    serve.run(forward_deployment(generate.batch_size, generate.batch_wait_s), name="forward",
              route_prefix="/forward", blocking=False)
    return settings


async def wait_ready(client, timeout_s: float = 300) -> None:
    import httpx

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            ready = (await client.get("/readyz")).status_code == 200
            bare = ready and (await client.post("/bare", json=BODY)).status_code == 200
            if bare and (await client.post("/forward", json=BODY)).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        await asyncio.sleep(1)
    raise RuntimeError("router or bare deployment not ready")


PROCESSES = {"ProxyActor": "proxy", "ServeController": "controller", "router": "router", "generate": "generate",
             "bare": "bare", "forward-engine": "forward-engine", "forward": "forward"}
OWN = {"router": ("proxy", "controller", "router", "generate"), "bare": ("proxy", "controller", "bare"),
       "forward": ("proxy", "controller", "forward", "forward-engine")}


def ray_processes() -> dict[str, int]:
    """pid of each Ray process this run started (descendants of this process, by their `ray::` title)."""
    rows = [line.split(None, 2) for line in subprocess.run(["ps", "-eo", "pid,ppid,args"], capture_output=True,
                                                            text=True).stdout.splitlines()[1:]]
    parent = {int(r[0]): int(r[1]) for r in rows}

    def ours(pid: int) -> bool:
        while pid > 1:
            if pid == os.getpid():
                return True
            pid = parent.get(pid, 1)
        return False

    found = {}
    for r in rows:
        title = r[2].split()[0] if len(r) > 2 and r[2].startswith("ray::") else ""
        actor = title.removeprefix("ray::")
        if actor.startswith("ServeReplica:"):  # ray::ServeReplica:APP:DEPLOYMENT[.method]
            actor = actor.rsplit(":", 1)[-1].split(".")[0]
        if actor in PROCESSES and ours(int(r[0])):
            found[PROCESSES[actor]] = int(r[0])
    return found


def cpu_s(pids: dict[str, int]) -> dict[str, float]:
    """User + system CPU seconds of each process so far (0 where it is gone)."""
    out = {}
    for name, pid in pids.items():
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            out[name] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, IndexError, ValueError):
            out[name] = 0.0
    return out


async def measure(port: int, requests: int, concurrency: int) -> dict:
    import httpx

    headers = {"Authorization": f"Bearer {KEYS['shopright']}"}
    targets = {"router": ("/v1/tasks/summarize", headers), "bare": ("/bare", {}), "forward": ("/forward", {})}
    latencies = {name: [] for name in targets}
    elapsed = {name: 0.0 for name in targets}
    statuses = {name: {} for name in targets}
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60,
                                 limits=httpx.Limits(max_connections=concurrency + 8)) as client:
        await wait_ready(client)

        async def send(name: str, record: bool = True) -> None:
            path, h = targets[name]
            started = time.perf_counter()
            r = await client.post(path, json=BODY, headers=h)
            if record:
                latencies[name].append(time.perf_counter() - started)
                statuses[name][r.status_code] = statuses[name].get(r.status_code, 0) + 1

        for name in targets:  # warm-up
            for _ in range(100):
                await send(name, record=False)
        order, pids = list(targets), ray_processes()
        cpu = {name: dict.fromkeys(pids, 0.0) for name in targets}
        for block in range(max(1, requests // BLOCK)):
            for name in order if block % 2 == 0 else order[::-1]:
                before = cpu_s(pids)
                for _ in range(BLOCK):
                    await send(name)
                for process, seconds in cpu_s(pids).items():
                    cpu[name][process] += seconds - before[process]
        sequential = {name: quantiles_ms(v) for name, v in latencies.items()}
        cpu_ms = {name: {p: round(s / max(1, len(latencies[name])) * 1000, 3) for p, s in cpu[name].items()}
                  for name in targets}
        cpu_ms = {name: {**per, "path_total": round(sum(per.get(p, 0) for p in OWN[name]), 3)}
                  for name, per in cpu_ms.items()}
        for block in range(max(1, requests // (BLOCK * 4))):
            for name in order if block % 2 == 0 else order[::-1]:
                started = time.perf_counter()
                queue = iter(range(BLOCK * 4))

                async def worker(name=name, queue=queue) -> None:
                    for _ in queue:
                        await send(name, record=False)

                await asyncio.gather(*(worker() for _ in range(concurrency)))
                elapsed[name] += time.perf_counter() - started
        blocks = max(1, requests // (BLOCK * 4))
        throughput = {name: round(blocks * BLOCK * 4 / elapsed[name], 1) for name in targets}
    return {"sequential": sequential, "throughput_rps": throughput, "statuses": statuses,
            "throughput_requests": blocks * BLOCK * 4, "cpu_ms_per_request": cpu_ms}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8102)
    parser.add_argument("--requests", type=int, default=1000, help="requests per side, one at a time (and in flight)")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--out", type=Path, default=RESULTS / "router_overhead.json")
    args = parser.parse_args(argv)
    folder = profiles_folder()
    files = {str(ROOT / "manifests" / "samples" / "shopright.yaml"): sha256(ROOT / "manifests" / "samples" / "shopright.yaml")}
    info = machine()
    print_provenance("router overhead (full router vs bare Ray Serve, FakeEngine)", files, info)
    import ray
    from ray import serve

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    try:
        start(args.port, folder)
        result = asyncio.run(measure(args.port, args.requests, args.concurrency))
    finally:
        serve.shutdown()
        ray.shutdown()
    seq, rps = result["sequential"], result["throughput_rps"]
    added = {"p50_ms": round(seq["router"]["p50_ms"] - seq["bare"]["p50_ms"], 2),
             "p99_ms": round(seq["router"]["p99_ms"] - seq["bare"]["p99_ms"], 2)}
    ratio = round(rps["router"] / rps["bare"], 3)
    print(f"{'path':8} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'req/s @' + str(args.concurrency):>10}")
    for name in ("router", "bare", "forward"):
        print(f"{name:8} {seq[name]['p50_ms']:>8} {seq[name]['p95_ms']:>8} {seq[name]['p99_ms']:>8} {rps[name]:>10}")
    print(f"router adds p50 {added['p50_ms']:+} ms, p99 {added['p99_ms']:+} ms; throughput ratio router/bare {ratio}")
    floor = {"p50_ms": round(seq["forward"]["p50_ms"] - seq["bare"]["p50_ms"], 2),
             "p99_ms": round(seq["forward"]["p99_ms"] - seq["bare"]["p99_ms"], 2),
             "throughput_ratio": round(rps["forward"] / rps["bare"], 3)}
    print(f"a bare forwarder (the second hop, no router code) adds p50 {floor['p50_ms']:+} ms, p99 {floor['p99_ms']:+} ms; "
          f"throughput ratio forward/bare {floor['throughput_ratio']}")
    cpu = result["cpu_ms_per_request"]
    for name in ("router", "bare", "forward"):
        parts = ", ".join(f"{p} {cpu[name].get(p, 0)}" for p in OWN[name])
        print(f"CPU ms per request, {name} path: {cpu[name]['path_total']} ({parts})")
    if cpu["bare"]["path_total"]:
        print(f"CPU per request router/bare: {cpu['router']['path_total'] / cpu['bare']['path_total']:.2f}x "
              f"(load average at the end {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")
    write_result(args.out, {"benchmark": "router_overhead", "files_sha256": files, "machine": info, "port": args.port,
                            "concurrency": args.concurrency, **result, "added": added, "throughput_ratio": ratio, "second_hop_floor": floor})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
