"""Utterances/s and latency of 32-utterance classify-intent requests through the running platform (issue 17 targets).

Usage: python benchmarks/intent_throughput.py [--requests 60] [--concurrency 1 2 4 8] [--batch 32] [--tenants ...]
       [--api http://127.0.0.1:8000 (a platform you started; else one is started on 127.0.0.1:8320)]
       [--out results/intent_throughput.json]

Each request is `{"texts": [32 BANKING77 test utterances]}` with NorthBank's taxonomy (77 intents). Two tenants:
  - `northbank` as shipped: its redaction policy runs on every utterance before the encoder (Presidio + spaCy);
  - `northbank-noredact` (started platform only): the same taxonomy with `redaction.applyToTasks: false`, so the
    figure is the classification path alone.
The started platform runs with the generative engine off (`none`: only redact and classify-intent are deployed) and
the tenants' request limits raised (admission still runs on every request). Target (issue 17): >= 500 utterances/s
on 2 cores, p95 < 200 ms for one 32-utterance request. Measured on a machine shared with other jobs: the load average
is printed before and after; read the figures with it. For the started platform each level also reports the CPU
milliseconds per utterance its processes spent, by role (router, redact and classify-intent replicas, proxy, the rest),
and the utterances/s that cost allows on the machine's cores when idle: a figure the other jobs do not distort.
The encoder runs as the platform's settings say (SWITCHBOARD_MODELS__EMBEDDING_PRECISION, ..._EMBEDDING_THREADS).
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import os
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _bench import DATA, KEYS, RESULTS, ROOT, Platform, machine, quantiles_ms, raise_limits, sha256, write_result

PORT = 8320
FAST_KEY = "sb-bench-northbank-noredact-5d1e"
TARGET_UTT_S, TARGET_P95_MS = 500, 200


def fast_tenant(northbank_yaml: str) -> str:
    """NorthBank's profile as another tenant that does not redact task inputs."""
    from serving.profiles import hash_api_key

    doc = yaml.safe_load(raise_limits(northbank_yaml))
    doc["metadata"]["name"] = doc["spec"]["tenantId"] = "northbank-noredact"
    doc["spec"]["apiKey"] = {"sha256": hash_api_key(FAST_KEY)}
    doc["spec"]["redaction"]["applyToTasks"] = False
    return yaml.safe_dump(doc, sort_keys=False)


def encoder_alone(batches: list[list[str]], requests: int) -> dict:
    """The same 32-utterance batches through an in-process IntentClassifier (no HTTP, Ray or redaction), one at a
    time, at this moment's load: what the platform adds on top of the engine."""
    from serving.intent import IntentClassifier, SentenceEmbedder
    from serving.profiles import load_documents
    from serving.settings import load_settings

    path = ROOT / "manifests" / "samples" / "northbank.yaml"
    [doc] = load_documents(path.read_text(encoding="utf-8"), str(path))
    models = load_settings().models  # the encoder the platform serves (SWITCHBOARD_MODELS__EMBEDDING_PRECISION ...)
    if models.embedding_threads:
        import torch

        torch.set_num_threads(models.embedding_threads)
    clf = IntentClassifier(SentenceEmbedder(models.embedding, precision=models.embedding_precision))
    clf.classify_batch(batches[0], doc.spec.intents)  # index built, warm
    latencies = []
    for i in range(requests):
        started = time.perf_counter()
        clf.classify_batch(batches[i % len(batches)], doc.spec.intents)
        latencies.append(time.perf_counter() - started)
    return {"utterances_per_s": round(requests * len(batches[0]) / sum(latencies), 1), "latency": quantiles_ms(latencies)}


