"""Schema-driven structured decoding (pure): a JSON-Schema subset compiled to a plan, walked as text steps a model fills.

The plan fixes everything the schema fixes (braces, keys, separators, constants) and leaves the model three kinds of
decision: pick one of a closed set of JSON texts (`Pick`), write a free string (`FreeString`), write a number
(`FreeNumber`). A driver answers each step; the token rules below keep free strings and numbers inside the grammar,
so the text is valid against the schema by construction. No model and no torch here: the transformers adapter drives
the plan, tests drive it with scripted answers. The plan's nodes and their compiler are in structured_schema.py
(re-exported here).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Generator, Iterable
from dataclasses import dataclass
from typing import Any, Union

from serving.engines.structured_schema import (  # noqa: F401 - re-exported: the plan and its compiler
    DEFAULT_MAX_ITEMS,
    Array,
    Choice,
    Node,
    Number,
    Object,
    String,
    UnsupportedSchema,
    bounds,
    compile_schema,
)

# ---- walking the plan: the steps a driver answers ------------------------------------------------------------------


@dataclass(frozen=True)
class Emit:
    """Fixed text; the answer is ignored."""

    text: str


@dataclass(frozen=True)
class Pick:
    """Choose one of `options` (JSON texts); the answer is an index. `stop`: the option that ends early, if any."""

    options: tuple[str, ...]
    stop: int | None = None


@dataclass(frozen=True)
class FreeString:
    """Write a string's content (the quotes are Emits); the answer must satisfy `string_content_ok`."""

    min_length: int
    max_length: int | None


@dataclass(frozen=True)
class FreeNumber:
    """Write a number; the answer must be `finish_number`'s output."""

    node: Number


Step = Union[Emit, Pick, FreeString, FreeNumber]
Walk = Generator[Step, Any, Any]


def dump(value: Any) -> str:
    """JSON text as the plan writes it (the spacing of `json.dumps`, non-ASCII kept)."""
    return json.dumps(value, ensure_ascii=False)


def walk(node: Node) -> Walk:
    """Yield the steps of one value of `node`, receive the answers, return the value."""
    if isinstance(node, Choice):
        if len(node.values) == 1:
            yield Emit(dump(node.values[0]))
            return node.values[0]
        return node.values[(yield Pick(tuple(dump(v) for v in node.values)))]
    if isinstance(node, String):
        yield Emit('"')
        content = yield FreeString(node.min_length, node.max_length)
        yield Emit('"')
        return content
    if isinstance(node, Number):
        return json.loads((yield FreeNumber(node)))
    if isinstance(node, Object):
        return (yield from _walk_object(node))
    return (yield from _walk_array(node))


def _walk_object(node: Object) -> Walk:
    value: dict[str, Any] = {}
    yield Emit("{")
    for i, (key, sub) in enumerate(node.fields):
        yield Emit(f"{', ' if i else ''}{dump(key)}: ")
        value[key] = yield from walk(sub)
    yield Emit("}")
    return value


def _walk_array(node: Array) -> Walk:
    """At least max(minItems, 1) items where allowed; past that the model picks between `]` and another item."""
    value: list[Any] = []
    yield Emit("[")
    for i in range(node.max_items):
        if i >= max(node.min_items, 1):
            if (yield Pick(("]", ", "), stop=0)) == 0:  # the picked option writes the `]` or the `, `
                return value
        elif i:
            yield Emit(", ")
        item = node.prefix[i] if i < len(node.prefix) else node.items
        assert item is not None, "the planner caps max_items at the prefix when there is no `items`"
        value.append((yield from walk(item)))
    yield Emit("]")
    return value


def step_text(step: Step, answer: Any) -> str:
    """The output text a step contributes given its answer."""
    if isinstance(step, Emit):
        return step.text
    if isinstance(step, Pick):
        return step.options[answer]
    return str(answer)


def run(node: Node, answer: Callable[[Step], Any]) -> tuple[str, Any]:
    """Walk `node`, asking `answer` for every step; the JSON text and the value."""
    steps, parts = walk(node), []
    try:
        step = next(steps)
        while True:
            reply = answer(step)
            _check_answer(step, reply)
            parts.append(step_text(step, reply))
            step = steps.send(reply)
    except StopIteration as done:
        return "".join(parts), done.value


def _check_answer(step: Step, reply: Any) -> None:
    if isinstance(step, Pick) and not (isinstance(reply, int) and 0 <= reply < len(step.options)):
        raise ValueError(f"pick answer {reply!r} is not an option index")
    if isinstance(step, FreeString) and not string_content_ok(reply, step):
        raise ValueError(f"string answer {reply!r} breaks the string rules")
    if isinstance(step, FreeNumber) and finish_number(reply, step.node) != reply:
        raise ValueError(f"number answer {reply!r} is not a finished number")


# ---- token rules for free strings ----------------------------------------------------------------------------------

