"""PII redaction: the Redactor (Presidio + spaCy) and its result types, imported lazily to keep the catalogue light."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from serving.redaction.engine import DetectedEntity, RedactionResult, Redactor

__all__ = ["DetectedEntity", "RedactionResult", "Redactor"]


def __getattr__(name: str) -> Any:
    """Import the engine on first use of one of its names (`import serving.redaction.entities` stays cheap)."""
    if name in __all__:
        from serving.redaction import engine

        return getattr(engine, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
