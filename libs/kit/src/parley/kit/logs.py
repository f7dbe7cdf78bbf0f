"""Structured logs: one JSON object per line on stderr, secrets redacted, with the trace and
span ids of the work that logged it."""

import logging
import re
import sys
from collections.abc import Callable
from datetime import UTC
from datetime import datetime
from typing import Any

import msgspec
from opentelemetry import trace

__all__ = ["configure_logging", "redact", "scrub_logs"]

_SECRET_KEY = re.compile(r"(api[_-]?key|secret|token|password|authorization)", re.I)
_SECRET_VALUE = re.compile(r"(sk-[A-Za-z0-9_-]{8,}|sk-ant-[A-Za-z0-9_-]{8,}|Bearer\s+\S+)")
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


def redact(text: str) -> str:
    """``text`` with anything shaped like a key or bearer token replaced."""
    return _SECRET_VALUE.sub("[REDACTED]", text)


class _JsonFormatter(logging.Formatter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "service": self.service,
            "logger": record.name,
            "message": redact(record.getMessage()),
        }
        span = trace.get_current_span().get_span_context()
        if span.is_valid:  # find the request in Jaeger from its log line
            entry["trace_id"] = format(span.trace_id, "032x")
            entry["span_id"] = format(span.span_id, "016x")
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = "[REDACTED]" if _SECRET_KEY.search(key) else value
        if record.exc_info:
            entry["exception"] = redact(self.formatException(record.exc_info))
        line = msgspec.json.encode(entry, enc_hook=str).decode()
        for scrub in _scrubbers:
            line = scrub(line)
        return line


_scrubbers: list[Callable[[str], str]] = []


def scrub_logs(scrub: Callable[[str], str]) -> None:
    """Pass every log line of this process through ``scrub`` too, from now on, however often
    logging is configured again (every service in one process configures it once each):
    e.g. the runtime's known secrets, which have no shape :func:`redact` would find."""
    _scrubbers.append(scrub)


_CHATTY = ("httpx", "httpx2", "httpcore")
"""Libraries that log every HTTP request at INFO (a model call through a provider SDK, on the
hot path of every turn): their warnings and errors still show; each call is in its trace."""


def configure_logging(service: str, level: str = "INFO") -> None:
    """Send every log record to stderr as one JSON line tagged with ``service`` (the
    :data:`_CHATTY` libraries' from WARNING up)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_JsonFormatter(service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in _CHATTY:
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))
