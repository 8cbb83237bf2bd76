"""The adapter quality gate (pure): a LoRA adapter serves only if its model card's held-out figures beat the base's."""

from __future__ import annotations

import json
from pathlib import Path

METRICS_FILE = "metrics.json"


def gate_reason(metrics: dict | None) -> str | None:
    """None when the adapter may serve; otherwise why it is refused. `metrics` is the card's `metrics.json`:
    {"metric": name, "higher_is_better": bool, "adapter": figure, "base": figure, ...}."""
    if not metrics:
        return "the adapter has no held-out figures (metrics.json); run `switchboard eval TASK` first"
    try:
        adapter, base = float(metrics["adapter"]), float(metrics["base"])
    except (KeyError, TypeError, ValueError):
        return "the adapter's metrics.json lacks numeric `adapter` and `base` figures"
    name = metrics.get("metric", "the held-out figure")
    better = adapter > base if metrics.get("higher_is_better", True) else adapter < base
    return None if better else f"held-out {name} {adapter:g} does not beat the base model's {base:g}"


def read_metrics(folder: Path) -> dict | None:
    path = Path(folder) / METRICS_FILE
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def check_adapter(folder: Path) -> str | None:
    """gate_reason for the adapter folder (None: accepted)."""
    if not (Path(folder) / "adapter_config.json").is_file():
        return f"no LoRA adapter at {folder} (expected adapter_config.json)"
    return gate_reason(read_metrics(folder))
