"""Reading a batch upload (JSONL, one task request a line) into lines to run and per-line errors; pure, no I/O.

One line: `{"custom_id": "<your id, optional>", "task": "<task name>", "body": {<the task's request body>}}`. `task`
may be left out when the upload names a default task. Blank lines are skipped; `line` numbers are the 1-based line
numbers of the file, so an error says where to look in an editor. A line that is not JSON (including JSON Python
cannot hold: nesting deeper than MAX_DEPTH, integers over Python's digit limit, NaN/Infinity, unpaired surrogates), is
over the per-line byte limit, names an unknown task or carries an invalid body becomes a per-line error; only an empty
upload (InvalidRequest, 422) or one over the line limit (PayloadTooLarge, 413) is refused whole.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass

from pydantic import ValidationError

from serving.errors import InvalidRequest, PayloadTooLarge
from serving.vocabulary.catalog import Task
from serving.vocabulary.schemas import REQUEST_BODIES
from serving.vocabulary.validation import describe

log = logging.getLogger(__name__)

DEFAULT_MAX_LINES = 10_000
DEFAULT_MAX_LINE_BYTES = 262_144
MAX_CUSTOM_ID_CHARS = 256
MAX_DEPTH = 32  # task bodies are a few levels deep; deeper is a mistake or an attack on the parser
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
        return {
            "line": self.line,
            "custom_id": self.custom_id,
            "task": self.task,
            "error": {"type": self.type, "message": self.message},
        }


def parse_batch(
    raw: bytes,
    default_task: str | None = None,
    max_lines: int = DEFAULT_MAX_LINES,
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
) -> list[BatchLine | LineError]:
    """Every non-blank line, in file order, as a BatchLine or a LineError; InvalidRequest when there is none,
    PayloadTooLarge when there are more than `max_lines`."""
    if default_task is not None:
        _known_task(default_task, "query.task")
    numbered = [(n, text) for n, text in enumerate(raw.split(b"\n"), start=1) if text.strip()]
    if not numbered:
        raise InvalidRequest("the batch is empty: send one JSON task request per line", field="body")
    if len(numbered) > max_lines:
        raise PayloadTooLarge(
            f"the batch has {len(numbered)} lines, over the limit of {max_lines}; split it", field="body"
        )
    return [parse_line(n, text, default_task, max_line_bytes) for n, text in numbered]


def parse_line(
    line: int, raw: bytes, default_task: str | None = None, max_bytes: int = DEFAULT_MAX_LINE_BYTES
) -> BatchLine | LineError:
    """One line as a BatchLine, or a LineError saying what is wrong with it; never raises for any bytes."""
    try:
        return _parse_line(line, raw, default_task, max_bytes)
    except Exception as exc:  # noqa: BLE001 - the last line of defence: one line's surprise must not fail the upload
        log.error("batch line could not be read", extra={"line": line, "error_type": type(exc).__name__})
        return LineError(line, None, f"line {line}: could not be read as a task request")


def _parse_line(line: int, raw: bytes, default_task: str | None, max_bytes: int) -> BatchLine | LineError:
    if len(raw) > max_bytes:
        return LineError(line, None, f"line {line}: {len(raw)} bytes, over the limit of {max_bytes} bytes a line")
    item, problem = _json(raw)
    if problem:
        return LineError(line, None, f"line {line}: {problem}")
    if not isinstance(item, dict):
        return LineError(line, None, f"line {line}: expected a JSON object, got {_kind(item)}")
    custom_id = item.get("custom_id")
    if custom_id is not None and (not isinstance(custom_id, str) or len(custom_id) > MAX_CUSTOM_ID_CHARS):
        return LineError(
            line, None, f"line {line}: custom_id must be a string of at most {MAX_CUSTOM_ID_CHARS} characters"
        )
    problem = _shape_problem(item, default_task)
    if problem:
        return LineError(line, custom_id, f"line {line}: {problem}")
    task = item.get("task", default_task)
    assert isinstance(task, str)  # _shape_problem checked it
    problem = _body_problem(task, item["body"])
    if problem:
        return LineError(line, custom_id, f"line {line}: {problem}", task)
    return BatchLine(line, custom_id, task, item["body"])


def _json(raw: bytes) -> tuple[object, str | None]:
    """The line's JSON value, or None and what keeps it from being one Python can work with safely."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return None, f"not UTF-8 text (byte {exc.start + 1})"
    try:
        item = json.loads(text, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        return None, f"not JSON ({exc.msg} at column {exc.colno})"
    except RecursionError:
        return None, f"not JSON this service reads: nested deeper than {MAX_DEPTH} levels"
    except ValueError as exc:  # Python's digit limit on int(), or a NaN/Infinity constant
        reason = str(exc) if isinstance(exc, _Constant) else "an integer with more digits than Python converts (4300)"
        return None, f"not JSON this service reads: {reason}"
    return item, _value_problem(item)


class _Constant(ValueError):
    pass


def _no_constant(name: str):
    raise _Constant(f"{name} is not a JSON number")


def _value_problem(item: object) -> str | None:
    """Depth, non-finite numbers (1e999 reads as infinity) and unpaired surrogates (\\ud800 reads, then cannot be
    written back as UTF-8); walked without recursion."""
    stack = [(item, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_DEPTH and isinstance(value, (dict, list)):
            return f"not JSON this service reads: nested deeper than {MAX_DEPTH} levels"
        if isinstance(value, dict):
            stack.extend((k, depth) for k in value)
            stack.extend((v, depth + 1) for v in value.values())
        elif isinstance(value, list):
            stack.extend((v, depth + 1) for v in value)
        elif isinstance(value, float) and not math.isfinite(value):
            return "not JSON this service reads: a number out of the range of a double"
        elif isinstance(value, str) and not _encodable(value):
            return "a string holds an unpaired UTF-16 surrogate (\\ud800-\\udfff); send valid Unicode"
    return None


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _kind(value: object) -> str:
    return {
        dict: "an object",
        list: "an array",
        str: "a string",
        bool: "a boolean",
        int: "a number",
        float: "a number",
        type(None): "null",
    }.get(type(value), type(value).__name__)


def _shape_problem(item: dict, default_task: str | None) -> str | None:
    extra = sorted(set(item) - _KEYS)
    if extra:
        return f"unknown keys {[k[:64] for k in extra][:10]}; a line has custom_id, task and body"
    task = item.get("task", default_task)
    if task is None:
        return "`task` is missing (name it on the line or as ?task= on the upload)"
    if not isinstance(task, str):
        return f"`task` must be a string naming a task, got {_kind(task)}; tasks: {_TASKS}"
    if task not in _TASKS:
        return f"unknown task {str(task)[:64]!r}; tasks: {_TASKS}"
    if not isinstance(item.get("body"), dict):
        return "`body` must be a JSON object: the task's request body"
    return None


def _body_problem(task: str, body: dict) -> str | None:
    try:
        request = REQUEST_BODIES[Task(task)].model_validate(body)
    except ValidationError as exc:
        return describe(exc, "body")
    if getattr(request, "stream", False):
        return "body.stream: streaming is not available in a batch; leave it out"
    return None


def _known_task(task: str, field: str) -> None:
    if task not in _TASKS:
        raise InvalidRequest(f"unknown task {task[:64]!r}; tasks: {_TASKS}", field=field)
