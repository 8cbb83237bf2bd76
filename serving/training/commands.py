"""`switchboard train TASK` / `switchboard eval TASK`: data paths, defaults per task, and the model card."""

from __future__ import annotations

import json
import time
from pathlib import Path

from serving.tasks.catalog import Task

TWEETSUMM = Path("../shared/data/tweetsumm")
DATA = {
    Task.SUMMARIZE: (TWEETSUMM / "train.jsonl", TWEETSUMM / "valid.jsonl"),
    Task.REPLY: (TWEETSUMM / "train.jsonl", TWEETSUMM / "valid.jsonl"),
    Task.SCORE_QUALITY: (Path("datasets/quality/train.jsonl"), Path("datasets/quality/heldout.jsonl")),
}
DEFAULTS = {
    Task.SUMMARIZE: {"epochs": 0.5, "budget_minutes": 45.0},
    Task.REPLY: {"epochs": 0.6, "budget_minutes": 20.0, "max_answer": 96},
    Task.SCORE_QUALITY: {"epochs": 2.0, "budget_minutes": 25.0, "max_answer": 256},
}


def adapter_dir(task: Task, root: Path = Path("adapters")) -> Path:
    return root / task.value


def run_train(task: Task, base: Path, out: Path | None = None, **overrides) -> dict:
    from serving.training.data import render_examples, sha256
    from serving.training.trainer import TrainConfig, train

    train_path, _ = DATA[task]
    out = out or adapter_dir(task)
    settings = {**DEFAULTS[task], **{k: v for k, v in overrides.items() if v is not None}}
    config = TrainConfig(base=base, out=out, **settings)
    examples = render_examples(task, train_path, seed=config.seed)
    started = time.time()
    report = train(config, examples)
    report.update(task=task.value, base_model=base.name, minutes=round((time.time() - started) / 60, 1),
                  data={str(train_path): sha256(train_path)}, examples=len(examples),
                  date=time.strftime("%Y-%m-%d", time.gmtime()))
    (out / "training.json").write_text(json.dumps(report, indent=2))
    return report
