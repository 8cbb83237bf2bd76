"""Moved to serving.vocabulary.entities (issue 16); kept as an alias for the same reason as serving.tasks.catalog."""

from serving.vocabulary.entities import (
    CUSTOM_ENTITIES,
    DEFAULT_ENTITIES,
    DESCRIPTIONS,
    PRESIDIO_ENTITIES,
    SUPPORTED_ENTITIES,
    not_redacted,
)

__all__ = ["CUSTOM_ENTITIES", "DEFAULT_ENTITIES", "DESCRIPTIONS", "PRESIDIO_ENTITIES", "SUPPORTED_ENTITIES",
           "not_redacted"]
