"""One logging set-up for every entry point: text lines (default) or one JSON object per line
with ``ASKAGENCY_LOG_FORMAT=json``, for log collectors that index fields.

The JSON line carries the same message the text line does (time, level, logger, message and
the traceback, if any) and nothing else: no request data, so no personal data beyond what the
messages themselves already carry.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import IO

from askagency.config import get_settings

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class JsonFormatter(logging.Formatter):
    """``{"time", "level", "logger", "message"[, "exception"]}`` on one line."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, str] = {
            # The record's own timestamp (taken by logging), in UTC with an explicit offset.
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        elif record.stack_info:
            line["exception"] = self.formatStack(record.stack_info)
        return json.dumps(line, ensure_ascii=False)


def configure_logging(
    level: int | str = logging.INFO, stream: IO[str] | None = None, log_format: str | None = None
) -> logging.Handler:
    """Replace the root logger's handlers by one on ``stream`` (default stdout) in
    ``log_format`` (default: the ``log_format`` setting). Returns the handler."""
    log_format = log_format or get_settings().log_format
    handler = logging.StreamHandler(stream or sys.stdout)
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    return handler
