"""`switchboard models list | prepare NAME | path NAME`: the model store from the command line."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from serving.models.store import DEFAULT_MODEL, ModelStore, default_cache_dir


def add_models_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Mount the `models` command (and its sub-commands) on the main parser's sub-parsers."""
    models = subparsers.add_parser("models", help="List, prepare and locate models in the local model store.")
    models.add_argument(
        "--cache-dir",
        type=Path,
        default=None,
        help="Model store folder (default $SWITCHBOARD_MODELS__CACHE_DIR or ~/.cache/switchboard/models).",
    )
    models.set_defaults(func=lambda args: models.print_help() or 2)
    sub = models.add_subparsers(title="models commands")

    listing = sub.add_parser("list", help="Known models, whether each is prepared, where and how big.")
    listing.set_defaults(func=cmd_list)

    prepare = sub.add_parser("prepare", help="Prepare a model once into the store (offline).")
    prepare.add_argument("name", nargs="?", default=DEFAULT_MODEL, help=f"Model name (default {DEFAULT_MODEL}).")
    prepare.add_argument("--no-progress", action="store_true", help="Do not draw a progress bar.")
    prepare.set_defaults(func=cmd_prepare)

    path = sub.add_parser("path", help="Print the folder of a prepared model.")
    path.add_argument("name", help="Model name.")
    path.set_defaults(func=cmd_path)
    return models


def cmd_list(args: argparse.Namespace) -> int:
    store = _store(args)
    print(f"model store: {store.cache_dir}")
    for info in store.list():
        state = f"prepared  {info.size_bytes / 1e6:7.1f} MB" if info.prepared else "not prepared      "
        print(f"{info.name:24} {state}  {info.description}")
    return 0


def cmd_prepare(args: argparse.Namespace) -> int:
    store = _store(args)
    started = time.monotonic()
    already = store.is_prepared(args.name)
    path = store.prepare(args.name, progress=not getattr(args, "no_progress", False))
    verb = "already prepared" if already else f"prepared in {time.monotonic() - started:.1f} s"
    print(f"{args.name}: {verb}: {path}")
    return 0


def cmd_path(args: argparse.Namespace) -> int:
    print(_store(args).path(args.name))
    return 0


def _store(args: argparse.Namespace) -> ModelStore:
    return ModelStore(getattr(args, "cache_dir", None) or default_cache_dir())
