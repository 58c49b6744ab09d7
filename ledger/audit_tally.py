"""Repeated failures into the audit log as a few counted entries, not one row per guess.

Somebody guessing bearer tokens sends thousands of requests; an audit row for each would let
them flood the hash-chained log (and the lock every append takes) at will. A tally counts the
failures of one kind in this process and writes them as one entry per ``window`` seconds:
the first failure after a quiet window at once (so a single failure is seen without delay),
the ones after it when the window has passed and the next failure, :meth:`AuditTally.flush`
or :meth:`AuditTally.close` comes. Each entry holds the count per reason and per subject
(capped), and the span of time it covers. Counts still pending when a process dies are lost;
the rate limits in front bound how many that can be.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime

from .audit import AuditLog

log = logging.getLogger(__name__)

#: The most subjects one entry names one by one; the rest are counted under ``others``.
MAX_NAMED = 20


class AuditTally:
    """Counts failures of one ``action`` and writes them aggregated (see the module docstring)."""

    def __init__(self, audit: AuditLog, action: str, *, actor: str, subject: str, window: float = 60.0,
                 clock: Callable[[], float] = time.monotonic,
                 wall_clock: Callable[[], datetime] = lambda: datetime.now(UTC)):
        if window <= 0:
            raise ValueError("an audit tally needs a window of more than 0 seconds")
        self.audit, self.action, self.actor, self.subject = audit, action, actor, subject
        self.window, self.clock, self.wall_clock = window, clock, wall_clock
        self._lock = threading.Lock()
        self._last_written: float | None = None
        self._reasons: Counter[str] = Counter()
        self._subjects: Counter[str] = Counter()
        self._since: datetime | None = None

    def add(self, reason: str, subject: str | None = None) -> None:
        """Count one failure (``subject``: a public id it concerned, never a secret)."""
        with self._lock:
            self._reasons[reason] += 1
            if subject:
                self._subjects[subject] += 1
            if self._since is None:
                self._since = self.wall_clock()
        self.flush()

    def flush(self, *, force: bool = False) -> None:
        """Write what is pending if the window has passed since the last entry (or ``force``)."""
        with self._lock:
            now = self.clock()
            due = self._last_written is None or now - self._last_written >= self.window
            if not self._reasons or not (due or force):
                return
            reasons, subjects, since = self._reasons, self._subjects, self._since
            self._reasons, self._subjects, self._since = Counter(), Counter(), None
            self._last_written = now
        named = dict(subjects.most_common(MAX_NAMED))
        details = {"failures": sum(reasons.values()), "reasons": dict(sorted(reasons.items())),
                   "subjects": named, "others": sum(subjects.values()) - sum(named.values()),
                   "since": since.isoformat() if since else None, "until": self.wall_clock().isoformat()}
        try:
            self.audit.record(self.action, actor=self.actor, subject=self.subject, details=details)
        except Exception as exc:  # a failed write must not turn a refusal into an error
            log.warning("could not write %s to the audit log (%s); kept for the next try", self.action,
                        exc.__class__.__name__)
            with self._lock:  # keep the counts for the next try
                self._reasons.update(reasons)
                self._subjects.update(subjects)
                self._since = min(filter(None, (since, self._since)), default=None)
                self._last_written = None

    def close(self) -> None:
        """Write whatever is pending (at shutdown)."""
        self.flush(force=True)
