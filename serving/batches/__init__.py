"""Bulk work: JSONL batches of task requests for one tenant, run in the background, resumed after a restart."""

from serving.batches.parsing import DEFAULT_MAX_LINES, BatchLine, LineError, parse_batch
from serving.batches.quota import Quota, expires_at
from serving.batches.runner import BatchRunner, BatchView, Execute, Observer, Progress
from serving.batches.store import BatchMeta, BatchStatus, BatchStore

__all__ = [
    "DEFAULT_MAX_LINES",
    "BatchLine",
    "BatchMeta",
    "BatchRunner",
    "BatchStatus",
    "BatchStore",
    "BatchView",
    "Execute",
    "LineError",
    "Observer",
    "Progress",
    "Quota",
    "expires_at",
    "parse_batch",
]
