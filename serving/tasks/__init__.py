"""Tasks, in two roles: the vocabulary (catalog, entities, schemas, jobs) and the pure policies a request uses
(prompts, quality, conversation, restore; serving.pipeline runs them). The replica side is serving.replica; issue 16
still wants the vocabulary in a leaf package of its own."""

from serving.tasks.catalog import DESCRIPTIONS, GENERATIVE, Task

__all__ = ["DESCRIPTIONS", "GENERATIVE", "Task"]
