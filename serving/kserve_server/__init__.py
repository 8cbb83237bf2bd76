"""KServe compatibility: one task as a `kserve.Model` (Open Inference Protocol v2) and a server for it; no Ray."""

from __future__ import annotations

from typing import Any

__all__ = ["TaskModel", "run"]


def __getattr__(name: str) -> Any:
    # Lazy: importing kserve parses sys.argv and takes seconds; `switchboard --help` should pay for neither.
    if name == "TaskModel":
        from serving.kserve_server.model import TaskModel

        return TaskModel
    if name == "run":
        from serving.kserve_server.server import run

        return run
    raise AttributeError(name)
