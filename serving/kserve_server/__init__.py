"""KServe compatibility: one task as a `kserve.Model` (Open Inference Protocol v2) and a server for it; no Ray."""

from __future__ import annotations

from typing import Any

__all__ = ["TaskPredictor", "run"]


def __getattr__(name: str) -> Any:
    # Lazy: importing kserve parses sys.argv and takes seconds; `switchboard --help` should pay for neither.
    if name == "TaskPredictor":
        from serving.kserve_server.model import TaskPredictor

        return TaskPredictor
    if name == "run":
        from serving.kserve_server.server import run

        return run
    raise AttributeError(name)
