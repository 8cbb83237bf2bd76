"""What a batch's records say: its progress, and the error records of lines that failed or never ran (pure)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from serving.batches.parsing import BatchLine, LineError
from serving.batches.store import BatchMeta
from serving.errors import SwitchboardError

CANCELLED = "cancelled"


@dataclass(frozen=True)
class Progress:
    total: int
    completed: int = 0
    failed: int = 0

    @property
    def pending(self) -> int:
        return self.total - self.completed - self.failed


@dataclass(frozen=True)
class BatchView:
    """What a caller may know of a batch: its metadata and progress."""

    meta: BatchMeta
    progress: Progress


def progress_of(meta: BatchMeta, records: list[dict]) -> Progress:
    """Lines with a response, lines with an error; lines that never ran (a cancelled batch) count as pending."""
    failed = sum(1 for r in records if "error" in r and r["error"].get("type") != CANCELLED)
    completed = sum(1 for r in records if "error" not in r)
    return Progress(meta.total, completed, failed)


def error_record(exc: SwitchboardError) -> dict:
    """The `error` of a line's result record: the error's code, message and field (never request text)."""
    error = {"type": exc.code, "message": exc.message}
    if exc.field:
        error["field"] = exc.field
    return error


def cancelled_records(lines: Iterable[BatchLine | LineError], done: dict[int, dict]) -> list[dict]:
    """A `cancelled` error record for each line of a cancelled batch that has no record yet, in line order."""
    message = "the batch was cancelled before this line ran"
    return [
        LineError(line.line, line.custom_id, message, line.task, CANCELLED).record()
        for line in lines
        if line.line not in done
    ]
