"""The shared vocabulary, a leaf under every other layer (it imports nothing from serving but serving.errors): the
tasks served (catalog), the entity types redaction knows (entities), conversations and transcripts (conversation), the
tasks' request and response bodies (schemas), engine kinds and priority classes (kinds), and how a validation error is
told to whoever wrote the input (validation)."""

from serving.vocabulary.kinds import GENERATIVE_ENGINES, EngineKind, PriorityClass
from serving.vocabulary.validation import describe, first_field

__all__ = ["GENERATIVE_ENGINES", "EngineKind", "PriorityClass", "describe", "first_field"]
