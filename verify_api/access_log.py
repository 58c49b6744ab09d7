"""Keeping licence QR payloads and nonces out of the access log.

A QR payload (``/V/<payload>``) is the licence's bearer token: whoever has it can open the
licence's page, and its 128-bit nonce is what keeps identifiers from being enumerated. The
status API's ``nonce=`` parameter is the same secret. uvicorn logs every request line, and
access logs are kept long, shipped around and read by many, so the filter here cuts the
payload to its first :data:`KEPT` characters and blanks every ``nonce`` value before a record
is written. A live presentation's token (``/P/<token>``, ``/api/v1/presentations/<token>``) is
a bearer secret too, and is cut the same way. ``zhengyin serve-verify`` installs the filter on
uvicorn's access logger in each worker.
"""

from __future__ import annotations

import logging
import re

ACCESS_LOGGER = "uvicorn.access"
#: Characters of a payload kept in the log: enough to tell requests apart, far too few to use.
KEPT = 8
_PAYLOAD = re.compile(r"^(/V/|/P/|/api/v1/presentations/)([^?#]*)")
_NONCE = re.compile(r"(?i)((?:^|[?&])nonce=)[^&#]*")


def redact_path(path: str) -> str:
    """``/V/AEAEWSRD…`` for a QR path, ``nonce=…`` for any nonce parameter; else the path as is."""
    def cut(match: re.Match[str]) -> str:
        payload = match[2]
        return match[1] + (payload if len(payload) <= KEPT else payload[:KEPT] + "…")

    return _NONCE.sub(r"\1…", _PAYLOAD.sub(cut, path, count=1))


class RedactingFilter(logging.Filter):
    """Rewrites the path argument of uvicorn's access records (client, method, path, version,
    status) with :func:`redact_path`; records of any other shape pass untouched."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str):
            record.args = (*args[:2], redact_path(args[2]), *args[3:])
        return True


def install(logger_name: str = ACCESS_LOGGER) -> RedactingFilter:
    """Add the filter to ``logger_name`` once (idempotent: a second call returns the first)."""
    logger = logging.getLogger(logger_name)
    for existing in logger.filters:
        if isinstance(existing, RedactingFilter):
            return existing
    installed = RedactingFilter()
    logger.addFilter(installed)
    return installed
