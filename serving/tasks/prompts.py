"""Prompt composition for the generative tasks: task template + compiled tenant instruction + redacted input (pure)."""

from __future__ import annotations

import json

from serving.vocabulary.catalog import Task
from serving.vocabulary.conversation import Speaker, Turn, render

Messages = list[dict[str, str]]

_SCORE_FORMAT = (
    'Answer with JSON only: {"criteria": [{"criterion": <id>, "verdict": "met"|"not_met"|"not_applicable", '
    '"evidence": <short quote from the conversation>}]}, one entry per rubric criterion, in rubric order.'
)


def compose(task: Task, instruction: str, turns: list[Turn], rubric_ids: list[str] | None = None) -> Messages:
    """Chat messages for one request of a generative task."""
    if task is Task.SUMMARIZE:
        return [
            {"role": "system", "content": instruction},
            {"role": "user", "content": f"Conversation:\n{render(turns)}\n\nWrite the summary."},
        ]
    if task is Task.SCORE_QUALITY:
        ids = json.dumps(rubric_ids or [])
        return [
            {"role": "system", "content": f"{instruction}\n{_SCORE_FORMAT} Criteria ids: {ids}."},
            {"role": "user", "content": f"Conversation:\n{render(turns)}"},
        ]
    if task is Task.REPLY:
        return [{"role": "system", "content": instruction}, *_as_chat(turns)]
    raise ValueError(f"{task.value} is not a generative task")


def _as_chat(turns: list[Turn]) -> Messages:
    """Customer turns are the user's, agent turns the assistant's; the model writes the next agent turn."""
    roles = {Speaker.CUSTOMER: "user", Speaker.AGENT: "assistant", Speaker.SYSTEM: "system"}
    return [{"role": roles[t.speaker], "content": t.text} for t in turns]