def cpu_by_process(root_pid: int | None) -> dict[str, float]:
    """CPU seconds (user + system) so far of the platform's processes, by role: each Ray Serve replica by deployment
    name, the HTTP proxy, the controller, and the rest (driver, GCS, raylet) as `other`. Empty without a root."""
    import psutil

    if root_pid is None:
        return {}
    try:
        root = psutil.Process(root_pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return {}
    out: dict[str, float] = {}
    for proc in procs:
        try:
            times, cmd = proc.cpu_times(), " ".join(proc.cmdline()[:1])
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        role = ("replica " + cmd.split(":")[-1] if cmd.startswith("ray::ServeReplica") else
                "proxy" if cmd.startswith("ray::ProxyActor") else "controller" if cmd.startswith("ray::ServeController")
                else "other")
        out[role] = out.get(role, 0.0) + times.user + times.system
    return out


def cpu_per_utterance(before: dict[str, float], after: dict[str, float], utterances: int) -> dict:
    """CPU milliseconds per utterance by role over one level, and the utterances/s that many idle cores could
    sustain at that cost (the machine is shared: wall-clock figures measure the contention, this does not)."""
    spent = {role: after[role] - before.get(role, 0.0) for role in after}
    per = {role: round(1000 * cpu / max(1, utterances), 2) for role, cpu in sorted(spent.items()) if cpu > 0}
    total = sum(spent.values()) / max(1, utterances)
    cores = os.cpu_count() or 1
    return {"cpu_ms_per_utterance": per, "cpu_ms_per_utterance_total": round(1000 * total, 2),
            f"capacity_utterances_per_s_on_{cores}_idle_cores": round(cores / total, 1) if total else None}


async def level(client, key: str, batches: list[list[str]], requests: int, concurrency: int,
                root_pid: int | None = None) -> dict:
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    errors: dict[int, str] = {}
    tokens = 0
    queue = iter(range(requests))

    async def worker() -> None:
        nonlocal tokens
        for i in queue:
            started = time.perf_counter()
            r = await client.post("/v1/tasks/classify-intent", json={"texts": batches[i % len(batches)]},
                                  headers={"Authorization": f"Bearer {key}"})
            latencies.append(time.perf_counter() - started)
            statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
            if r.status_code != 200 and r.status_code not in errors:
                errors[r.status_code] = r.text[:300]  # why, once per status (the platform's error body)
            if r.status_code == 200:
                tokens += r.json()["usage"]["tokens_in"]

    cpu_before = cpu_by_process(root_pid)
    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    ok = statuses.get(200, 0)
    # Per utterance sent: a request that missed its deadline was still encoded by the replica.
    cpu = cpu_per_utterance(cpu_before, cpu_by_process(root_pid), requests * len(batches[0])) if root_pid else {}
    return {"concurrency": concurrency, "requests": requests, "statuses": statuses, "errors": errors,
            "seconds": round(elapsed, 2), **cpu, "loadavg": list(os.getloadavg()),
            "utterances_per_s": round(ok * len(batches[0]) / elapsed, 1), "latency": quantiles_ms(latencies),
            "tokens_in_per_utterance": round(tokens / max(1, ok * len(batches[0])), 1)}


async def measure(url: str, tenants: dict[str, str], batches, requests: int, levels: list[int],
                  root_pid: int | None = None) -> dict:
    import httpx

    out: dict = {}
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=httpx.Limits(max_connections=64)) as client:
        (await client.get("/readyz")).raise_for_status()
        for tenant, key in tenants.items():
            await level(client, key, batches, 8, 2)  # warm-up: index built, replicas awake
            out[tenant] = [await level(client, key, batches, max(requests, c), c, root_pid) for c in levels]
            for row in out[tenant]:
                print(f"{tenant:20} concurrency {row['concurrency']:3}: {row['utterances_per_s']:7.1f} utterances/s "
                      f"(target >= {TARGET_UTT_S}), p95 {row['latency']['p95_ms']} ms per {len(batches[0])}-utterance "
                      f"request (target < {TARGET_P95_MS}), p50 {row['latency']['p50_ms']} ms, {row['statuses']}, "
                      f"load {row['loadavg'][0]:.1f}", flush=True)
                if "cpu_ms_per_utterance" in row:
                    capacity = next(v for k, v in row.items() if k.startswith("capacity_"))
                    print(f"  CPU ms per utterance {row['cpu_ms_per_utterance_total']} {row['cpu_ms_per_utterance']}"
                          f" -> {capacity} utterances/s on {os.cpu_count()} idle cores", flush=True)
                for status, body in row["errors"].items():
                    print(f"  {status}: {body}", flush=True)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--api", default=None, help="a running platform (northbank sample tenant); else start one")
    parser.add_argument("--requests", type=int, default=60, help="requests per concurrency level")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--batch", type=int, default=32, help="utterances per request")
    parser.add_argument("--tenants", nargs="+", choices=["northbank-noredact", "northbank"],
                        default=["northbank-noredact", "northbank"], help="started platform: which tenants to measure")
    parser.add_argument("--out", type=Path, default=RESULTS / "intent_throughput.json")
    args = parser.parse_args(argv)
    path = DATA / "banking77" / "test.csv"
    texts = [row["text"] for row in csv.DictReader(path.open(newline="", encoding="utf-8"))]
    batches = [texts[i:i + args.batch] for i in range(0, len(texts) - args.batch + 1, args.batch)]
    info = machine()
    print(f"sha256 {sha256(path)}  {path}\nmachine: {info['cpu']} x{info['cores']}, load {info['loadavg']}", flush=True)
    result = {"benchmark": "intent_throughput", "machine": info, "batch": args.batch, "targets":
              {"utterances_per_s": TARGET_UTT_S, "p95_ms_per_request": TARGET_P95_MS}}
    alone = result["encoder_alone"] = encoder_alone(batches, min(args.requests, 30))
    print(f"encoder alone, in process: {alone['utterances_per_s']} utterances/s, p95 {alone['latency']['p95_ms']} ms "
          f"per {args.batch}-utterance batch", flush=True)
    if args.api:
        result["results"] = asyncio.run(measure(args.api, {"northbank": KEYS["northbank"]}, batches, args.requests,
                                                args.concurrency))
    else:
        with tempfile.TemporaryDirectory() as temp:
            for sample in sorted((ROOT / "manifests" / "samples").glob("*.yaml")):
                (Path(temp) / sample.name).write_text(raise_limits(sample.read_text()))
            (Path(temp) / "northbank-noredact.yaml").write_text(
                fast_tenant((ROOT / "manifests" / "samples" / "northbank.yaml").read_text()))
            env = {"SWITCHBOARD_MODELS__GENERATOR_ENGINE": "none", "SWITCHBOARD_PROFILES_DIR": temp}
            with Platform(PORT, env=env, log=RESULTS / "intent-throughput-platform.log") as platform:
                keys = {"northbank-noredact": FAST_KEY, "northbank": KEYS["northbank"]}
                tenants = {tenant: keys[tenant] for tenant in args.tenants}
                result["results"] = asyncio.run(measure(platform.url, tenants, batches, args.requests,
                                                        args.concurrency, platform.proc.pid if platform.proc else None))
                result["startup_s"] = platform.startup_s
    print(f"load average after: {list(os.getloadavg())} (2 cores shared with other jobs)")
    write_result(args.out, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
