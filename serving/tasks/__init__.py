"""Task catalogue and the typed request/response bodies of each task."""

from serving.tasks.catalog import DESCRIPTIONS, GENERATIVE, Task

__all__ = ["DESCRIPTIONS", "GENERATIVE", "Task"]
