"""score-quality: the JSON schema the model must fill for a rubric, and the validation of what it wrote (pure)."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass

from serving.errors import TaskFailed
from serving.profiles.model import Criterion
from serving.vocabulary.conversation import Speaker, Turn

VERDICTS = ("met", "not_met", "not_applicable")
MAX_QUOTES = 200
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def output_schema(rubric: list[Criterion], quotes: Sequence[str] = ()) -> dict:
    """One object per criterion, in rubric order (`prefixItems` pins each position's criterion); verdict from a closed
    set; evidence a short quote. With `quotes` (see `evidence_quotes`) the evidence must be one of them or empty, so a
    constrained decoder can only quote the conversation."""
    evidence: dict = {"type": "string", "maxLength": 300, "description": "a verbatim quote from the conversation"}
    if quotes:
        evidence["enum"] = ["", *quotes]
    item = _item([c.id for c in rubric], evidence)
    return {
        "type": "object",
        "properties": {
            "criteria": {
                "type": "array",
                "prefixItems": [_item([c.id], evidence) for c in rubric],
                "items": item,
                "minItems": len(rubric),
                "maxItems": len(rubric),
            }
        },
        "required": ["criteria"],
        "additionalProperties": False,
    }


def _item(ids: list[str], evidence: dict) -> dict:
    return {
        "type": "object",
        "properties": {
            "criterion": {"type": "string", "enum": ids},
            "verdict": {"type": "string", "enum": list(VERDICTS)},
            "evidence": evidence,
        },
        "required": ["criterion", "verdict", "evidence"],
        "additionalProperties": False,
    }


def evidence_quotes(turns: list[Turn], limit: int = MAX_QUOTES) -> list[str]:
    """Sentences the agent said (every speaker's when the agent said nothing), each at most 300 characters, deduplicated,
    in conversation order: what score-quality may quote."""
    agent = [t for t in turns if t.speaker is Speaker.AGENT]
    quotes: dict[str, None] = {}
    for turn in agent or turns:
        for sentence in _SENTENCE_END.split(" ".join(turn.text.split())):
            sentence = _clip(sentence.strip(), 300)
            if len(sentence) >= 3:
                quotes.setdefault(sentence)
    return list(quotes)[:limit]


def _clip(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    cut = text[:limit]
    return cut[: cut.rfind(" ")] if " " in cut else cut


@dataclass(frozen=True)
class CriterionScore:
    criterion: str
    verdict: str
    score: float | None
    weight: float
    evidence: str
    evidence_found: bool


@dataclass(frozen=True)
class QualityScore:
    criteria: tuple[CriterionScore, ...]
    overall: float | None


def parse_scores(raw: str, rubric: list[Criterion], conversation_text: str) -> QualityScore:
    """Validate the model's JSON against the rubric; raise TaskFailed (never pass invalid output through)."""
    try:
        data = json.loads(_json_part(raw))
    except ValueError:
        raise TaskFailed("score-quality: the model did not return JSON") from None
    items = data.get("criteria") if isinstance(data, dict) else None
    if not isinstance(items, list):
        raise TaskFailed("score-quality: the model output has no `criteria` list")
    by_id = {}
    for item in items:
        if not isinstance(item, dict) or item.get("criterion") not in {c.id for c in rubric}:
            raise TaskFailed("score-quality: the model output names a criterion that is not in the rubric")
        if item.get("verdict") not in VERDICTS:
            raise TaskFailed(f"score-quality: verdict must be one of {list(VERDICTS)}")
        by_id[item["criterion"]] = item
    missing = [c.id for c in rubric if c.id not in by_id]
    if missing:
        raise TaskFailed(f"score-quality: the model output misses criteria {missing}")
    scores = tuple(_score(c, by_id[c.id], conversation_text) for c in rubric)
    return QualityScore(scores, overall_score(scores))


def _score(criterion: Criterion, item: dict, conversation_text: str) -> CriterionScore:
    verdict = item["verdict"]
    evidence = str(item.get("evidence", "")).strip()[:300]
    score = {"met": 1.0, "not_met": 0.0}.get(verdict)
    found = bool(evidence) and _normalise(evidence) in _normalise(conversation_text)
    return CriterionScore(criterion.id, verdict, score, criterion.weight, evidence if found else "", found)


def head_scores(verdicts: Sequence[dict], rubric: list[Criterion], conversation_text: str) -> QualityScore:
    """A trained head's {"criterion", "verdict", "evidence"} list, validated as a model's JSON answer is."""
    items = [{k: v.get(k, "") for k in ("criterion", "verdict", "evidence")} for v in verdicts]
    return parse_scores(json.dumps({"criteria": items}), rubric, conversation_text)


def overall_score(scores: tuple[CriterionScore, ...]) -> float | None:
    """Weighted mean over applicable criteria; None when none applies."""
    applicable = [(s.weight, s.score) for s in scores if s.score is not None]
    total = sum(weight for weight, _ in applicable)
    return round(sum(weight * score for weight, score in applicable) / total, 4) if total else None


def _json_part(raw: str) -> str:
    start, end = raw.find("{"), raw.rfind("}")
    return raw[start : end + 1] if 0 <= start < end else raw


def _normalise(text: str) -> str:
    return " ".join(text.lower().split())
