"""score-quality head inputs (pure): the query text of a criterion under a tenant's glossary, the candidate agent
sentences with where they stand in the conversation, and the feature rows the head scores (numpy only)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from serving.tasks.quality import MAX_QUOTES, evidence_quotes
from serving.vocabulary.conversation import Speaker, Turn

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_DIGIT = re.compile(r"\d")
SURFACE = (
    "relative_position",
    "first_agent_turn",
    "last_agent_turn",
    "first_in_turn",
    "last_in_turn",
    "question",
    "digit",
)


@dataclass(frozen=True)
class Candidate:
    """One agent sentence that may be quoted (an element of `evidence_quotes`) and where it first appears."""

    text: str
    surface: tuple[float, ...]  # the SURFACE values


def criterion_query(criterion_id: str, description: str, glossary: Sequence[tuple[str, str]]) -> str:
    """What the head compares a sentence with: the criterion and, when the tenant's glossary defines the criterion's
    term (the glossary term equal to the id, or to the id with `-`/`_` as spaces), that definition."""
    term = criterion_id.replace("_", " ").replace("-", " ").lower()
    definition = next((d for t, d in glossary if t.strip().lower() in (criterion_id.lower(), term)), "")
    text = f"{term}: {description.strip()}"
    return f"{text} For this company, {term} means {definition.strip()}." if definition else text


def candidates(turns: Sequence[Turn], limit: int = MAX_QUOTES) -> list[Candidate]:
    """The quotable agent sentences (`evidence_quotes`, same order and text) with their surface features; none where
    the agent said nothing (evidence_quotes would offer the customer's words, which prove nothing about the agent)."""
    agent = [t for t in turns if t.speaker is Speaker.AGENT]
    if not agent:
        return []
    quotes = evidence_quotes(list(turns), limit)
    where: dict[str, tuple[float, ...]] = {}
    total = max(len(agent) - 1, 1)
    for index, turn in enumerate(agent):
        parts = [p.strip() for p in _SENTENCE_END.split(" ".join(turn.text.split())) if p.strip()]
        for k, part in enumerate(parts):
            for quote in quotes:
                if quote not in where and (quote == part or part.startswith(quote)):
                    where[quote] = (
                        index / total,
                        float(index == 0),
                        float(index == len(agent) - 1),
                        float(k == 0),
                        float(k == len(parts) - 1),
                    )
    default = (0.5, 0.0, 0.0, 0.0, 0.0)
    return [
        Candidate(q, where.get(q, default) + (float(q.rstrip().endswith("?")), float(bool(_DIGIT.search(q)))))
        for q in quotes
    ]


def feature_rows(sentences: np.ndarray, query: np.ndarray, surface: np.ndarray) -> np.ndarray:
    """Rows [s, q, s*q, |s-q|, cos(s, q), surface] for unit sentence vectors `sentences` (n, d) against one unit query
    vector `query` (d,), float32."""
    q = np.broadcast_to(query, sentences.shape)
    cos = (sentences * q).sum(axis=1, keepdims=True)
    return np.concatenate([sentences, q, sentences * q, np.abs(sentences - q), cos, surface], axis=1).astype(np.float32)


def feature_width(dimension: int) -> int:
    return 4 * dimension + 1 + len(SURFACE)
