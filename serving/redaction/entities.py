"""Re-export of the entity catalogue (serving.tasks.entities) for the redaction engine."""

from serving.tasks.entities import CUSTOM_ENTITIES, DEFAULT_ENTITIES, PRESIDIO_ENTITIES, SUPPORTED_ENTITIES

__all__ = ["CUSTOM_ENTITIES", "DEFAULT_ENTITIES", "PRESIDIO_ENTITIES", "SUPPORTED_ENTITIES"]
