"""Reading a batch upload (JSONL, one task request a line) into lines to run and per-line errors; pure, no I/O.

One line: `{"custom_id": "<your id, optional>", "task": "<task name>", "body": {<the task's request body>}}`. `task`
may be left out when the upload names a default task. Blank lines are skipped; `line` numbers are the 1-based line
numbers of the file, so an error says where to look in an editor. A line that is not JSON, names an unknown task or
carries an invalid body becomes a per-line error; only an empty upload or one over the line limit is refused whole.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from pydantic import ValidationError

from serving.errors import InvalidRequest
from serving.tasks.catalog import Task
from serving.tasks.service import REQUEST_BODIES

DEFAULT_MAX_LINES = 10_000
MAX_CUSTOM_ID_CHARS = 256
_KEYS = frozenset({"custom_id", "task", "body"})
_TASKS = [t.value for t in Task]


@dataclass(frozen=True)
class BatchLine:
    """One valid request: where it is in the file, the caller's id for it, the task and its (validated) body."""

    line: int
    custom_id: str | None
    task: str
    body: dict


@dataclass(frozen=True)
class LineError:
    """A line that cannot run; `type` is the error code of serving.errors (`invalid_request` here)."""

    line: int
    custom_id: str | None
    message: str
    task: str | None = None
    type: str = InvalidRequest.code

    def record(self) -> dict:
        """The line's entry in the results (the router adds the HTTP status)."""
        return {"line": self.line, "custom_id": self.custom_id, "task": self.task,
                "error": {"type": self.type, "message": self.message}}


def parse_batch(raw: bytes, default_task: str | None = None,
                max_lines: int = DEFAULT_MAX_LINES) -> list[BatchLine | LineError]:
    """Every non-blank line, in file order, as a BatchLine or a LineError; InvalidRequest when none or too many."""
    if default_task is not None:
        _known_task(default_task, "query.task")
    numbered = [(n, text) for n, text in enumerate(raw.split(b"\n"), start=1) if text.strip()]
    if not numbered:
        raise InvalidRequest("the batch is empty: send one JSON task request per line", field="body")
    if len(numbered) > max_lines:
        raise InvalidRequest(f"the batch has {len(numbered)} lines, over the limit of {max_lines}; split it", field="body")
    return [parse_line(n, text, default_task) for n, text in numbered]


def parse_line(line: int, raw: bytes, default_task: str | None = None) -> BatchLine | LineError:
    try:
        item = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        return LineError(line, None, f"line {line}: not UTF-8 text")
    except json.JSONDecodeError as exc:
        return LineError(line, None, f"line {line}: not JSON ({exc.msg} at column {exc.colno})")
    if not isinstance(item, dict):
        return LineError(line, None, f"line {line}: expected a JSON object, got {type(item).__name__}")
    custom_id = item.get("custom_id")
    if custom_id is not None and (not isinstance(custom_id, str) or len(custom_id) > MAX_CUSTOM_ID_CHARS):
        return LineError(line, None, f"line {line}: custom_id must be a string of at most {MAX_CUSTOM_ID_CHARS} characters")
    problem = _shape_problem(item, default_task)
    if problem:
        return LineError(line, custom_id, f"line {line}: {problem}")
    task = item.get("task", default_task)
    problem = _body_problem(task, item["body"])
    if problem:
        return LineError(line, custom_id, f"line {line}: {problem}", task)
    return BatchLine(line, custom_id, task, item["body"])


def _shape_problem(item: dict, default_task: str | None) -> str | None:
    extra = sorted(set(item) - _KEYS)
    if extra:
        return f"unknown keys {extra}; a line has custom_id, task and body"
    task = item.get("task", default_task)
    if task is None:
        return "`task` is missing (name it on the line or as ?task= on the upload)"
    if task not in _TASKS:
        return f"unknown task {str(task)[:64]!r}; tasks: {_TASKS}"
    if not isinstance(item.get("body"), dict):
        return "`body` must be a JSON object: the task's request body"
    return None


def _body_problem(task: str, body: dict) -> str | None:
    try:
        request = REQUEST_BODIES[Task(task)].model_validate(body)
    except ValidationError as exc:
        return "; ".join(f"{_where(err['loc'])}: {err['msg'].removeprefix('Value error, ')}" for err in exc.errors())
    if getattr(request, "stream", False):
        return "body.stream: streaming is not available in a batch; leave it out"
    return None


def _where(loc: tuple) -> str:
    return "body" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc)


def _known_task(task: str, field: str) -> None:
    if task not in _TASKS:
        raise InvalidRequest(f"unknown task {task[:64]!r}; tasks: {_TASKS}", field=field)
