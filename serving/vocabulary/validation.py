"""One way to say what a pydantic validation found wrong: which field (as the caller wrote it) and what is wrong with
it. Profiles, settings, task bodies (HTTP, bulk lines, KServe) and the operator's CRD checks all speak through it."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

Loc = Sequence[int | str]


class HasErrors(Protocol):
    """pydantic's ValidationError, or FastAPI's RequestValidationError (the same error dicts)."""

    def errors(self) -> Sequence[Any]: ...


def where(loc: Loc, root: str = "") -> str:
    """A field's path as its writer sees it: `root.turns[0].speaker`; `(root)` for the object itself."""
    out = root
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(root)"


def why(error: Mapping[str, Any]) -> str:
    """What is wrong, in pydantic's words less its `Value error, ` prefix (an unknown key is an `unknown field`)."""
    if error["type"] == "extra_forbidden":
        return "unknown field"
    return str(error["msg"]).removeprefix("Value error, ")


def describe(exc: HasErrors, root: str = "", name: Callable[[Loc], str] | None = None) -> str:
    """Every problem as `field: what is wrong`, joined by `; `. Fields are paths under `root` (`body`, `request`, `spec`)
    unless `name` names them some other way (settings name their environment variables)."""
    named = name or (lambda loc: where(loc, root))
    return "; ".join(f"{named(error['loc'])}: {why(error)}" for error in exc.errors())


def first_field(exc: HasErrors, root: str = "") -> str | None:
    """The path of the first problem (what an error response's `field` names), or None when there is none."""
    errors = exc.errors()
    return where(errors[0]["loc"], root) if errors else None


__all__ = ["HasErrors", "describe", "first_field", "where", "why"]
