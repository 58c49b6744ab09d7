"""Recognising an uploaded purpose-limited annotated copy (加注件) on the public service.

A copy the data-reuse service made is a sealed document like any other: the engine judges its
signature, and keeps doing so after the copy's time is up. What only the register knows is that
these bytes are a copy — for which department, which purpose and until when: the usage log row of
the access that produced it records the SM3 of its exact bytes (:mod:`licences.usage_log`,
indexed). :func:`copy_status` answers from it, so the report page can say "annotated copy for X,
purpose Y, until Z" and, once Z has passed — or the holder has withdrawn the grant the copy was
made under — that nobody may take it as current.

Nothing here reveals more than the copy itself prints: its band shows the department, purpose,
times and copy number, and the licence identifier is on the page.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from sqlalchemy import select

from licences.reuse_clients import DepartmentClient
from licences.reuse_grants import HolderGrant
from licences.usage_log import UsageRecord
from licences.utc_text import iso_utc

from .records import PublicRecords
from .texts import china_time

_SM3_HEX = re.compile(r"[0-9a-f]{64}")


def copy_status(records: PublicRecords, sm3_hex: str, now: datetime) -> dict[str, Any] | None:
    """What the register says of the annotated copy whose bytes have SM3 ``sm3_hex`` (lower-case
    hex): ``{"response_id", "purpose", "client_name", "expires", "expired", "withdrawn", "reason",
    "licence"}`` (and its format, creation time, and the expiry in China time as the page prints
    it); None when no copy has these bytes (or ``sm3_hex`` is not an SM3 digest).

    ``client_name`` is the department's name as the copy prints it (recorded when it was made).
    ``expired`` is true once the copy is no longer good: its own time is up, or the holder's grant
    it was made under was revoked or has ended — the copy must not outlive the holder's consent.
    ``withdrawn`` says the latter, and ``reason`` which: ``"expired"``, ``"grant-revoked"``,
    ``"grant-ended"`` (None while the copy is good)."""
    if not isinstance(sm3_hex, str) or not _SM3_HEX.fullmatch(sm3_hex):
        return None
    with records.domain.db.transaction() as s:
        row = s.execute(select(UsageRecord, DepartmentClient.name, HolderGrant)
                        .join(DepartmentClient, DepartmentClient.id == UsageRecord.client_id)
                        .outerjoin(HolderGrant, HolderGrant.id == UsageRecord.grant_id)
                        .where(UsageRecord.copy_sm3 == sm3_hex)
                        .order_by(UsageRecord.id).limit(1)).first()
    if row is None:
        return None
    usage, client_name, grant = row
    expires = usage.copy_expires
    if expires is None or now >= expires:
        reason = "expired"
    elif grant is None or grant.revoked_at is not None:
        reason = "grant-revoked"  # a copy is only made under a grant: none found reads as withdrawn
    elif now >= grant.valid_until:
        reason = "grant-ended"
    else:
        reason = None
    withdrawn = reason in ("grant-revoked", "grant-ended")
    return {"response_id": usage.response_id, "purpose": usage.purpose,
            "client_name": usage.copy_client_name or client_name,
            "format": usage.copy_format, "created": iso_utc(usage.at),
            "expires": iso_utc(expires) if expires else None,
            "expires_china": china_time(expires) if expires else None,
            "expired": reason is not None, "withdrawn": withdrawn, "reason": reason,
            "withdrawn_at": None if not withdrawn or grant is None else
            iso_utc(grant.revoked_at or grant.valid_until),
            "licence": usage.identifier}
