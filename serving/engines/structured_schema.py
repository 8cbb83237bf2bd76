"""Structured decoding, part one (pure): the JSON-Schema subset it supports, compiled to a plan of nodes.

`serving.engines.structured` walks the plan as the text steps a model fills (and re-exports these names).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Union

# ---- the plan ------------------------------------------------------------------------------------------------------

DEFAULT_MAX_ITEMS = 8  # an array without maxItems gets at most this many items
_ANNOTATIONS = frozenset(
    {
        "$schema",
        "$id",
        "$comment",
        "title",
        "description",
        "default",
        "examples",
        "deprecated",
        "readOnly",
        "writeOnly",
        "additionalProperties",
    }
)
_KEYWORDS = {
    "object": {"type", "properties", "required"},
    "array": {"type", "items", "prefixItems", "minItems", "maxItems"},
    "string": {"type", "maxLength", "minLength"},
    "number": {"type", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"},
    "integer": {"type", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"},
    "boolean": {"type"},
    "null": {"type"},
}


class UnsupportedSchema(ValueError):
    """The schema uses something outside the subset this decoder can guarantee (the caller falls back)."""


@dataclass(frozen=True)
class Choice:
    """One of a closed set of JSON values (enum, const, boolean, null)."""

    values: tuple[Any, ...]


@dataclass(frozen=True)
class String:
    min_length: int = 0
    max_length: int | None = None


@dataclass(frozen=True)
class Number:
    integer: bool
    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: float | None = None
    exclusive_maximum: float | None = None


@dataclass(frozen=True)
class Object:
    fields: tuple[tuple[str, "Node"], ...]


@dataclass(frozen=True)
class Array:
    prefix: tuple["Node", ...]
    items: "Node | None"
    min_items: int
    max_items: int


Node = Union[Choice, String, Number, Object, Array]


def compile_schema(schema: Any) -> Node:
    """The plan for `schema`, or UnsupportedSchema naming what is outside the subset."""
    if not isinstance(schema, dict):
        raise UnsupportedSchema("boolean schemas are not supported")
    if "const" in schema:
        return _closed(schema, (schema["const"],), "const")
    if "enum" in schema:
        return _closed(schema, tuple(schema["enum"]), "enum")
    kind = schema.get("type")
    if not isinstance(kind, str) or kind not in _KEYWORDS:
        raise UnsupportedSchema(f"type {kind!r} is not supported (one type per schema: {', '.join(_KEYWORDS)})")
    _only(schema, _KEYWORDS[kind])
    return _COMPILERS[kind](schema)


def _only(schema: dict, allowed: set[str]) -> None:
    extra = sorted(set(schema) - allowed - _ANNOTATIONS)
    if extra:
        raise UnsupportedSchema(f"keyword {extra[0]!r} is not supported")
    if schema.get("additionalProperties") not in (None, False, True):
        raise UnsupportedSchema("additionalProperties as a schema is not supported")


def _closed(schema: dict, values: tuple, keyword: str) -> Choice:
    """The enum/const values that also pass the schema's other keywords (e.g. maxLength), in order."""
    from jsonschema import Draft202012Validator

    validator = Draft202012Validator(schema)
    valid = tuple(value for value in values if validator.is_valid(value))
    if not valid:
        raise UnsupportedSchema(f"no value of the {keyword} passes the rest of the schema")
    return Choice(valid)


def _object(schema: dict) -> Object:
    properties = schema.get("properties") or {}
    missing = [key for key in schema.get("required") or [] if key not in properties]
    if missing:
        raise UnsupportedSchema(f"required key {missing[0]!r} has no schema in properties")
    return Object(tuple((key, compile_schema(sub)) for key, sub in properties.items()))


def _array(schema: dict) -> Array:
    prefix = tuple(compile_schema(sub) for sub in schema.get("prefixItems") or [])
    items_schema = schema.get("items", True if not prefix else None)
    items = None if items_schema in (None, False) else compile_schema(items_schema if items_schema is not True else {})
    low = schema.get("minItems", 0)
    high = schema.get("maxItems", len(prefix) if items is None else max(low, len(prefix), DEFAULT_MAX_ITEMS))
    if items is None:
        high = min(high, len(prefix))
    if low > high:
        raise UnsupportedSchema("minItems cannot be met (more than maxItems or the prefixItems allow)")
    return Array(prefix, items, low, high)


def _string(schema: dict) -> String:
    return String(schema.get("minLength", 0), schema.get("maxLength"))


def _number(schema: dict) -> Number:
    node = Number(
        schema["type"] == "integer",
        schema.get("minimum"),
        schema.get("maximum"),
        schema.get("exclusiveMinimum"),
        schema.get("exclusiveMaximum"),
    )
    bounds(node)  # refuses bounds that admit no value
    return node


_COMPILERS: dict[str, Callable[[dict], Node]] = {
    "object": _object,
    "array": _array,
    "string": _string,
    "number": _number,
    "integer": _number,
    "boolean": lambda schema: Choice((True, False)),
    "null": lambda schema: Choice((None,)),
}


def bounds(node: Number) -> tuple[float, float]:
    """The lowest and highest value a number node admits (integers: the integers inside); UnsupportedSchema if none."""
    lows = [b for b in (node.minimum, node.exclusive_minimum) if b is not None]
    highs = [b for b in (node.maximum, node.exclusive_maximum) if b is not None]
    low, high = max(lows, default=-math.inf), min(highs, default=math.inf)
    if node.integer and math.isfinite(low):
        low = math.floor(low) + 1 if low == node.exclusive_minimum else math.ceil(low)
    if node.integer and math.isfinite(high):
        high = math.ceil(high) - 1 if high == node.exclusive_maximum else math.floor(high)
    if low > high:
        raise UnsupportedSchema("the number bounds admit no value")
    return low, high
