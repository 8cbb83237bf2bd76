"""Batch state on local disk: the upload, a metadata file replaced atomically, and an append-only results log.

Layout under the root folder, one folder per batch:

    <batch id>/input.jsonl     the upload, byte for byte, until the batch finishes (then dropped)
    <batch id>/meta.json       tenant, default task, created/finished time, line count, status (temp file + os.replace)
    <batch id>/results.jsonl   one JSON record per finished line, appended and fsync'ed: {"line": n, ...}

A batch folder appears whole (written under a temporary name, then renamed). Results are read deduplicated by line
number (the first record wins) and sorted by it, so a crash after an append but before any other bookkeeping cannot
duplicate a line; a torn last record (a crash mid-append) is dropped and that line runs again.

A deleted batch is renamed to `.deleted-<id>-*` first (readers and a runner appending see it gone at once), then
removed; `sweep` removes what a crash left of deletions and creations.

The folder holds customer text: `input.jsonl` is the upload as sent, before redaction (lines are redacted when they
run), kept only while the batch may still run; `results.jsonl` holds each line's response as the API returns it
(and, for a cancelled batch, a `cancelled` record for each line that never ran). Put it on an encrypted volume; finished
batches are removed after the runner's retention (SWITCHBOARD_BATCH_RETENTION_S) or on DELETE.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import secrets
import shutil
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from enum import Enum
from pathlib import Path
from typing import BinaryIO

from serving.errors import NotFound

_ID = re.compile(r"^batch_[0-9a-f]{24}$")
INPUT, META, RESULTS, LOCK = "input.jsonl", "meta.json", "results.jsonl", ".runner.lock"


class BatchStatus(str, Enum):
    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        return self in (BatchStatus.COMPLETED, BatchStatus.CANCELLED)


@dataclass(frozen=True)
class BatchMeta:
    id: str
    tenant_id: str
    total: int
    created_at: float
    status: BatchStatus = BatchStatus.QUEUED
    task: str | None = None
    finished_at: float | None = None

    def to_json(self) -> str:
        return json.dumps({**asdict(self), "status": self.status.value})

    @classmethod
    def from_json(cls, text: str) -> "BatchMeta":
        data = json.loads(text)
        return cls(**{**data, "status": BatchStatus(data["status"])})


class BatchStore:
    """Batches of all tenants under `root`; every read by id checks the owner (another tenant's batch is NotFound)."""

    def __init__(self, root: Path):
        self.root = Path(root).expanduser()
        self._append_lock = threading.Lock()
        self._meta_lock = threading.Lock()

    # --- batches -----------------------------------------------------------------------------------------------------
    def create(
        self, tenant_id: str, raw: bytes, total: int, task: str | None = None, records: Sequence[dict] = ()
    ) -> BatchMeta:
        """A new queued batch holding `raw`, with `records` (lines that failed parsing) already in its results."""
        self.root.mkdir(parents=True, exist_ok=True)
        meta = BatchMeta(f"batch_{secrets.token_hex(12)}", tenant_id, total, time.time(), task=task)
        staging = self.root / f".new-{meta.id}"
        staging.mkdir()
        try:
            _write(staging / INPUT, raw)
            _write(staging / RESULTS, b"".join(_line(r) for r in records))
            _write(staging / META, meta.to_json().encode())
            os.rename(staging, self.root / meta.id)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        _fsync_dir(self.root)
        return meta

    def meta(self, batch_id: str, tenant_id: str | None = None) -> BatchMeta:
        """The batch's metadata; NotFound when it does not exist or, with `tenant_id`, belongs to someone else."""
        path = self._folder(batch_id) / META
        try:
            meta = BatchMeta.from_json(path.read_text())
        except FileNotFoundError:
            raise NotFound(f"no batch {batch_id[:40]!r}", field="path.batch_id") from None
        if tenant_id is not None and meta.tenant_id != tenant_id:
            raise NotFound(f"no batch {batch_id[:40]!r}", field="path.batch_id")
        return meta

    def batches(self, tenant_id: str | None = None) -> list[BatchMeta]:
        """Batches, oldest first; only `tenant_id`'s when given."""
        if not self.root.is_dir():
            return []
        metas = []
        for path in self.root.iterdir():
            if _ID.match(path.name):
                with contextlib.suppress(NotFound):  # deleted between listing and reading
                    metas.append(self.meta(path.name))
        return sorted((m for m in metas if tenant_id in (None, m.tenant_id)), key=lambda m: m.created_at)

    def set_status(self, batch_id: str, status: BatchStatus) -> BatchMeta:
        """Write the new status atomically (a reader sees the old file or the new one, never half of one)."""
        with self._meta_lock:
            meta = replace(self.meta(batch_id), status=status, finished_at=time.time() if status.finished else None)
            path = self._folder(batch_id) / META
            staging = path.with_name(f"{META}.{secrets.token_hex(4)}.tmp")
            _write(staging, meta.to_json().encode())
            os.replace(staging, path)
            _fsync_dir(path.parent)
        return meta

    def input(self, batch_id: str) -> bytes:
        """The upload; FileNotFoundError once the batch has finished and its input was dropped."""
        return (self._folder(batch_id) / INPUT).read_bytes()

    def has_input(self, batch_id: str) -> bool:
        return (self._folder(batch_id) / INPUT).is_file()

    def drop_input(self, batch_id: str) -> None:
        """Remove the upload (customer text before redaction) once no line of it will run again."""
        with contextlib.suppress(FileNotFoundError):
            (self._folder(batch_id) / INPUT).unlink()
            _fsync_dir(self._folder(batch_id))

    def size(self, batch_id: str) -> int:
        """Bytes the batch holds on disk (0 when it has just been deleted)."""
        total = 0
        for name in (INPUT, META, RESULTS):
            with contextlib.suppress(FileNotFoundError):
                total += (self._folder(batch_id) / name).stat().st_size
        return total

    def delete(self, batch_id: str) -> None:
        """Remove the batch and its files; NotFound when it does not exist (or is being deleted)."""
        trash = self.root / f".deleted-{batch_id}-{secrets.token_hex(4)}"
        try:
            os.rename(self._folder(batch_id), trash)
        except FileNotFoundError:
            raise NotFound(f"no batch {batch_id[:40]!r}", field="path.batch_id") from None
        _fsync_dir(self.root)
        shutil.rmtree(trash, ignore_errors=True)

    def sweep(self, older_than_s: float = 3600.0) -> None:
        """Remove leftovers of a crash: deletions half done, and creations not renamed in `older_than_s`."""
        if not self.root.is_dir():
            return
        now = time.time()
        for path in self.root.iterdir():
            stale = path.name.startswith(".new-") and now - path.stat().st_mtime > older_than_s
            if path.name.startswith(".deleted-") or stale:
                shutil.rmtree(path, ignore_errors=True)

    # --- results -----------------------------------------------------------------------------------------------------
    def append(self, batch_id: str, record: dict) -> None:
        """Add one finished line's record; durable (fsync'ed) when this returns."""
        self.append_many(batch_id, [record])

    def append_many(self, batch_id: str, records: list[dict]) -> None:
        """Add records in one write and one fsync."""
        with self._append_lock, open(self._folder(batch_id) / RESULTS, "ab") as f:
            f.write(b"".join(_line(r) for r in records))
            f.flush()
            os.fsync(f.fileno())

    def results(self, batch_id: str) -> list[dict]:
        """Finished lines' records, one per line number (the first written), in line order."""
        first: dict[int, dict] = {}
        for record in _records(self._folder(batch_id) / RESULTS):
            first.setdefault(record["line"], record)
        return [first[n] for n in sorted(first)]

    def repair(self, batch_id: str) -> None:
        """Cut a torn last record (a crash mid-append) so that the next append starts on a line of its own."""
        path = self._folder(batch_id) / RESULTS
        data = path.read_bytes()
        if data and not data.endswith(b"\n"):
            with open(path, "r+b") as f:
                f.truncate(data.rfind(b"\n") + 1)
                f.flush()
                os.fsync(f.fileno())

    # --- one runner per folder ---------------------------------------------------------------------------------------
    def claim(self) -> BinaryIO | None:
        """An exclusive lock on the folder for one runner (close the file to release it); None when another holds it."""
        self.root.mkdir(parents=True, exist_ok=True)
        handle = open(self.root / LOCK, "a+b")  # noqa: SIM115 - returned open: closing it releases the lock
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            return None
        return handle

    def _folder(self, batch_id: str) -> Path:
        if not _ID.match(batch_id):
            raise NotFound(f"no batch {batch_id[:40]!r}", field="path.batch_id")
        return self.root / batch_id


def _line(record: dict) -> bytes:
    return (json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n").encode()


def _records(path: Path):
    with open(path, "rb") as f:
        for raw in f:
            if not raw.endswith(b"\n"):
                return  # torn last record: that line is not finished
            with contextlib.suppress(ValueError):
                record = json.loads(raw)
                if isinstance(record, dict) and isinstance(record.get("line"), int):
                    yield record


def _write(path: Path, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
