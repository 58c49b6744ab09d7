"""The rules of data reuse (免提交): what a department client gets back about a licence.

A client asks about one licence (by identifier, or by licence number for the live licence with
that number) and states a purpose (用证事由). What it gets:

* nothing — the same "not found" as for a licence that does not exist — unless it holds a
  permission (``metadata`` or ``data``) for the licence's type;
* the public metadata (:data:`PUBLIC_METADATA`: type, issuer, status, validity; never the
  licence number or holder data) with a ``metadata`` permission, or a ``data`` permission
  but no usable grant;
* with a ``data`` permission *and* a usable holder grant for this client, this licence and
  exactly this purpose: the metadata plus the licence number, and the licence data restricted
  to the granted fields (intersected with the fields asked for; a field asked for but not
  granted is named in ``not_granted``, its value never sent). A grant of all fields adds the
  holder's name, code and code type to the metadata.

A grant is looked for only while the licence's current version lets its holder act
(:mod:`licences.succession`: valid, suspended or expired — the rule that also decides whether
the holder's credential works), so a revoked, cancelled, deregistered or transferred-out
licence serves no data, whatever grants it had. It is looked for along the licence's own chain
of versions, never on another licence that reuses the number; and the data served under it is
always the current version's, even when an older version's identifier was asked for.

The answer body is signed by the caller's ``sign`` (the data-service signer, outside this room)
over its RFC 8785 canonical JSON, and every request — answered or not found — is a row of the
usage log and an audit entry, written in one transaction with the grant look-up.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from hsm.sm3 import sm3
from ledger.audit import AuditLog
from ledger.database import Database

from .identifiers import IdentifierError
from .jcs import canonical_json
from .registry import LicenceRecord
from .reuse_clients import ClientView, ReuseError, ReuseRequestError
from .reuse_grants import MAX_FIELDS, GrantBook, normalise_purpose
from .states import LIVE, canonical_identifier, effective_status
from .succession import current_version, versions_of
from .summary import status_name
from .usage_log import NOT_FOUND, SERVED_DATA, SERVED_METADATA, TYPE_REQUIRED, UsageRecord

FORMAT = "zhengyin-reuse-response"
FORMAT_VERSION = 1
#: Metadata any permitted client sees: nothing about the holder.
PUBLIC_METADATA = ("identifier", "type_name", "type_code", "name", "version", "issue_date", "issuer_name",
                   "issuer_code", "defining_authority", "valid_from", "valid_until", "area_code",
                   "service_item")
#: Added under a grant of all fields.
HOLDER_METADATA = ("holder_name", "holder_code", "holder_code_type")
MAX_REFERENCE = 120


class LicenceNotVisible(ReuseError, LookupError):
    """No licence this client may see matches (unknown and not permitted read the same)."""


class LicenceTypeRequired(ReuseRequestError):
    """A licence number the client's permitted types share: it must name the type."""


@dataclass(frozen=True)
class ReuseRequest:
    reference: str  # a licence identifier, or a licence number
    purpose: str
    fields: Sequence[str] | None = None
    licence_type: str | None = None


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def checked_fields(fields: object) -> tuple[str, ...] | None:
    if fields is None:
        return None
    names_ok = isinstance(fields, list | tuple) and \
        all(isinstance(f, str) and 0 < len(f) <= 100 for f in fields)
    if not names_ok or not 0 < len(fields) <= MAX_FIELDS:
        raise ReuseRequestError(f"fields must be a list of 1 to {MAX_FIELDS} field names")
    return tuple(dict.fromkeys(fields))


