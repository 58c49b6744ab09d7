"""One summary of a licence row, the same for the command line and the signing service.

A licence past its last valid day is expired (05) whether or not the expiry sweep has
recorded it yet, so the summary shows the *effective* status at ``now`` and, beside it, the
status as recorded. A replaced licence is recorded as 99 (other) with ``superseded_by``; its
``status_name`` says ``superseded`` so that nobody reads 99 as "some unknown state".
:func:`parse_status_filter` accepts every ``status`` and ``status_name`` a summary can show,
so a value read from one answer can be sent back as a filter.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from .lifecycle import SUPERSEDED, effective_status, parse_status
from .metadata import LicenceStatus
from .registry import LicenceRecord

SUPERSEDED_NAME = "superseded"


def status_name(status: LicenceStatus, superseded_by: str | None) -> str:
    """The lower-case name of an effective status; ``superseded`` for a replaced licence."""
    if status is SUPERSEDED and superseded_by:
        return SUPERSEDED_NAME
    return status.name.lower()


def parse_status_filter(value: str) -> LicenceStatus:
    """The status a ``status=`` filter means: a code (``07``), a name (``revoked``) or
    ``superseded`` (99: only a change or renewal leads there). LicenceRequestError otherwise."""
    if str(value).strip().lower() == SUPERSEDED_NAME:
        return SUPERSEDED
    return parse_status(value)


def licence_summary(record: LicenceRecord, now: datetime) -> dict[str, Any]:
    """The registry row as plain data, with the effective status at ``now`` (aware)."""
    status = effective_status(record.status, record.valid_until, now)
    return {
        "identifier": record.identifier,
        "type_code": record.type_code,
        "issuer_code": record.issuer_code,
        "licence_number": record.licence_number,
        "holder_name": record.holder_name,
        "status": status.value,
        "status_name": status_name(status, record.superseded_by),
        "recorded_status": record.status,
        "valid_from": record.valid_from.isoformat(),
        "valid_until": record.valid_until.isoformat() if record.valid_until else None,
        "previous_identifier": record.previous_identifier,
        "superseded_by": record.superseded_by,
        "ofd_sm3": record.ofd_sm3,
        "pdf_sm3": record.pdf_sm3,
    }
