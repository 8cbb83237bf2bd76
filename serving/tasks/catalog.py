"""Moved to serving.vocabulary.catalog (issue 16). This alias, like serving.tasks.schemas and .conversation,
stays only while the committed versions of modules another change has in flight still import it from here."""

from serving.vocabulary.catalog import DESCRIPTIONS, GENERATIVE, Task

__all__ = ["DESCRIPTIONS", "GENERATIVE", "Task"]
