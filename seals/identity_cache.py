"""Signing identities kept for a few seconds: the seal lookup of a licence, paid once per burst.

Finding what a licence is sealed with — the department's active licence seals, the seal row,
its signer certificates as the CA has them now, the key store's versions, the certificate
chain, the parsed seal — cost ~5 ms of database reads and parsing for every licence, the same
answer each time. :class:`SigningIdentities` keeps the answer of
:meth:`seals.office.SealOffice.signing_identity` (and of a department's seal choice) for
``ttl`` seconds (:data:`DEFAULT_TTL_SECONDS`), under these rules:

* **Within this process a change takes effect at once.** Every act that can change whether a
  seal may sign is audited — ``seal.*`` (suspend, revoke, rotation …), ``ca.*`` (a certificate
  revoked, a CRL, a CA rotation), ``key.*`` (a key version disabled, destroyed, rotated) — so
  an audit row of those kinds empties every cache of the process when it is written and again
  when its transaction commits (SQLAlchemy events on :class:`ledger.audit.AuditRecord` and on
  sessions). :func:`invalidate` does the same by hand, for code that changes a seal without
  an audit row of its own.
* **Across processes the age bounds it.** Another process (the CLI, another worker, another
  node) revoking a seal or certificate is seen by this one's new signatures within ``ttl``
  seconds at most: a revocation takes effect for new signatures within 2 s by default.
* **What depends on the signing time is checked every time.** A kept identity is handed out
  only while the signing time lies within the seal's validity and its signer certificate's,
  and "now" before both ends — the checks :meth:`SealOffice.signing_identity` makes — else it
  is looked up afresh (which says precisely why it is refused).
* **The key store still has the last word.** An identity holds a :class:`hsm.keystore.KeyRef`,
  which signs through the store: a disabled or destroyed key version refuses to sign at once,
  kept identity or not.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from datetime import UTC, datetime

from asn1crypto import x509
from sqlalchemy import event
from sqlalchemy.orm import Session, object_session

from ledger.audit import AuditRecord

from . import office as office_module
from .office import SealOffice, SigningIdentity

DEFAULT_TTL_SECONDS = 2.0
#: Audit actions that say nothing about whether a seal may sign (a vault key unwrapped for use).
_HARMLESS = frozenset({"key.unwrap", "key.rewrap"})
_CHANGED = "zhengyin.seal_state_changed"
_caches: weakref.WeakSet[SigningIdentities] = weakref.WeakSet()
_caches_lock = threading.Lock()


def changes_signing(action: str) -> bool:
    """True for an audited act that may change whether some seal can sign."""
    return action.startswith(("seal.", "ca.", "key.")) and action not in _HARMLESS


def invalidate(es_id: str | None = None) -> None:
    """Forget what every cache of this process keeps about seal ``es_id`` (every seal when None),
    and every department's seal choice. Call it after changing a seal's state, its signer
    certificates or their keys by any means that does not write a ``seal.*``/``ca.*``/``key.*``
    audit row (those invalidate by themselves)."""
    with _caches_lock:
        caches = list(_caches)
    for cache in caches:
        cache.forget(es_id)


@dataclass(frozen=True)
class _Kept:
    identity: SigningIdentity
    department: str | None
    usable_from: datetime   # the later of the seal's and the certificate's starts
    usable_until: datetime  # the earlier of their ends
    expires: float          # on the cache's clock


def _certificate_validity(der: bytes) -> tuple[datetime, datetime]:
    validity = x509.Certificate.load(der)["tbs_certificate"]["validity"]
    return validity["not_before"].native.astimezone(UTC), validity["not_after"].native.astimezone(UTC)


class SigningIdentities:
    """:meth:`SealOffice.signing_identity` of one office, kept ``ttl`` seconds (see the module)."""

    def __init__(self, office: SealOffice, *, ttl: float = DEFAULT_TTL_SECONDS,
                 clock: Callable[[], float] = time.monotonic):
        self.office, self.ttl, self.clock = office, ttl, clock
        self._kept: dict[Hashable, _Kept] = {}
        self._lock = threading.Lock()
        with _caches_lock:
            _caches.add(self)

    def signing_identity(self, es_id: str, at: datetime | None = None) -> SigningIdentity:
        """What :meth:`SealOffice.signing_identity` says for ``es_id`` at ``at``, kept."""
        when = _utc(at)
        if when is None:  # a time without a zone: the office refuses it with its own error
            return self.office.signing_identity(es_id, at)
        found = self._fresh(("seal", es_id), when)
        if found is not None:
            return found.identity
        identity = self.office.signing_identity(es_id, when)
        self.keep(("seal", es_id), identity)
        return identity

    def chosen(self, key: Hashable, at: datetime | None = None) -> tuple[SigningIdentity, str | None] | None:
        """A choice kept under ``key`` by :meth:`keep` (e.g. a department's licence seal and the
        department's name), if it is still fresh and usable at ``at``; None otherwise."""
        when = _utc(at)
        found = None if when is None else self._fresh(key, when)
        return None if found is None else (found.identity, found.department)

    def keep(self, key: Hashable, identity: SigningIdentity, department: str | None = None) -> None:
        """Keep ``identity`` (just obtained from the office) under ``key`` for ``ttl`` seconds."""
        start, end = _certificate_validity(identity.signer_certificate)
        seal = identity.seal
        kept = _Kept(identity, department, max(start, seal.valid_start.astimezone(UTC)),
                     min(end, seal.valid_end.astimezone(UTC)), self.clock() + self.ttl)
        with self._lock:
            self._kept[key] = kept

    def forget(self, es_id: str | None = None) -> None:
        """Drop what is kept about ``es_id`` (everything when None) and every department's choice."""
        with self._lock:
            if es_id is None:
                self._kept.clear()
                return
            for key in [k for k, v in self._kept.items() if v.identity.es_id == es_id or v.department]:
                del self._kept[key]

    def _fresh(self, key: Hashable, at: datetime) -> _Kept | None:
        with self._lock:
            kept = self._kept.get(key)
            if kept is None:
                return None
            if self.clock() >= kept.expires:
                del self._kept[key]
                return None
        now = office_module.utc_now()  # the office's clock, looked up as the office does
        if not kept.usable_from <= at <= kept.usable_until or now > kept.usable_until:
            return None  # the office says why, and whether another seal will do
        return kept


def _utc(at: datetime | None) -> datetime | None:
    """``at`` in UTC (now when None); None for a time without a zone, which is never compared."""
    if at is None:
        return office_module.utc_now()
    if at.tzinfo is None or at.utcoffset() is None:
        return None
    return at.astimezone(UTC)


# ---- invalidation by what the audit log records ---------------------------------------------

@event.listens_for(AuditRecord, "after_insert")
def _audited(_mapper, _connection, row: AuditRecord) -> None:
    if changes_signing(row.action):
        invalidate()
        session = object_session(row)
        if session is not None:
            session.info[_CHANGED] = True


@event.listens_for(Session, "after_commit")
def _committed(session: Session) -> None:
    if session.info.pop(_CHANGED, False):
        invalidate()  # again: a lookup between the flush and the commit saw the old state


@event.listens_for(Session, "after_rollback")
def _rolled_back(session: Session) -> None:
    session.info.pop(_CHANGED, None)
