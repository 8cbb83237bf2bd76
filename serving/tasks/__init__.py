"""Tasks, in three roles: the vocabulary (catalog, entities, schemas, jobs), the pure policies a request uses
(prompts, quality, conversation, restore; serving.pipeline runs them), and the replica side (runner, generation,
local_backend). Issue 16 still wants the vocabulary and the replica side in packages of their own."""

from serving.tasks.catalog import DESCRIPTIONS, GENERATIVE, Task

__all__ = ["DESCRIPTIONS", "GENERATIVE", "Task"]