class ReuseDesk:
    """Answers department clients' requests (the data-reuse service's one source of truth)."""

    def __init__(self, db: Database, audit: AuditLog):
        self.db, self.audit = db, audit

    def answer(self, client: ClientView, request: ReuseRequest, *, sign: Callable[[bytes], dict[str, Any]],
               now: datetime | None = None) -> dict[str, Any]:
        """The signed answer ``{"body": …, "signature": …}``; LicenceNotVisible, or
        ReuseRequestError for a missing purpose or malformed fields (nothing logged then);
        LicenceTypeRequired for a shared licence number without a type (logged, like not found)."""
        now = (now or datetime.now(UTC)).replace(microsecond=0)
        purpose = normalise_purpose(request.purpose)
        wanted = checked_fields(request.fields)
        if not isinstance(request.reference, str) or not 0 < len(request.reference) <= MAX_REFERENCE:
            raise ReuseRequestError(f"the licence reference must be 1 to {MAX_REFERENCE} characters")
        response_id = "resp-" + secrets.token_hex(12)
        ambiguous: LicenceTypeRequired | None = None
        body = None
        reference_sm3 = sm3(request.reference.encode("utf-8", "replace")).hex()
        with self.db.transaction() as s:
            try:
                record = self._find(s, client, request.reference, request.licence_type, now)
            except LicenceTypeRequired as exc:
                ambiguous, record = exc, None
            # Refusals are logged and committed like any access; then the refusal is raised.
            if ambiguous is not None:
                self._log(s, client, response_id, now, purpose, None, None, [], TYPE_REQUIRED,
                          reference_sm3=reference_sm3)
            elif record is None or not client.may(record.type_code, "metadata"):
                # the one answer for unknown and hidden
                self._log(s, client, response_id, now, purpose, None, None, [], NOT_FOUND,
                          reference_sm3=reference_sm3)
            else:
                body = self._answer(s, client, record, purpose, wanted, now, response_id, sign)
        if ambiguous is not None:
            raise ambiguous
        if body is None:
            raise LicenceNotVisible("no licence you may read matches")
        return body

    def _answer(self, s, client: ClientView, record: LicenceRecord, purpose: str, wanted, now: datetime,
                response_id: str, sign: Callable[[bytes], dict[str, Any]]) -> dict[str, Any]:
        """The answer to a permitted client about ``record``, logged in ``s``."""
        grant = None
        if client.may(record.type_code, "data"):
            current = current_version(s, record, now)
            if current.usable:  # the holder's rule: no data once the licence has ended
                grant = GrantBook.usable_grant(s, client.id, versions_of(s, current.record), purpose, now)
                if grant is not None:
                    record = current.record  # only the current version's data is served
        body = self._body(client, record, purpose, grant, wanted, now, response_id)
        signature = sign(canonical_json(body))
        self._log(s, client, response_id, now, purpose, record, grant.id if grant else None, body["fields"],
                  SERVED_DATA if grant else SERVED_METADATA)
        return {"body": body, "signature": signature}

    # ---- finding the licence ------------------------------------------------------------------
    @staticmethod
    def _find(session, client: ClientView, reference: str, licence_type: str | None, now: datetime
              ) -> LicenceRecord | None:
        try:
            key = canonical_identifier(reference)
        except IdentifierError:
            key = None
        if key is not None:
            return session.scalars(select(LicenceRecord).where(LicenceRecord.identifier == key)).first()
        # A licence number: the live licence with it, among the types this client may read.
        types = client.type_codes
        if licence_type is not None:
            types = types & {str(licence_type).strip().upper()}
        if not types:
            return None
        rows = [r for r in session.scalars(select(LicenceRecord).where(
            LicenceRecord.licence_number == reference.strip(), LicenceRecord.type_code.in_(sorted(types)),
            LicenceRecord.live_key.is_not(None)))
            if effective_status(r.status, r.valid_until, now) in LIVE]
        if len(rows) > 1:
            raise LicenceTypeRequired("licences of several types you may read have this number: "
                                      "give licence_type")
        return rows[0] if rows else None

    # ---- the answer ---------------------------------------------------------------------------
    @staticmethod
    def _body(client: ClientView, record: LicenceRecord, purpose: str, grant, wanted, now: datetime,
              response_id: str) -> dict[str, Any]:
        issued = record.licence_metadata
        status = effective_status(record.status, record.valid_until, now)
        licence = {name: issued.get(name) for name in PUBLIC_METADATA}
        licence.update(status=status.value, status_name=status_name(status, record.superseded_by),
                       superseded_by=record.superseded_by)
        data, fields, not_granted = None, [], []
        if grant is not None:
            licence["licence_number"] = record.licence_number
            if grant.fields is None:
                licence.update({name: issued.get(name) for name in HOLDER_METADATA})
            granted = list(record.data) if grant.fields is None else \
                [f for f in grant.fields if f in record.data]
            fields = granted if wanted is None else [f for f in wanted if f in granted]
            not_granted = [] if wanted is None else [f for f in wanted if f not in granted]
            data = {name: record.data[name] for name in fields}
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "response_id": response_id,
            "issued_at": _iso(now),
            "client": {"id": client.id, "name": client.name},
            "purpose": purpose,
            "access": "data" if grant is not None else "metadata",
            "grant": None if grant is None else {"id": grant.id, "valid_until": _iso(grant.valid_until),
                                                 "fields": grant.fields},
            "licence": licence,
            "fields": fields,
            "not_granted": not_granted,
            "data": data,
        }

    def _log(self, session, client: ClientView, response_id: str, now: datetime, purpose: str,
             record: LicenceRecord | None, grant_id: str | None, fields: list[str], outcome: str,
             **extra: Any) -> None:
        session.add(UsageRecord(
            response_id=response_id, at=now, client_id=client.id,
            operation="data" if grant_id else "metadata",
            purpose=purpose, identifier=record.identifier if record else None,
            type_code=record.type_code if record else None,
            licence_number=record.licence_number if record else None, grant_id=grant_id, fields=list(fields),
            outcome=outcome))
        session.flush()
        self.audit.record("reuse.access", actor=f"reuse-client:{client.id}",
                          subject=f"licence:{record.identifier}" if record else "licence:-",
                          details={"response_id": response_id, "purpose": purpose, "grant_id": grant_id,
                                   "fields": list(fields), "outcome": outcome, **extra}, session=session)
