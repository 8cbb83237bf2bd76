"""Reading a batch upload: which lines run, which fail on their own with a message naming the line, and which uploads
are refused whole. Pure functions; nothing is faked."""

from __future__ import annotations

import json

import pytest

from serving.batches import BatchLine, LineError, parse_batch
from serving.batches.parsing import MAX_DEPTH
from serving.errors import InvalidRequest, PayloadTooLarge


def jsonl(*items) -> bytes:
    return b"".join((item if isinstance(item, bytes) else json.dumps(item).encode()) + b"\n" for item in items)


def test_valid_lines_keep_their_file_line_numbers_and_custom_ids():
    raw = jsonl({"custom_id": "a", "task": "redact", "body": {"text": "hi"}}, b"",
                {"task": "summarize", "body": {"transcript": "Customer: where is it?"}})
    lines = parse_batch(raw)
    assert lines == [BatchLine(1, "a", "redact", {"text": "hi"}),
                     BatchLine(3, None, "summarize", {"transcript": "Customer: where is it?"})]


def test_a_default_task_fills_lines_that_name_none():
    lines = parse_batch(jsonl({"body": {"text": "hi"}}, {"task": "classify-intent", "body": {"text": "refund"}}),
                        default_task="redact")
    assert [line.task for line in lines] == ["redact", "classify-intent"]


@pytest.mark.parametrize("raw, expected", [
    (b"{not json", "line 1: not JSON"),
    (b"[1, 2]", "line 1: expected a JSON object, got an array"),
    (b'"just a string"', "line 1: expected a JSON object, got a string"),
    (b"null", "line 1: expected a JSON object, got null"),
    (b"[" * 100_000 + b"]" * 100_000, "line 1: not JSON this service reads: nested deeper than"),  # RecursionError
    (b'{"task": "redact", "body": {"text": ' + b"[" * 40 + b"]" * 40 + b"}}",
     "line 1: not JSON this service reads: nested deeper than"),
    (b'{"task": "redact", "body": {"text": "x", "n": ' + b"9" * 5000 + b"}}",
     "line 1: not JSON this service reads: an integer with more digits"),
    (b'{"task": "classify-intent", "body": {"text": "x", "top_k": NaN}}', "line 1: not JSON this service reads: NaN"),
    (b'{"task": "classify-intent", "body": {"text": "x", "top_k": 1e999}}',
     "line 1: not JSON this service reads: a number out of the range"),
    (b'{"task": "redact", "body": {"text": "\\ud800"}}', "line 1: a string holds an unpaired UTF-16 surrogate"),
    (b'{"task": ["redact"], "body": {"text": "x"}}', "line 1: `task` must be a string naming a task, got an array"),
    (b'{"task": "redact", "body": {"text": 5}}', "line 1: body.text: Input should be a valid string"),
    (b'{"task": "redact", "body": {"text": "' + b"x" * 300 + b'"}}', "line 1: 340 bytes, over the limit of 300 bytes"),
    (b'{"task": "translate", "body": {"text": "x"}}', "line 1: unknown task 'translate'"),
    (b'{"body": {"text": "x"}}', "line 1: `task` is missing"),
    (b'{"task": "redact", "body": "x"}', "line 1: `body` must be a JSON object"),
    (b'{"task": "redact", "body": {"text": "x"}, "url": "/v1"}', "line 1: unknown keys ['url']"),
    (b'{"task": "redact", "body": {"txt": "x"}}', "line 1: body.txt: unknown field"),
    (b'{"task": "classify-intent", "body": {"text": "x", "top_k": 99}}', "line 1: body.top_k"),
    (b'{"task": "reply", "body": {"transcript": "Customer: hi", "stream": true}}',
     "line 1: body.stream: streaming is not available"),
    (b'{"custom_id": 7, "task": "redact", "body": {"text": "x"}}', "line 1: custom_id must be a string"),
    (b'\xff\xfe{"task": "redact"}', "line 1: not UTF-8"),
])
def test_a_bad_line_is_an_error_of_its_own(raw, expected):
    good = json.dumps({"task": "redact", "body": {"text": "fine"}}).encode()
    first, second = parse_batch(raw + b"\n" + good + b"\n", max_line_bytes=300 if len(raw) < 1000 else 10**6)
    assert isinstance(first, LineError) and first.message.startswith(expected)
    assert isinstance(second, BatchLine) and second.line == 2


def test_an_error_record_keeps_the_custom_id_and_known_task():
    (error,) = parse_batch(jsonl({"custom_id": "c-1", "task": "redact", "body": {}}))
    assert error.record() == {"line": 1, "custom_id": "c-1", "task": "redact",
                              "error": {"type": "invalid_request", "message": "line 1: body: send exactly one of `text` or `texts`"}}


@pytest.mark.parametrize("raw", [b"", b"\n\n  \n"])
def test_an_empty_upload_is_refused_whole(raw):
    with pytest.raises(InvalidRequest, match="empty"):
        parse_batch(raw)


def test_an_upload_over_the_line_limit_is_refused_whole():
    line = {"task": "redact", "body": {"text": "x"}}
    assert len(parse_batch(jsonl(*[line] * 3), max_lines=3)) == 3
    with pytest.raises(PayloadTooLarge, match="4 lines, over the limit of 3"):
        parse_batch(jsonl(*[line] * 4), max_lines=3)


def test_an_unknown_default_task_is_refused_whole():
    with pytest.raises(InvalidRequest, match="unknown task 'nope'") as caught:
        parse_batch(jsonl({"body": {"text": "x"}}), default_task="nope")
    assert caught.value.field == "query.task"


def test_the_deepest_nesting_allowed_still_parses():
    nested = {"text": "x"}
    for _ in range(MAX_DEPTH - 2):  # the line is level 1 and its body level 2
        nested = {"a": nested}
    (deep,) = parse_batch(json.dumps({"task": "redact", "body": nested}).encode())
    assert isinstance(deep, LineError) and "body.a: unknown field" in deep.message  # read, then validated
    (deeper,) = parse_batch(json.dumps({"task": "redact", "body": {"a": nested}}).encode())
    assert f"nested deeper than {MAX_DEPTH} levels" in deeper.message
