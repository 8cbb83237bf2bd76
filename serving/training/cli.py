"""`switchboard train TASK` and `switchboard eval TASK`."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

TASKS = ["summarize", "reply", "score-quality"]


def add_training_parsers(sub) -> None:
    train = sub.add_parser(
        "train", help="Fine-tune the LoRA adapter of a generative task (CPU, time-budgeted, resumable)."
    )
    train.add_argument("task", choices=TASKS)
    train.add_argument("--out", type=Path, help="Adapter folder (default adapters/TASK).")
    train.add_argument("--budget-minutes", type=float, help="Stop (and save) after this long.")
    train.add_argument("--epochs", type=float)
    train.add_argument("--threads", type=int, default=1)
    train.add_argument("--seed", type=int, help="Default 0 (LoRA adapters), 13 (the score-quality head).")
    train.add_argument(
        "--head",
        action="store_true",
        help="score-quality only: train the MiniLM head "
        "(serving.quality) instead of a LoRA adapter; --out defaults to models/quality-minilm.",
    )
    train.add_argument(
        "--also",
        type=Path,
        action="append",
        help="--head only: another labelled file to train on besides datasets/quality/train.jsonl (same schema; "
        "e.g. datasets/quality/train_tweetsumm.jsonl); repeatable.",
    )
    train.set_defaults(func=cmd_train)

    ev = sub.add_parser("eval", help="Held-out figures of a task's adapter against the base model (writes its card).")
    ev.add_argument("task", choices=TASKS)
    ev.add_argument("--adapter", type=Path, help="Adapter folder (default adapters/TASK).")
    ev.add_argument("--limit", type=int, help="Only the first N held-out items.")
    ev.add_argument("--threads", type=int, default=1)
    ev.add_argument("--base-figures", type=Path, help="Reuse the base model's figures from this JSON file.")
    ev.add_argument(
        "--head",
        action="store_true",
        help="score-quality only: the MiniLM head's figures (--adapter: its "
        "folder, default models/quality-minilm) against always-met and the base and LoRA figures in "
        "--base-figures (default adapters/refused/score-quality/metrics.json).",
    )
    ev.set_defaults(func=cmd_eval)


def _base() -> Path:
    from serving.models import DEFAULT_MODEL, ModelStore, default_cache_dir

    return ModelStore(default_cache_dir()).prepare(DEFAULT_MODEL, progress=False)


def _head_only(args: argparse.Namespace) -> None:
    if args.task != "score-quality":
        raise SystemExit("--head: only score-quality has a trained head")


def cmd_train(args: argparse.Namespace) -> int:
    from serving.vocabulary.catalog import Task

    if args.also and not args.head:
        raise SystemExit("--also: only with --head (the score-quality head's extra training files)")
    if args.head:
        from serving.training.quality_head_card import FOLDER
        from serving.training.quality_head_card import run_train as train_head

        _head_only(args)
        seed = 13 if args.seed is None else args.seed
        card = train_head(args.out or FOLDER, seed, args.budget_minutes or 30, args.threads, args.also or ())
        print(json.dumps({k: card[k] for k in ("threshold", "epochs", "validation", "minutes")}))
        return 0
    from serving.training.commands import run_train

    report = run_train(
        Task(args.task),
        _base(),
        args.out,
        budget_minutes=args.budget_minutes,
        epochs=args.epochs,
        threads=args.threads,
        seed=0 if args.seed is None else args.seed,
    )
    print(json.dumps({k: report[k] for k in ("task", "examples_seen", "examples_planned", "last_loss", "minutes")}))
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from serving.vocabulary.catalog import Task

    if args.head:
        from serving.models.adapters import gate_reason
        from serving.training.quality_head_card import FOLDER, GENERATIVE_FIGURES
        from serving.training.quality_head_card import run_eval as eval_head

        _head_only(args)
        metrics = eval_head(args.adapter or FOLDER, generative=args.base_figures or GENERATIVE_FIGURES)
        detail = metrics["adapter_detail"]
        print(
            json.dumps(
                {
                    "accuracy": detail["accuracy"],
                    "macro_f1": detail["macro_f1"],
                    "evidence_valid": detail["evidence_valid"],
                    "cross_tenant": detail["cross_tenant"],
                    "gate": gate_reason(metrics) or "accepted",
                }
            )
        )
        return 0
    from serving.training.commands import run_eval

    metrics = run_eval(Task(args.task), _base(), args.adapter, args.limit, args.threads, args.base_figures)
    print(json.dumps({k: metrics[k] for k in ("task", "metric", "adapter", "base")}))
    return 0
