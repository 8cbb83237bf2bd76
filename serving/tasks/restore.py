"""Mask, then restore: one conversation's placeholders, numbered across its turns, and the values behind them.

A Restorer lives in one request's memory only: it is never written, logged, traced or sent to a model, and its repr
names no value. `restore` puts the values back into the model's answer for the tenant's own caller; a
StreamRestorer does the same over a stream of deltas, holding back a tail that may be the start of a placeholder
split across chunks ("<ORDER_NUM" + "BER_1>"). Placeholders the conversation never had stay as the model wrote them.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Sequence

PLACEHOLDER = re.compile(r"<([A-Z][A-Z0-9_]*)_(\d+)>")
_LONGEST = 64  # a held-back tail longer than this cannot become a placeholder
_PARTIAL = re.compile(r"<[A-Z0-9_]*$")


class Restorer:
    """Placeholder -> original value for one request (placeholder mode)."""

    __slots__ = ("_values",)

    def __init__(self) -> None:
        self._values: dict[str, str] = {}

    def __repr__(self) -> str:
        return f"Restorer({len(self._values)} placeholders)"

    def __len__(self) -> int:
        return len(self._values)

    def add(self, placeholder: str, value: str) -> None:
        self._values[placeholder] = value

    def restore(self, text: str) -> str:
        """`text` with every known placeholder replaced by its value."""
        return PLACEHOLDER.sub(lambda m: self._values.get(m.group(0), m.group(0)), text)

    def stream(self) -> "StreamRestorer":
        return StreamRestorer(self)


class StreamRestorer:
    """Restores a text that arrives in pieces: `feed` each delta, `flush` at the end."""

    def __init__(self, restorer: Restorer):
        self._restorer = restorer
        self._pending = ""

    def feed(self, delta: str) -> str:
        """What can be sent now: the restored text up to a tail that may still grow into a placeholder."""
        text = self._pending + delta
        tail = _PARTIAL.search(text)
        cut = tail.start() if tail and len(text) - tail.start() <= _LONGEST else len(text)
        self._pending = text[cut:]
        return self._restorer.restore(text[:cut])

    def flush(self) -> str:
        text, self._pending = self._pending, ""
        return self._restorer.restore(text)


def renumbered(originals: Sequence[str], results: Sequence[dict]) -> tuple[list[str], Restorer]:
    """Placeholder-mode redaction results of one conversation's texts, renumbered so that a value keeps one
    placeholder in every turn and two values never share one (each text was numbered on its own), and the Restorer
    that maps them back. Each result's entities carry spans in its original text, in text order."""
    numbers: dict[tuple[str, str], str] = {}
    per_type: dict[str, int] = {}
    restorer = Restorer()
    texts = []
    for original, result in zip(originals, results, strict=True):
        parts, cursor = [], 0
        for entity in result["entities"]:
            value = original[entity["start"] : entity["end"]]
            key = (entity["type"], value)
            if key not in numbers:
                per_type[entity["type"]] = per_type.get(entity["type"], 0) + 1
                numbers[key] = f"<{entity['type']}_{per_type[entity['type']]}>"
                restorer.add(numbers[key], value)
            parts += [original[cursor : entity["start"]], numbers[key]]
            cursor = entity["end"]
        parts.append(original[cursor:])
        texts.append("".join(parts))
    return texts, restorer


async def restored_stream(chunks: AsyncIterator[dict], restorer: Restorer) -> AsyncIterator[dict]:
    """`{"delta"}` chunks restored (a split placeholder waits for its end); other chunks pass unchanged, after what
    was held back. Closing this closes `chunks` (so a disconnect releases the request's slot at once)."""
    stream = restorer.stream()
    try:
        async for chunk in chunks:
            if "delta" in chunk:
                text = stream.feed(chunk["delta"])
                if text:
                    yield {**chunk, "delta": text}
                continue
            rest = stream.flush()
            if rest:
                yield {"delta": rest}
            yield chunk
        rest = stream.flush()
        if rest:
            yield {"delta": rest}
    finally:
        close = getattr(chunks, "aclose", None)
        if close is not None:
            await close()
