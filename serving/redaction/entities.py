"""Re-export of the entity catalogue (serving.vocabulary.entities) for the redaction engine."""

from serving.vocabulary.entities import CUSTOM_ENTITIES, DEFAULT_ENTITIES, PRESIDIO_ENTITIES, SUPPORTED_ENTITIES

__all__ = ["CUSTOM_ENTITIES", "DEFAULT_ENTITIES", "PRESIDIO_ENTITIES", "SUPPORTED_ENTITIES"]
