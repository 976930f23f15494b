"""Logging for the CLI only: stderr (journald stores it), one line per event, and a filter
that redacts secrets before anything is written."""

from __future__ import annotations

import logging
import re
import sys

_SECRETS = (
    re.compile(r"(\bLOGIN\s+\S+\s+)(\"[^\"]*\"|\S+)", re.I),
    re.compile(r"(\bAUTHENTICATE\s+\S+\s+)(\S+)", re.I),
    re.compile(r"((?:password|passwd|token|secret)[\"']?\s*[:=]\s*[\"']?)([^\s\"',]+)", re.I),
    re.compile(r"(Bearer\s+)(\S+)", re.I),
)


class Redactor(logging.Filter):
    """Removes passwords and tokens from log records, including known secret values."""

    def __init__(self, secrets: tuple[str, ...] = ()) -> None:
        super().__init__()
        self.secrets = tuple(s for s in secrets if s)

    def add(self, secret: str) -> None:
        if secret:
            self.secrets = (*self.secrets, secret)

    def redact(self, text: str) -> str:
        for s in self.secrets:
            text = text.replace(s, "********")
        for pattern in _SECRETS:
            text = pattern.sub(r"\1********", text)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = self.redact(message)
        if record.exc_info and record.exc_info[1] is not None:
            exc_text = logging.Formatter().formatException(record.exc_info)
            record.exc_text = self.redact(exc_text)
            record.exc_info = None
        if cleaned != message or record.args:
            record.msg, record.args = cleaned, None
        return True


REDACTOR = Redactor()


def setup(verbose: bool = False) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    handler.addFilter(REDACTOR)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    for noisy in ("mailparser", "pymap", "asyncio") + (() if verbose else ("imapclient",)):
        logging.getLogger(noisy).setLevel(logging.WARNING)
