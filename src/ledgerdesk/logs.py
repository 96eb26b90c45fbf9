"""How a server process logs: plain lines, or one JSON object a line
(``LEDGERDESK_LOG_FORMAT=json``) for a log collector, through the standard library.

A JSON line has ``time`` (UTC, milliseconds), ``level``, ``logger``, ``message`` and,
when the record has them, the request's ``request_id``, ``method``, ``path``,
``action``, ``user_id``, ``status``, ``error_code`` and ``duration_ms``; an exception's
traceback as ``exception``. Nothing else of a request is logged: never its body, a key,
a password or a token (see ``http.request_log``).
"""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime
from typing import Literal

import orjson

LogFormat = Literal["text", "json"]
# The request fields a record may carry (``extra=``), in the order a line shows them.
REQUEST_FIELDS = (
    "request_id",
    "method",
    "path",
    "action",
    "user_id",
    "status",
    "error_code",
    "duration_ms",
)
TEXT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in REQUEST_FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                line[name] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(line, default=str).decode()


def configure(log_format: LogFormat, *, requests: bool = False) -> None:
    """The process's logging: every logger (uvicorn's too) through one handler on
    stderr, INFO and up; the request log (``ledgerdesk.request``) only when asked."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else logging.Formatter(TEXT))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)  # ours says more
    logging.getLogger("ledgerdesk.request").setLevel(logging.INFO if requests else logging.WARNING)
