"""The `switchboard` command: run the local platform, hash API keys, validate profile files."""

from __future__ import annotations

import argparse
import getpass
import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path

from serving.errors import ConfigError, ProfileError
from serving.intent.calibrate_cli import add_calibrate_parser
from serving.models.cli import add_models_parser
from serving.training.cli import add_training_parsers
from serving.vocabulary.catalog import Task
from serving.vocabulary.kinds import GENERATIVE_ENGINES


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "func"):
        parser.print_help()
        return 2
    try:
        return args.func(args) or 0
    except (ConfigError, ProfileError) as exc:
        print(f"switchboard: {exc.message}", file=sys.stderr)
        return 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="switchboard", description="Serve small customer-service models.")
    sub = parser.add_subparsers(title="commands")

    run = sub.add_parser("run", help="Start the platform locally (local Ray, folder profiles) in the foreground.")
    run.add_argument("--host", help="Bind address (default 127.0.0.1; SWITCHBOARD_HOST).")
    run.add_argument("--port", type=int, help="HTTP port (default 8000; SWITCHBOARD_PORT).")
    run.add_argument("--profiles-dir", help="Folder of TenantProfile YAML (default manifests/samples).")
    run.set_defaults(func=cmd_run)

    key = sub.add_parser("hash-key", help="Print the SHA-256 to put in a profile's spec.apiKey.sha256.")
    key.add_argument("key", nargs="?", help="The API key (prompted for when omitted).")
    key.set_defaults(func=cmd_hash_key)

    check = sub.add_parser("validate", help="Validate TenantProfile files and print their compiled sizes.")
    check.add_argument("paths", nargs="+", type=Path)
    check.set_defaults(func=cmd_validate)

    task = sub.add_parser("task-server", help="Serve one task on KServe's model server (Open Inference Protocol v2).")
    task.add_argument("--task", required=True, choices=[t.value for t in Task])
    task.add_argument(
        "--engine",
        choices=[k.value for k in GENERATIVE_ENGINES],
        help="Generative engine (SWITCHBOARD_MODELS__GENERATOR_ENGINE).",
    )
    task.add_argument("--model", help="Generative model: prepared name, folder or URI (SWITCHBOARD_MODELS__GENERATOR).")
    task.add_argument("--profiles-dir", help="Folder of TenantProfile YAML (SWITCHBOARD_PROFILES_DIR).")
    task.add_argument("--host", default="0.0.0.0", help="Bind address (default 0.0.0.0, as in a KServe container).")
    task.add_argument("--http-port", type=int, default=8080, help="REST port (default 8080, KServe's).")
    task.add_argument("--grpc-port", type=int, help="Also serve v2 over gRPC on this port (default: off).")
    task.set_defaults(func=cmd_task_server)

    add_models_parser(sub)
    add_training_parsers(sub)
    add_calibrate_parser(sub)
    return parser


def cmd_hash_key(args: argparse.Namespace) -> int:
    from serving.profiles import hash_api_key

    key = args.key or getpass.getpass("API key: ")
    print(hash_api_key(key))
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    from serving.profiles import approximate_counter, compile_profile, load_documents

    failed = 0
    for path in args.paths:
        try:
            for doc in load_documents(path.read_text(encoding="utf-8"), str(path)):
                compiled = compile_profile(doc.metadata.name, doc.spec, approximate_counter)
                print(
                    f"{path}: {doc.spec.tenant_id} ok, version {compiled.version}, tokens {compiled.instruction_tokens()}"
                )
        except (ProfileError, OSError) as exc:
            failed += 1
            print(getattr(exc, "message", str(exc)), file=sys.stderr)
    return 1 if failed else 0


def cmd_task_server(args: argparse.Namespace) -> int:
    from serving.kserve_server.server import run

    return run(
        args.task, args.profiles_dir, args.engine, args.model, args.host, args.http_port, grpc_port=args.grpc_port
    )


def cmd_run(args: argparse.Namespace) -> int:
    from serving.settings import load_settings

    overrides = {
        k: v for k, v in {"host": args.host, "port": args.port, "profiles_dir": args.profiles_dir}.items() if v
    }
    settings = load_settings(**overrides)
    settings = settings.model_copy(update={"profiles_dir": settings.profiles_dir.resolve()})
    _preflight(settings)
    return _serve_forever(settings)


def _preflight(settings) -> None:
    """Fail before starting Ray when the profiles folder is missing or holds no valid profile."""
    if not settings.profiles_dir.is_dir():
        raise ConfigError(f"profiles folder {settings.profiles_dir} does not exist (SWITCHBOARD_PROFILES_DIR)")
    args = argparse.Namespace(paths=sorted(settings.profiles_dir.glob("*.y*ml")))
    if not args.paths or cmd_validate(args) != 0:
        print("switchboard: some profiles are invalid; valid ones will serve, fix the others", file=sys.stderr)


# Serve kills an HTTP proxy that misses three 5 s readiness checks, and serve.start then fails. On a laptop's two busy
# cores (a training run beside it) the proxy's first answer took longer than that. Every local launch of Serve sets it.
PROXY_READY_TIMEOUT = ("RAY_SERVE_PROXY_READY_CHECK_TIMEOUT_S", "30")


def _serve_forever(settings) -> int:
    import httpx
    import ray
    from ray import serve

    from serving.app import APP_NAME, build_app
    from serving.deployments.proxy import CALLBACK, CALLBACK_ENV

    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault(*PROXY_READY_TIMEOUT)  # Ray's processes inherit it
    os.environ.setdefault(
        CALLBACK_ENV, CALLBACK
    )  # Ray's HTTP proxy inherits it: a dead router replica's requests retried
    started = time.monotonic()
    ray.init(address=settings.ray_address, include_dashboard=False, logging_level=logging.WARNING)
    try:
        serve.start(http_options={"host": settings.host, "port": settings.port})
        serve.run(build_app(settings), name=APP_NAME, route_prefix="/", blocking=False)
        base = f"http://{settings.host}:{settings.port}"
        _wait_ready(httpx, base, stop)
        print(_banner(base, time.monotonic() - started), flush=True)
        while not stop.wait(0.5):
            pass
        print("switchboard: stopping", flush=True)
    finally:
        serve.shutdown()
        ray.shutdown()
    return 0


def _wait_ready(httpx, base: str, stop: threading.Event, timeout_s: float = 300) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and not stop.is_set():
        try:
            if httpx.get(f"{base}/readyz", timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    if not stop.is_set():
        raise ConfigError(f"the platform did not become ready within {timeout_s:.0f} s; see the log above")


def _banner(base: str, elapsed: float) -> str:
    return (
        f"\nSwitchboard is ready on {base} ({elapsed:.0f} s). API docs: {base}/docs\n"
        f"Try:  curl -s {base}/v1/tasks/classify-intent -H 'Authorization: Bearer sb-demo-northbank-7f3c9a' "
        "-H 'Content-Type: application/json' -d '{\"text\": \"I still have not received my new card\"}'\n"
        "Press Ctrl-C to stop (Ray and every process it started stop with it).\n"
    )


if __name__ == "__main__":
    sys.exit(main())
