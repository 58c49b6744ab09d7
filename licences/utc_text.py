"""One way to write a moment for machines: ISO 8601 in UTC, whole seconds, ``Z``.

Signed answer bodies (:mod:`licences.reuse`), usage-log rows (:mod:`licences.usage_log`), the
annotated copy's metadata (:mod:`licences.annotated_copy`) and what the public service says of
a copy (:mod:`verify_api.annotated_copies`) all name times this way, so the same moment reads
the same wherever a department or a holder meets it — and a copy's expiry in its metadata, its
signed body and its usage row can be compared as text.
"""

from __future__ import annotations

from datetime import UTC, datetime


def iso_utc(moment: datetime) -> str:
    """``2026-01-02T07:04:05Z``: ``moment`` (aware) in UTC, microseconds dropped."""
    return moment.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
