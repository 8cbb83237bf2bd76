"""The adapter quality gate: a LoRA adapter serves only if its model card's held-out figures beat the base's (and the
trivial baselines it lists); a refused or broken one leaves the last accepted adapter serving, or the base."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

METRICS_FILE = "metrics.json"


def gate_reason(metrics: dict | None) -> str | None:
    """None when the adapter may serve; otherwise why it is refused. `metrics` is the card's `metrics.json`:
    {"metric": name, "higher_is_better": bool, "adapter": figure, "base": figure, "baselines": {name: figure},
    "guards": {name: {"adapter", "base"}}, ...}; the adapter must beat the base and every trivial baseline listed,
    and be no worse than the base on every guard, and reach every fixed floor in `targets` ({name: {"value",
    "at_least"}}) where the card lists one."""
    if not metrics:
        return "the adapter has no held-out figures (metrics.json); run `switchboard eval TASK` first"
    try:
        adapter, base = float(metrics["adapter"]), float(metrics["base"])
    except (KeyError, TypeError, ValueError):
        return "the adapter's metrics.json lacks numeric `adapter` and `base` figures"
    name = metrics.get("metric", "the held-out figure")
    higher = metrics.get("higher_is_better", True)
    better = adapter > base if higher else adapter < base
    if not better:
        return f"held-out {name} {adapter:g} does not beat the base model's {base:g}"
    for baseline, figure in (metrics.get("baselines") or {}).items():  # trivial baselines (e.g. always `met`)
        try:
            figure = float(figure)
        except (TypeError, ValueError):
            return f"the adapter's metrics.json has a non-numeric baseline {baseline!r}"
        if not (adapter > figure if higher else adapter < figure):
            return f"held-out {name} {adapter:g} does not beat the {baseline} baseline's {figure:g}"
    return guard_reason(metrics.get("guards") or {}) or target_reason(metrics.get("targets") or {})


def target_reason(targets: dict) -> str | None:
    """Fixed floors a model must reach (e.g. the score-quality head's issue targets):
    {name: {"value": x, "at_least": y}}."""
    for name, target in targets.items():
        try:
            value, floor = float(target["value"]), float(target["at_least"])
        except (KeyError, TypeError, ValueError):
            return f"the metrics.json has no numeric value and floor for target {name!r}"
        if value < floor:
            return f"held-out {name} {value:g} is under its target {floor:g}"
    return None


def guard_reason(guards: dict) -> str | None:
    """Figures the adapter must not lose on against the base, besides the headline one (e.g. score-quality's
    evidence validity): {name: {"adapter": x, "base": y, "higher_is_better": bool}}."""
    for name, guard in guards.items():
        try:
            adapter, base = float(guard["adapter"]), float(guard["base"])
        except (KeyError, TypeError, ValueError):
            return f"the adapter's metrics.json has no numeric adapter and base figures for guard {name!r}"
        worse = adapter < base if guard.get("higher_is_better", True) else adapter > base
        if worse:
            return f"held-out {name} {adapter:g} is worse than the base model's {base:g}"
    return None


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


# ---- which adapter serves: the requested one if the gate accepts it, else the last accepted one, else the base ----

STORE_DIR = "adapters"  # under the model cache: a copy of the last adapter accepted per task (local mode)
_ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors", METRICS_FILE, "README.md", "training.json")


@dataclass(frozen=True)
class AdapterChoice:
    """What a generative deployment serves and why: `serving` is the adapter folder in use (None: the base model);
    `accepted` is whether the requested adapter is the one serving; `reason` says why not (figures and paths only,
    never customer text)."""

    requested: str | None
    serving: str | None
    accepted: bool
    reason: str | None = None

    def status(self) -> dict:
        """The status fields a deployment reports (camelCase, as a TaskModel status carries them)."""
        return {
            "requestedAdapter": self.requested,
            "servingAdapter": self.serving,
            "adapterAccepted": self.accepted,
            "adapterReason": self.reason,
        }


BASE_SERVES = "serving the base model"  # what a refusal ends with when no accepted adapter is left


def choose_adapter(
    requested: str | None,
    last_good: str | None = None,
    check: Callable[[Path], str | None] | None = None,
    none_left: str = BASE_SERVES,
) -> AdapterChoice:
    """The requested adapter when the gate accepts it; otherwise the last accepted one (if it still passes), otherwise
    none (the base model), with the reason; `none_left` says what then happens (a head has no base to fall back to)."""
    check = check or check_adapter
    if not requested:
        return AdapterChoice(None, None, True)
    why = check(Path(requested))
    if why is None:
        return AdapterChoice(requested, requested, True)
    return _fall_back(requested, f"adapter {requested} refused: {why}", last_good, check, none_left)


def after_load_failure(
    choice: AdapterChoice, error: str, last_good: str | None = None, check: Callable[[Path], str | None] | None = None
) -> AdapterChoice:
    """The next choice when `choice.serving` could not be loaded: the last accepted adapter (unless that is the one
    that failed), otherwise the base model."""
    failed = choice.serving
    reason = f"adapter {failed} could not be loaded: {error}"
    if choice.reason:
        reason = f"{choice.reason}; {reason}"
    return _fall_back(choice.requested, reason, None if last_good == failed else last_good, check or check_adapter)


def _fall_back(
    requested: str | None, reason: str, last_good: str | None, check, none_left: str = BASE_SERVES
) -> AdapterChoice:
    if last_good and last_good != requested and check(Path(last_good)) is None:
        return AdapterChoice(requested, last_good, False, f"{reason}; serving the last accepted adapter {last_good}")
    return AdapterChoice(requested, None, False, f"{reason}; {none_left}")


def last_accepted(store: Path, task: str) -> str | None:
    """The copy of the last adapter accepted for `task` (None if there is none)."""
    folder = Path(store) / task
    return str(folder) if (folder / "adapter_config.json").is_file() else None


def remember_accepted(store: Path, task: str, folder: Path) -> Path:
    """Copy an accepted adapter to the store (replacing the previous copy in one rename), so that a later refused
    or broken adapter at the same path still leaves a good one to serve."""
    import shutil
    import tempfile

    target = Path(store) / task
    if Path(folder).resolve() == target.resolve():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{task}-", dir=target.parent))
    for name in _ADAPTER_FILES:
        if (Path(folder) / name).is_file():
            shutil.copy2(Path(folder) / name, staging / name)
    old = target.with_name(f".{task}-old")
    if target.exists():
        shutil.rmtree(old, ignore_errors=True)
        target.rename(old)
    staging.rename(target)
    shutil.rmtree(old, ignore_errors=True)
    return target
