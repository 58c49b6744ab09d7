"""Refused requests in the audit log, without letting a caller flood it.

A refusal is worth recording: a key probing for another department's licences, a business
system trying operations its key does not have, a revoked key still in use. But the audit
log is append-only and hash-chained — every entry is written in turn and kept for ever — so
a caller that could make one entry per request could make the log grow, and every other act
wait, as fast as it can send. Refusals are therefore written in full for the first
:attr:`RefusalAudit.burst` of each API key (and kind of refusal) in a window; the rest of that
window are counted and written as one ``<action>.suppressed`` entry with the count, the
reasons and the time span, when the key's next refusal comes after the window or when the
service stops. Every refusal is also logged to the server log at warning level.

The window is per process (each worker counts on its own), so with N workers a key can cause
at most N × burst entries per window. Only keys that authenticated — or whose secret matched
a revoked or expired key — reach here: the number of counters is bounded by the number of
real keys, not by what callers send.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ledger.audit import AuditLog

log = logging.getLogger("zhengyin.service")
BURST = 10
WINDOW_SECONDS = 60.0


@dataclass
class _Window:
    started: float
    actor: str
    written: int = 0
    suppressed: int = 0
    reasons: Counter = field(default_factory=Counter)
    first: datetime | None = None
    last: datetime | None = None


@dataclass(frozen=True)
class _Entry:
    action: str
    actor: str
    subject: str
    details: dict[str, Any]


class RefusalAudit:
    """Writes ``action`` entries for refused requests, at most ``burst`` per key and window."""

    def __init__(
        self,
        audit: Callable[[], AuditLog],
        *,
        burst: int = BURST,
        window_seconds: float = WINDOW_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ):
        self._audit, self.burst, self.window, self._clock = audit, burst, window_seconds, clock
        self._lock = threading.Lock()
        self._windows: dict[tuple[str, str], _Window] = {}

    def refused(self, action: str, *, key_id: str, actor: str, subject: str, details: dict[str, Any]) -> None:
        """Record (or count) one refusal of API key ``key_id``."""
        log.warning("%s: api-key %s on %s: %s", action, key_id, subject, details)
        now, wall = self._clock(), datetime.now(UTC)
        pending: list[_Entry] = []
        with self._lock:
            slot = (action, key_id)
            window = self._windows.get(slot)
            if window is None or now - window.started >= self.window:
                if window is not None:
                    pending.extend(self._summary(slot, window))
                window = self._windows[slot] = _Window(started=now, actor=actor)
            if window.written < self.burst:
                window.written += 1
                pending.append(_Entry(action, actor, subject, details))
            else:
                window.suppressed += 1
                window.reasons[str(details.get("reason", "?"))] += 1
                window.first = window.first or wall
                window.last = wall
        self._write(pending)

    def flush(self) -> None:
        """Write the counts of every window with suppressed refusals (at shutdown)."""
        with self._lock:
            pending = [e for slot, w in self._windows.items() for e in self._summary(slot, w)]
            self._windows.clear()
        self._write(pending)

    def _summary(self, slot: tuple[str, str], window: _Window) -> list[_Entry]:
        if not window.suppressed:
            return []
        action, key_id = slot
        details = {
            "suppressed": window.suppressed,
            "reasons": dict(window.reasons),
            "first": window.first.isoformat() if window.first else None,
            "last": window.last.isoformat() if window.last else None,
            "burst": self.burst,
            "window_seconds": self.window,
        }
        return [_Entry(f"{action}.suppressed", window.actor, f"api-key:{key_id}", details)]

    def _write(self, entries: list[_Entry]) -> None:
        if not entries:
            return
        audit = self._audit()
        for e in entries:
            audit.record(e.action, actor=e.actor, subject=e.subject, details=e.details)
