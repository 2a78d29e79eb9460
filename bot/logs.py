"""Logging for `pgmbot run`: key=value lines (the default) or one JSON object per line.

    setup_logging("INFO", "json")

JSON lines carry ``time`` (UTC, ISO 8601 with milliseconds), ``level``, ``logger``, ``message``
(the same key=value text as the plain format) and ``exception`` when there is one, for journald
or Loki. Secrets are kept out the same way in both formats: messages never carry them, and the
filters on python-telegram-bot's and httpx's loggers (bot.notify.telegram_bot.redact_in_logs)
rewrite a record before any handler formats it.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Literal

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line (newlines inside are escaped by JSON)."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def setup_logging(level: str, log_format: Literal["text", "json"] = "text") -> None:
    """Root handler on stderr in the chosen format (none when logging was set up before)."""
    handler = logging.StreamHandler(sys.stderr)
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter(TEXT_FORMAT))
    logging.basicConfig(level=getattr(logging, level), handlers=[handler])
