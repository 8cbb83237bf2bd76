"""Runs every benchmark in sequence and writes results/<name>.json, results/REPORT.md and its PNG plots.

    python benchmarks/suite.py [--quick] [--engine transformers|vllm|fake] [--port 8100] [--url URL --profiles-dir DIR]
                               [--only NAME ...] [--out-dir results]

Order: the offline benchmarks (prompt economy, redaction), then the platform is started (`switchboard run` on
`--port`, 127.0.0.1, on a temporary copy of manifests/samples with request limits raised, since it measures capacity,
not quotas; engine from `--engine` passed as SWITCHBOARD_MODELS__GENERATOR_ENGINE) for the benchmarks that go through the HTTP API (intent, adherence,
throughput), stopped with SIGINT (anything it leaves is killed), then router overhead (its own Ray instance on
`--port + 2`), then the cost model over the results. `--url` uses an already-running platform instead (give its
profiles folder with `--profiles-dir` for the adherence benchmark, which adds a tenant there).

Each benchmark is its own process with a time limit; its output goes to the console and to results/logs/<name>.log.
A benchmark that fails (non-zero exit, time limit, platform not ready) is reported as failed in REPORT.md, and the
suite exits 1. `--quick` (under 5 minutes here) runs subsets, named in the report; the full mode takes under 30.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _bench import ROOT, Platform, kill_all, machine, raise_limits, session_members  # noqa: E402

BENCH = ROOT / "benchmarks"
PY = sys.executable


@dataclass
class Step:
    name: str
    script: str
    args: list[str]
    api: bool = False  # needs the running platform
    timeout_s: int = 600
    scope: str = ""  # what subset was run, for the report
    status: str = "pending"
    seconds: float | None = None
    detail: str = ""
    outputs: list[str] = field(default_factory=list)


def plan(args: argparse.Namespace, url: str, profiles_dir: Path | None, out: Path) -> list[Step]:
    q = args.quick
    j = lambda name: str(out / f"{name}.json")  # noqa: E731
    profiles = ["--profiles-dir", str(profiles_dir)] if profiles_dir else []
    intent = (["--limit", "300", "--train-per-label", "20", "--latency-n", "50", "--api-latency-n", "50",
               "--api-accuracy-n", "300"] if q else ["--api-latency-n", "200"])
    throughput_common = ["--base", url, "--engine", args.engine, "--concurrency", "1", "8", "32",
                         "--gen-concurrency", *(["1", "8"] if q else ["1", "8", "32"])]
    steps = [
        Step("prompt_economy", "prompt_economy.py", ["--out", j("prompt_economy")], timeout_s=120,
             scope="northbank profile; median inputs"),
        Step("redaction", "redaction.py", (["--limit", "200"] if q else []) + ["--out", j("redaction")],
             timeout_s=300 if q else 900, scope="first 200 of 1,500 texts" if q else "all 1,500 texts"),
        Step("intent", "intent_banking77.py", intent + ["--api", url, "--out", j("intent")], api=True,
             timeout_s=420 if q else 1200,
             scope=("first 300 test utterances; 20 train rows per label for the head, baselines and few-shot picks; "
                    "50 timed one at a time over HTTP, 300 scored over HTTP") if q else
             "3,080 test utterances, full train set; 200 timed one at a time over HTTP, all scored over HTTP"),
        Step("adherence", "adherence.py", ["--url", url, *profiles, "--out", j("adherence")]
             + (["--limit", "3"] if q else []), api=True, timeout_s=420 if q else 900,
             scope="the 3 unmodified conversations of 10" if q else "all 10 conversations (3 + 7 ablations)"),
        Step("throughput", "throughput.py", throughput_common + (
            ["--requests", "30", "--gen-requests", "4", "--max-tokens", "32",
             "--tasks", "redact", "classify-intent", "summarize"] if q else
            ["--requests", "200", "--gen-requests", "8", "--max-tokens", "64",
             "--tasks", "redact", "classify-intent", "summarize", "reply"]) + ["--out", j("throughput")],
             api=True, timeout_s=420 if q else 1200,
             scope=("redact/classify-intent 30 requests per level at 1, 8, 32; summarize at 1 and 8 only, "
                    "max(4, concurrency) requests, max_tokens 32; no reply or score-quality") if q else
             "redact/classify-intent 200 per level; summarize/reply max(8, concurrency) requests, max_tokens 64"),
    ]
    if not q:
        steps.append(Step("throughput_score", "throughput.py", throughput_common + [
            "--gen-requests", "4", "--tasks", "score-quality", "--out", j("throughput_score")], api=True,
            timeout_s=1200, scope="score-quality, max(4, concurrency) requests per level, the platform's max_tokens"))
    steps += [
        Step("router_overhead", "router_overhead.py", ["--port", str(args.port + 2), "--requests",
                                                       "300" if q else "2000", "--out", j("router_overhead")],
             timeout_s=300 if q else 600, scope=f"{300 if q else 2000} requests per side one at a time, and in flight"),
        Step("cost_model", "cost_model.py", ["--throughput", j("throughput"), "--prompts", j("prompt_economy"),
                                             "--adherence", j("adherence"), "--out", j("cost_model")], timeout_s=60,
             scope="from this run's throughput, prompt-economy and adherence results"),
    ]
    if args.only:
        steps = [s for s in steps if s.name in args.only]
    return steps


def run_step(step: Step, logs: Path) -> None:
    """One benchmark as a child process in its own session; its output is echoed and kept in logs/<name>.log; what it
    leaves running in that session when it ends (or when the suite is interrupted) is killed."""
    log = logs / f"{step.name}.log"
    if "--out" in step.args:  # a result left from an earlier run must not pass for this run's
        Path(step.args[step.args.index("--out") + 1]).unlink(missing_ok=True)
    started = time.monotonic()
    print(f"\n===== {step.name}: {step.script} {' '.join(step.args)}", flush=True)
    with log.open("w") as f:
        proc = subprocess.Popen([PY, str(BENCH / step.script), *step.args], cwd=ROOT, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, bufsize=1, start_new_session=True,
                                env={**os.environ, "PYTHONUNBUFFERED": "1"})
        timer = _Deadline(proc, step.timeout_s)
        try:
            for line in proc.stdout:
                f.write(line)
                if not line.startswith(("\x1b", "(", "Loading weights")):
                    sys.stdout.write(line)
            rc = proc.wait()
        finally:
            timer.cancel()
            left = kill_all([proc.pid, *session_members(proc.pid)], settle_s=1)
    step.seconds = round(time.monotonic() - started, 1)
    if timer.fired:
        step.status, step.detail = "failed", f"time limit of {step.timeout_s} s"
    elif rc != 0:
        lines = [line.strip() for line in log.read_text().splitlines() if line.strip().strip("^~")]
        step.status, step.detail = "failed", f"exit {rc}: " + (lines[-1] if lines else "no output")[-300:].replace("|", "/")
    else:
        step.status = "ok"
    if left:
        step.detail += f" (killed {left} leftover processes)"
    print(f"===== {step.name}: {step.status} in {step.seconds} s {step.detail}", flush=True)


class _Deadline:
    """Kills a child (and what it started) when it runs past its time limit."""

    def __init__(self, proc: subprocess.Popen, seconds: float):
        import threading

        self.fired = False
        self.proc = proc
        self.timer = threading.Timer(seconds, self._fire)
        self.timer.daemon = True
        self.timer.start()

    def _fire(self) -> None:
        self.fired = True
        kill_all([self.proc.pid, *session_members(self.proc.pid)], settle_s=0)

    def cancel(self) -> None:
        self.timer.cancel()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="subsets; under 5 minutes on 2 cores")
    parser.add_argument("--engine", default="transformers", choices=["transformers", "vllm", "fake"],
                        help="generator engine of the platform (SWITCHBOARD_MODELS__GENERATOR_ENGINE)")
    parser.add_argument("--port", type=int, default=8100, help="port of the platform the suite starts (+2: router overhead)")
    parser.add_argument("--url", default=None, help="use this running platform instead of starting one")
    parser.add_argument("--profiles-dir", type=Path, default=None, help="with --url: the folder that platform watches")
    parser.add_argument("--only", nargs="*", help="run only these benchmarks (by name)")
    parser.add_argument("--out-dir", type=Path, default=ROOT / "results")
    args = parser.parse_args(argv)
    out = args.out_dir.resolve()
    (out / "logs").mkdir(parents=True, exist_ok=True)
    started, info_start = time.monotonic(), machine()
    temp = None
    if args.url:
        url, profiles_dir = args.url, args.profiles_dir
    else:
        temp = Path(tempfile.mkdtemp(prefix="sb-bench-profiles-"))
        for sample in (ROOT / "manifests" / "samples").glob("*.yaml"):
            (temp / sample.name).write_text(raise_limits(sample.read_text()))
        url, profiles_dir = f"http://127.0.0.1:{args.port}", temp
    steps = plan(args, url, profiles_dir, out)
    platform: Platform | None = None
    platform_info: dict = {"url": url, "started_by_suite": not args.url, "engine": args.engine}
    try:
        for step in steps:
            if step.api and not args.url and platform is None and platform_info.get("error") is None:
                platform = _start_platform(args, out, temp, platform_info)
            if step.api and platform_info.get("error"):
                step.status, step.detail = "failed", f"platform not available: {platform_info['error']}"
                print(f"===== {step.name}: failed ({step.detail})")
                continue
            if not step.api and platform is not None:
                _stop_platform(platform, platform_info)
                platform = None
            run_step(step, out / "logs")
            if step.name == "throughput_score":
                _merge_throughput(out)
    finally:
        if platform is not None:
            _stop_platform(platform, platform_info)
        if temp:
            shutil.rmtree(temp, ignore_errors=True)
    wall = round(time.monotonic() - started, 1)
    suite = {"mode": "quick" if args.quick else "full", "engine": args.engine, "wall_s": wall,
             "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(time.time() - wall)),
             "machine_start": info_start, "loadavg_end": list(os.getloadavg()), "platform": platform_info,
             "steps": [asdict(s) for s in steps], "argv": sys.argv[1:]}
    (out / "suite.json").write_text(json.dumps(suite, indent=2) + "\n")
    from report import write_report

    report = write_report(out)
    failed = [s.name for s in steps if s.status != "ok"]
    print(f"\nsuite ({suite['mode']}) finished in {wall} s; report {report}; "
          + (f"FAILED: {', '.join(failed)}" if failed else "all benchmarks ok"))
    return 1 if failed else 0


def _start_platform(args, out: Path, profiles: Path, info: dict) -> Platform | None:
    env = {"SWITCHBOARD_MODELS__GENERATOR_ENGINE": args.engine, "SWITCHBOARD_PROFILES_DIR": str(profiles)}
    platform = Platform(args.port, env=env, log=out / "logs" / "platform.log")
    print(f"\n===== starting the platform on {platform.url} (engine {args.engine}, profiles {profiles})", flush=True)
    try:
        platform.start()
    except RuntimeError as exc:
        info["error"] = str(exc)
        print(f"===== platform: {exc}", flush=True)
        return None
    info["startup_s"] = platform.startup_s
    info["engine_versions"] = platform.engine_versions()
    return platform


def _stop_platform(platform: Platform, info: dict) -> None:
    started = time.monotonic()
    platform.stop()
    info["stop_s"] = round(time.monotonic() - started, 1)
    print(f"===== platform stopped ({info['stop_s']} s)", flush=True)


def _merge_throughput(out: Path) -> None:
    """Full mode measures score-quality in its own throughput run (fewer requests); its levels join throughput.json."""
    main, extra = out / "throughput.json", out / "throughput_score.json"
    if main.is_file() and extra.is_file():
        data, more = json.loads(main.read_text()), json.loads(extra.read_text())
        data["tasks"].update(more["tasks"])
        data["data"].update(more["data"])
        data.setdefault("merged_from", []).append(str(extra))
        main.write_text(json.dumps(data, indent=2) + "\n")


if __name__ == "__main__":
    raise SystemExit(main())
