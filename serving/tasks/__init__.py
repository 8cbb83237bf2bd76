"""Tasks, in three roles (issue 16 gives them packages of their own): the vocabulary (catalog, entities, schemas,
jobs), what a task does for one request (service, prompts, quality, conversation), and the replica side (runner,
generation, local_backend)."""

from serving.tasks.catalog import DESCRIPTIONS, GENERATIVE, Task

__all__ = ["DESCRIPTIONS", "GENERATIVE", "Task"]
