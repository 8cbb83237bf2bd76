"""Structured JSON log lines. Only whitelisted fields are written: never request or response text."""

from __future__ import annotations

import json
import logging

from serving.telemetry.tracing import current_ids

# Fields a log record may carry beyond the message. Anything else passed as `extra` is dropped.
ALLOWED_FIELDS = frozenset(
    {
        "request_id",
        "tenant",
        "task",
        "status",
        "method",
        "path",
        "latency_ms",
        "origin",
        "reason",
        "profile_version",
        "error_type",
        "trace_id",
        "span_id",
    }
)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {
            "ts": round(record.created, 3),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage() if not record.args else record.msg,
        }
        line.update({k: v for k, v in record.__dict__.items() if k in ALLOWED_FIELDS})
        line.update(current_ids())
        if record.exc_info and record.exc_info[0] is not None:
            line["error_type"] = record.exc_info[0].__name__
        return json.dumps(line, default=str)


def configure_logging(level: str = "INFO") -> None:
    """Send the `serving` and access loggers to stderr as JSON lines."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter())
    for name in ("serving", "switchboard"):
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.setLevel(level)
        logger.propagate = False
