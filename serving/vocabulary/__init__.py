"""The shared vocabulary, a leaf under every other layer (it imports nothing from serving but serving.errors): engine
kinds and priority classes (kinds)."""

from serving.vocabulary.kinds import GENERATIVE_ENGINES, EngineKind, PriorityClass

__all__ = ["GENERATIVE_ENGINES", "EngineKind", "PriorityClass"]