PLAIN, CLOSE, REJECT = "plain", "close", "reject"
_UNSAFE = re.compile(r'[\x00-\x1f\x7f\\"\ufffd]')


def string_token(text: str) -> tuple[str, str]:
    """How a token's text may continue a JSON string's content: (PLAIN, text), (CLOSE, the part before the quote that
    ends the string) or (REJECT, ""). Escapes, control characters and partial UTF-8 are never written."""
    if not text:
        return REJECT, ""
    quote = text.find('"')
    head = text if quote < 0 else text[:quote]
    if _UNSAFE.search(head):
        return REJECT, ""
    return (PLAIN, text) if quote < 0 else (CLOSE, head)


def string_content_ok(content: Any, step: FreeString) -> bool:
    return (
        isinstance(content, str)
        and not _UNSAFE.search(content)
        and len(content) >= step.min_length
        and (step.max_length is None or len(content) <= step.max_length)
    )


def extend_string(content: str, kind: str, piece: str, step: FreeString) -> tuple[str, bool]:
    """Content after one token, and whether the string is now closed (by its quote or by reaching maxLength)."""
    if kind == REJECT:
        raise ValueError("rejected tokens cannot extend a string")
    grown = content + piece
    if step.max_length is not None and len(grown) >= step.max_length:
        return grown[: step.max_length], True
    return grown, kind == CLOSE


# ---- token rules for numbers ---------------------------------------------------------------------------------------

_NUMBER_CHARS = re.compile(r"^[0-9.\-]+$")
_PARTIAL = {True: re.compile(r"^-?(0|[1-9][0-9]*)?$"), False: re.compile(r"^-?((0|[1-9][0-9]*)(\.[0-9]*)?)?$")}
_COMPLETE = {True: re.compile(r"^-?(0|[1-9][0-9]*)$"), False: re.compile(r"^-?(0|[1-9][0-9]*)(\.[0-9]+)?$")}
MAX_NUMBER_CHARS = 16


def number_token(text: str) -> bool:
    """Whether a token's text is made of number characters at all (digits, '.', '-')."""
    return bool(_NUMBER_CHARS.match(text))


def number_continues(current: str, piece: str, integer: bool) -> bool:
    """Whether `current + piece` is still the start of a JSON number (of an integer when `integer`)."""
    grown = current + piece
    return len(grown) <= MAX_NUMBER_CHARS and bool(_PARTIAL[integer].match(grown))


def number_complete(text: str, integer: bool) -> bool:
    return bool(_COMPLETE[integer].match(text))


def finish_number(text: str, node: Number) -> str:
    """The JSON text of the number the model wrote, made complete and moved into the schema's bounds."""
    text = text.rstrip(".")
    value: float = float(text) if number_complete(text, node.integer) else _fallback(node)
    low, high = bounds(node)
    value = min(max(value, low), high)
    if node.integer:
        return str(int(value))
    if (node.exclusive_minimum is not None and value <= node.exclusive_minimum) or (
        node.exclusive_maximum is not None and value >= node.exclusive_maximum
    ):
        value = (low + high) / 2 if math.isfinite(low + high) else (low + 1 if math.isfinite(low) else high - 1)
    return _number_text(value)


def _fallback(node: Number) -> float:
    low, high = bounds(node)
    return 0 if low <= 0 <= high else (low if math.isfinite(low) else high)


def _number_text(value: float) -> str:
    text = repr(float(value))
    return text[:-2] if text.endswith(".0") else text


# ---- choosing among many long options ------------------------------------------------------------------------------


def common_prefix(options: Iterable[str]) -> str:
    """The text every option starts with (written before the model decides)."""
    options = list(options)
    first, last = min(options), max(options)
    n = next((i for i, (a, b) in enumerate(zip(first, last)) if a != b), min(len(first), len(last)))
    return first[:n]


class OptionTrie:
    """Token sequences of the options, narrowed one chosen token at a time (greedy choice among long options)."""

    def __init__(self, sequences: list[list[int]]):
        if not sequences:
            raise ValueError("no options")
        self._sequences = sequences
        self.alive = list(range(len(sequences)))
        self.depth = 0

    def decided(self) -> int | None:
        """The option index once only one fits (or one has ended: the shortest consistent option wins)."""
        ended = [i for i in self.alive if len(self._sequences[i]) == self.depth]
        if ended:
            return ended[0]
        return self.alive[0] if len(self.alive) == 1 else None

    def allowed(self) -> list[int]:
        return sorted({self._sequences[i][self.depth] for i in self.alive})

    def advance(self, token: int) -> None:
        alive = [i for i in self.alive if self._sequences[i][self.depth] == token]
        if not alive:
            raise ValueError(f"token {token} continues no option")
        self.alive, self.depth = alive, self.depth + 1

    def rest(self, index: int) -> list[int]:
        """The tokens of option `index` not yet chosen."""
        return self._sequences[index][self.depth :]
