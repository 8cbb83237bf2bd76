"""Conversation input of the generative tasks: speaker-tagged turns or a plain transcript, normalised to turns."""

from __future__ import annotations

import re
from enum import Enum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

TurnText = Annotated[str, StringConstraints(min_length=1, max_length=20_000)]
_SPEAKER_LINE = re.compile(r"^\s*(customer|agent|user|assistant|system)\s*:\s*(.*)$", re.IGNORECASE)


class Speaker(str, Enum):
    CUSTOMER = "customer"
    AGENT = "agent"
    SYSTEM = "system"


class Turn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    speaker: Speaker
    text: TurnText


class ConversationInput(BaseModel):
    """Exactly one of `turns` or `transcript` (lines like `Customer: ...` / `Agent: ...`)."""

    # `oneOf` states the validator's rule in the OpenAPI document: exactly one of the two is set (not null).
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "oneOf": [
                {"required": ["turns"], "properties": {"turns": {"type": "array"}, "transcript": {"type": "null"}}},
                {
                    "required": ["transcript"],
                    "properties": {"transcript": {"type": "string"}, "turns": {"type": "null"}},
                },
            ]
        },
    )

    turns: list[Turn] | None = Field(None, min_length=1, max_length=500)
    transcript: Annotated[str, StringConstraints(min_length=1, max_length=200_000)] | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> "ConversationInput":
        if (self.turns is None) == (self.transcript is None):
            raise ValueError("send exactly one of `turns` or `transcript`")
        return self

    def as_turns(self) -> list[Turn]:
        return list(self.turns) if self.turns is not None else parse_transcript(self.transcript or "")


def parse_transcript(transcript: str) -> list[Turn]:
    """`Customer: ...` / `Agent: ...` lines; continuation lines join the previous turn; untagged text is the customer's."""
    turns: list[Turn] = []
    for line in transcript.splitlines():
        if not line.strip():
            continue
        match = _SPEAKER_LINE.match(line)
        if match:
            turns.append(Turn(speaker=_speaker(match.group(1)), text=match.group(2).strip() or "..."))
        elif turns:
            turns[-1] = Turn(speaker=turns[-1].speaker, text=f"{turns[-1].text} {line.strip()}")
        else:
            turns.append(Turn(speaker=Speaker.CUSTOMER, text=line.strip()))
    return turns


def _speaker(tag: str) -> Speaker:
    tag = tag.lower()
    return {"user": Speaker.CUSTOMER, "assistant": Speaker.AGENT}.get(tag) or Speaker(tag)


def render(turns: list[Turn]) -> str:
    return "\n".join(f"{t.speaker.value.capitalize()}: {t.text}" for t in turns)
