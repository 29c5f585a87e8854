"""Logs of `coopbot run`: one line per event, plain or JSON (`[logging] format`).

JSON because a log collector (journald's export, Loki, an ELK stack) reads fields
without guessing at a format: `time`, `level`, `logger`, `event`, and the
exception's traceback when there is one, each object on one line.

What never goes in: a message's text or a vote. The bot's own log calls name
things by their codes (J-12, P-3, outbox row numbers) and never log what people
typed; as a second guard, a record whose extra fields carry a name this module
knows to be private (`text`, `vote`, `choice`, `message`...) has those fields left
out of the JSON line rather than written.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

#: Extra fields a record may carry that are never written: what people said or chose.
PRIVATE_FIELDS = frozenset({"text", "vote", "votes", "choice", "choices", "message", "body", "caption", "ballot"})
#: The LogRecord's own attributes: anything else on a record was passed as `extra=`.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}
TEXT_FORMAT = "%(levelname)s %(name)s: %(message)s"


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key in _STANDARD or key.startswith("_") or key in PRIVATE_FIELDS:
                continue
            entry[key] = value if isinstance(value, str | int | float | bool | type(None)) else repr(value)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def level_of(configured: str, verbose: bool) -> int:
    if configured:
        return int(getattr(logging, configured.upper()))
    return logging.INFO if verbose else logging.WARNING


def setup_logging(fmt: str, level: str = "", *, verbose: bool = False, stream: TextIO | None = None) -> None:
    """Replace the root handler (the CLI's plain one) by one of the configured format."""
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    logging.basicConfig(level=level_of(level, verbose), handlers=[handler], force=True)
