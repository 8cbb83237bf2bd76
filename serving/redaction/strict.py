"""The `strict` policy (PCI style): after entity detection, every remaining run of 4 or more digits is redacted too.

A run is digits with at most one space, tab or dash between groups ("4111 1111 1111 1112", "12-34-56", a number read
out digit by digit: "4 4 1 2 9"), so a card that failed its checksum or an id no recognizer knows never passes whole.
Years, prices and times with 4+ digits in a row are redacted as well: that is the price of strict. Pure; no Presidio.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Sequence

STRICT_ENTITY = "DIGITS"
MIN_DIGITS = 4
_RUN = re.compile(r"\d+(?:(?:[ \t]?-[ \t]?|[ \t])\d+)*")


@dataclass(frozen=True)
class DigitRun:
    """A detection of the strict rule, shaped like Presidio's RecognizerResult where apply_redaction reads it."""

    start: int
    end: int
    entity_type: str = STRICT_ENTITY
    score: float = 1.0


def digit_runs(text: str, found: Sequence[Any]) -> list[DigitRun]:
    """Runs of at least MIN_DIGITS digits outside the spans already `found` (a run never reaches into one)."""
    blanked = list(text)
    for r in found:
        blanked[r.start : r.end] = "\0" * (r.end - r.start)
    runs = []
    for m in _RUN.finditer("".join(blanked)):
        if sum(c.isdigit() for c in m.group()) >= MIN_DIGITS:
            runs.append(DigitRun(m.start(), m.end()))
    return runs


def with_digit_runs(text: str, found: Sequence[Any]) -> list[Any]:
    """`found` plus the strict rule's runs, in text order (the spans stay disjoint)."""
    return sorted([*found, *digit_runs(text, found)], key=lambda r: r.start)
