"""The tasks Switchboard serves: names, what each does, and which take tenant instructions."""

from __future__ import annotations

from enum import Enum


class Task(str, Enum):
    REDACT = "redact"
    CLASSIFY_INTENT = "classify-intent"
    SUMMARIZE = "summarize"
    SCORE_QUALITY = "score-quality"
    REPLY = "reply"


DESCRIPTIONS: dict[Task, str] = {
    Task.REDACT: "Find personal data and identifiers; return entities with spans and the redacted text.",
    Task.CLASSIFY_INTENT: "Label an utterance with an intent from the tenant's own taxonomy.",
    Task.SUMMARIZE: "Summarize a support conversation.",
    Task.SCORE_QUALITY: "Score an agent against the tenant's quality rubric.",
    Task.REPLY: "Suggest the next agent reply.",
}

# Tasks that run a generative model and take a free-text tenant instruction.
GENERATIVE = (Task.SUMMARIZE, Task.SCORE_QUALITY, Task.REPLY)
