"""The versions of one licence, and whether its holder may still act on it: the one rule that
holder credentials (:mod:`licences.holders`) and holder grants (:mod:`licences.reuse_grants`,
:mod:`licences.reuse`) share.

A licence lives on through changes and renewals: each new version names the one before
(``previous_identifier``) and the old one names its successor (``superseded_by``). Only the
two links together, with type, licence number and holder kept, make a version of the same
licence. A *new* licence that merely reuses the licence number — after the first was revoked,
and perhaps for another holder — is not linked, so nothing bound to the old licence (a
credential, a grant, a usage row) is carried over to it.

Whether the holder may act is decided on the version in force now, by its effective status
(:func:`licences.states.effective_status`, so an expiry not yet swept counts): valid,
suspended or expired keep the holder's rights — a suspended licence can still be shown with its
red banner, and the data the holder granted can be read — while a revoked, cancelled,
deregistered or transferred-out licence has ended, and with it every credential and grant on it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from ledger.database import Database

from .metadata import LicenceStatus
from .registry import LicenceRecord
from .states import effective_status

#: Statuses of the licence's current version in which its holder's credentials and grants work.
USABLE = frozenset({LicenceStatus.VALID, LicenceStatus.SUSPENDED, LicenceStatus.EXPIRED})
#: How many changes and renewals are followed, either way, before the chain counts as broken.
MAX_SUCCESSION = 32


class _Bound(Protocol):
    type_code: str
    licence_number: str
    holder_code: str


@dataclass(frozen=True)
class Current:
    """The version in force now (None if the chain is broken) and its effective status."""

    record: LicenceRecord | None
    status: LicenceStatus | None

    @property
    def usable(self) -> bool:
        """Whether the holder's credentials and grants work on the licence now."""
        return self.record is not None and self.status in USABLE


def same_licence(one: _Bound, other: LicenceRecord) -> bool:
    """Whether ``other`` is a version of the licence ``one`` belongs to (type, number, holder kept)."""
    return (one.type_code, one.licence_number, one.holder_code) == \
        (other.type_code, other.licence_number, other.holder_code)


def _get(session: Session, identifier: str) -> LicenceRecord | None:
    return session.scalars(select(LicenceRecord).where(LicenceRecord.identifier == identifier)).first()


def current_version(session: Session, record: LicenceRecord, now: datetime) -> Current:
    """The end of ``record``'s chain of changes and renewals, with its effective status at ``now``."""
    current = record
    for _ in range(MAX_SUCCESSION):
        if not current.superseded_by:
            return Current(current, effective_status(current.status, current.valid_until, now))
        following = _get(session, current.superseded_by)
        if following is None or following.previous_identifier != current.identifier \
                or not same_licence(current, following):
            return Current(None, None)
        current = following
    return Current(None, None)


def versions_of(session: Session, current: LicenceRecord) -> list[str]:
    """The identifiers of ``current`` and of the earlier versions that lead to it, newest first:
    what a grant or usage row must name to belong to this licence. Followed back through
    ``previous_identifier`` and accepted only where the earlier version names this one as its
    successor (both links), with type, number and holder kept."""
    chain = [current.identifier]
    here = current
    for _ in range(MAX_SUCCESSION):
        if not here.previous_identifier:
            break
        before = _get(session, here.previous_identifier)
        if before is None or before.superseded_by != here.identifier or not same_licence(here, before):
            break
        chain.append(before.identifier)
        here = before
    return chain


def licence_versions(db: Database, identifier: str) -> list[str]:
    """:func:`versions_of` the licence version ``identifier`` (its own transaction); [] if unknown."""
    with db.transaction() as s:
        record = _get(s, identifier)
        return versions_of(s, record) if record is not None else []
