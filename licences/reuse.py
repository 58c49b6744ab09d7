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

An annotated copy (加注件, :mod:`licences.annotated_copy`) may be asked for with the request. It
shows the whole licence, so it is made only with a ``data`` permission *and* a usable grant of all
fields (``fields`` None) for exactly this purpose — the same grant rules as the data; otherwise,
for a licence the client may see, the request is refused (:class:`AnnotatedCopyNotGranted`,
logged like any access, nothing served). It is made only of a licence whose current version is
valid now (not suspended or expired: :class:`AnnotatedCopyLicenceNotValid`), and only of one
recorded with the text of its QR code (:class:`AnnotatedCopyUnavailable` for a licence that
predates annotated copies). The copy is rendered from the current version and sealed by the
caller's ``seal_copy`` (the data service's seal, outside this room); it expires after the days
asked for, or when the holder's grant or the licence ends if that is sooner
(:func:`licences.annotated_copy.copy_expiry`). The signed body names it (``annotated_copy``:
format, media type, SM3, expiry, what capped the expiry, size), so the signature vouches for the
copy's exact bytes, which travel beside the body (``annotated_copy_content``, base64), and the
usage row records it — with every field of the licence, which the copy prints.

The answer body is signed by the caller's ``sign`` (the data-service signer, outside this room)
over its RFC 8785 canonical JSON, and every request — answered, refused or not found — is a row of
the usage log and an audit entry, written in one transaction with the grant look-up.

A copy takes a while to render and seal, so it is made outside that transaction; then, in the
transaction that logs it, the grant is read again under its row lock (after the usage row is
written, which on SQLite holds the database's write lock) and the licence's status with it: a
grant revoked, or a licence that stopped being valid, meanwhile means the copy is refused (logged)
and nothing is served. A copy that cannot be made or sealed — no usable seal, or any fault — is a
row too (:data:`~licences.usage_log.SEAL_UNAVAILABLE`, :data:`~licences.usage_log.COPY_FAILED`),
written in a transaction of its own before the error goes on.
"""

from __future__ import annotations

import base64
import logging
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from hsm.sm3 import sm3
from ledger.audit import AuditLog
from ledger.database import Database

from .annotated_copy import (
    AnnotatedCopyError,
    Annotation,
    CopyRequest,
    CopySealer,
    CopySealUnavailable,
    annotated_document,
    unprintable,
)
from .identifiers import IdentifierError
from .jcs import canonical_json
from .metadata import LicenceStatus
from .registry import LicenceRecord
from .reuse_clients import ClientView, ReuseError, ReuseRequestError
from .reuse_grants import MAX_FIELDS, GrantBook, HolderGrant, normalise_purpose
from .states import LIVE, canonical_identifier, effective_status
from .succession import current_version, versions_of
from .summary import status_name
from .usage_log import (
    COPY_FAILED,
    COPY_LICENCE_NOT_VALID,
    COPY_NO_QR_PAYLOAD,
    COPY_NOT_GRANTED,
    NOT_FOUND,
    SEAL_UNAVAILABLE,
    SERVED_DATA,
    SERVED_METADATA,
    TYPE_REQUIRED,
    UsageRecord,
)
from .utc_text import iso_utc

if TYPE_CHECKING:
    from .catalogue import Catalogue

FORMAT = "zhengyin-reuse-response"
FORMAT_VERSION = 1
#: Metadata any permitted client sees: nothing about the holder.
PUBLIC_METADATA = ("identifier", "type_name", "type_code", "name", "version", "issue_date", "issuer_name",
                   "issuer_code", "defining_authority", "valid_from", "valid_until", "area_code",
                   "service_item")
#: Added under a grant of all fields.
HOLDER_METADATA = ("holder_name", "holder_code", "holder_code_type")
MAX_REFERENCE = 120
#: What the audit entry of an access served with a copy says was disclosed.
COPY_DISCLOSURE = "annotated copy: the document prints every field of the licence"
log = logging.getLogger(__name__)


class LicenceNotVisible(ReuseError, LookupError):
    """No licence this client may see matches (unknown and not permitted read the same)."""


class LicenceTypeRequired(ReuseRequestError):
    """A licence number the client's permitted types share: it must name the type."""


class AnnotatedCopyRefused(ReuseError):
    """An annotated copy of a licence the client may see was refused (the refusal is logged)."""


class AnnotatedCopyNotGranted(AnnotatedCopyRefused, PermissionError):
    """An annotated copy of a licence the client may see, without the grant it needs."""

    def __init__(self, detail: str | None = None) -> None:
        super().__init__("an annotated copy (加注件) shows the whole licence: it needs the data permission "
                         "and the holder's grant of all fields for this purpose (用证事由)"
                         + (f"; {detail}" if detail else ""))


class AnnotatedCopyLicenceNotValid(AnnotatedCopyRefused):
    """An annotated copy of a licence whose current version is not valid now (suspended, expired)."""

    def __init__(self, status: str) -> None:
        self.status = status
        super().__init__(f"an annotated copy (加注件) is made only of a valid licence: this licence is "
                         f"{status} now")


class AnnotatedCopyUnavailable(AnnotatedCopyRefused):
    """A licence recorded without the text of its QR code: it predates annotated copies."""

    def __init__(self) -> None:
        super().__init__("this licence was recorded before annotated copies (加注件) existed: the register "
                         "does not keep the QR code its issuer signed, so no copy can be made of it (the "
                         "next change or renewal of the licence can have one)")


@dataclass(frozen=True)
class ReuseRequest:
    reference: str  # a licence identifier, or a licence number
    purpose: str
    fields: Sequence[str] | None = None
    licence_type: str | None = None
    #: ``{"format": "pdf" | "ofd", "valid_days": 1..90}`` (or a CopyRequest) for an annotated copy
    annotated_copy: object | None = None


@dataclass(frozen=True)
class _CopyJob:
    """An answer with a copy, decided in the look-up transaction and finished after it: the
    copy is rendered and sealed outside any transaction, then logged (see the module docstring)."""

    client: ClientView
    record: LicenceRecord  # the current version, as read
    grant: HolderGrant
    purpose: str
    copy: CopyRequest
    body: dict[str, Any]
    now: datetime
    response_id: str


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

    def __init__(self, db: Database, audit: AuditLog, *, catalogue: Catalogue | None = None) -> None:
        """``catalogue`` is needed only for annotated copies: a copy is rendered from the licence's
        type (loaded when first needed if none is given) and the register's row — the data and
        the QR code's text kept at issuance — never from the stored documents."""
        self.db, self.audit, self._catalogue = db, audit, catalogue

    @property
    def catalogue(self) -> Catalogue:
        """The licence types copies are rendered with (loaded once, when first needed)."""
        if self._catalogue is None:
            from .catalogue import Catalogue

            self._catalogue = Catalogue.load()
        return self._catalogue

    def answer(self, client: ClientView, request: ReuseRequest, *, sign: Callable[[bytes], dict[str, Any]],
               seal_copy: CopySealer | None = None, now: datetime | None = None) -> dict[str, Any]:
        """The signed answer ``{"body": …, "signature": …}`` (and ``"annotated_copy_content"``
        when a copy was asked for and made); LicenceNotVisible, or ReuseRequestError for a missing
        purpose, malformed fields or a malformed copy request (nothing logged then);
        LicenceTypeRequired for a shared licence number without a type (logged, like not found);
        for a copy, logged each: AnnotatedCopyNotGranted (the grants do not allow it, or the
        grant went while it was made), AnnotatedCopyLicenceNotValid, AnnotatedCopyUnavailable
        (a licence recorded without its QR code's text), CopySealUnavailable (no usable seal)
        and AnnotatedCopyError or whatever else failed in making or sealing it.

        ``now`` fixes the clock for the whole answer (tests); by default the grant is checked
        again at the moment the copy is logged."""
        fixed = now is not None
        now = (now or datetime.now(UTC)).replace(microsecond=0)
        purpose = normalise_purpose(request.purpose)
        wanted = checked_fields(request.fields)
        if not isinstance(request.reference, str) or not 0 < len(request.reference) <= MAX_REFERENCE:
            raise ReuseRequestError(f"the licence reference must be 1 to {MAX_REFERENCE} characters")
        copy = self._copy_request(request, client, purpose, seal_copy)
        response_id = "resp-" + secrets.token_hex(12)
        ambiguous: LicenceTypeRequired | None = None
        result: dict[str, Any] | AnnotatedCopyRefused | _CopyJob | None = None
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
                result = self._answer(s, client, record, purpose, wanted, now, response_id, sign, copy)
        if ambiguous is not None:
            raise ambiguous
        if isinstance(result, AnnotatedCopyRefused):
            raise result
        if isinstance(result, _CopyJob):
            assert seal_copy is not None  # _copy_request refused a copy without a sealer
            return self._serve_copy(result, sign, seal_copy, None if fixed else datetime.now)
        if result is None:
            raise LicenceNotVisible("no licence you may read matches")
        return result

    @staticmethod
    def _copy_request(request: ReuseRequest, client: ClientView, purpose: str,
                      seal_copy: CopySealer | None) -> CopyRequest | None:
        """The annotated copy asked for, checked before anything is looked up or logged."""
        if request.annotated_copy is None:
            return None
        try:
            copy = CopyRequest.checked(request.annotated_copy)
        except ValueError as exc:
            raise ReuseRequestError(str(exc)) from None
        if seal_copy is None:
            raise ReuseRequestError("this service makes no annotated copies")
        for what, text in (("the purpose (用证事由)", purpose),
                           ("the department client's name", client.name)):
            missing = unprintable(text)
            if missing:
                raise ReuseRequestError(f"{what} cannot be printed on an annotated copy: the document font "
                                        f"has no glyph for {', '.join(missing[:5])}")
        return copy

    def _answer(self, s: Session, client: ClientView, record: LicenceRecord, purpose: str,
                wanted: tuple[str, ...] | None, now: datetime, response_id: str,
                sign: Callable[[bytes], dict[str, Any]], copy: CopyRequest | None = None
                ) -> dict[str, Any] | AnnotatedCopyRefused | _CopyJob:
        """The answer to a permitted client about ``record``, logged in ``s``; for a copy, the
        refusal (logged) or the job to finish outside the transaction (:meth:`_serve_copy`)."""
        grant = None
        current = None
        if client.may(record.type_code, "data"):
            current = current_version(s, record, now)
            if current.usable:  # the holder's rule: no data once the licence has ended
                grant = GrantBook.usable_grant(s, client.id, versions_of(s, current.record), purpose, now)
                if grant is not None:
                    record = current.record  # only the current version's data is served
        if copy is not None:
            refusal = self._copy_refusal(record, grant, current.status if current else None)
            if refusal is not None:
                exc, outcome = refusal
                self._log(s, client, response_id, now, purpose, record, grant.id if grant else None, [],
                          outcome, annotated_copy=copy.format, refused=str(exc))
                return exc
        body = self._body(client, record, purpose, grant, wanted, now, response_id)
        if copy is not None:
            assert grant is not None  # _copy_refusal refused a copy without one
            return _CopyJob(client, record, grant, purpose, copy, body, now, response_id)
        signature = sign(canonical_json(body))
        self._log(s, client, response_id, now, purpose, record, grant.id if grant else None, body["fields"],
                  SERVED_DATA if grant else SERVED_METADATA)
        return {"body": body, "signature": signature}

    @staticmethod
    def _copy_refusal(record: LicenceRecord, grant: HolderGrant | None, status: LicenceStatus | None
                      ) -> tuple[AnnotatedCopyRefused, str] | None:
        """Why no copy may be made of ``record`` (the current version when a grant was found):
        no grant of all fields for the purpose, a licence not valid now, or one recorded without
        its QR code's text — with the usage-log outcome; None when a copy may be made."""
        if grant is None or grant.fields is not None:
            return AnnotatedCopyNotGranted(), COPY_NOT_GRANTED
        if status is not LicenceStatus.VALID:
            return AnnotatedCopyLicenceNotValid(status_name(status, record.superseded_by) if status
                                                else "unknown"), COPY_LICENCE_NOT_VALID
        if not record.qr_payload:
            return AnnotatedCopyUnavailable(), COPY_NO_QR_PAYLOAD
        return None

    def _serve_copy(self, job: _CopyJob, sign: Callable[[bytes], dict[str, Any]], seal_copy: CopySealer,
                    clock: Callable[[Any], datetime] | None) -> dict[str, Any]:
        """Render and seal the copy (no transaction open), sign the body naming it, then log it
        — after checking again, under the grant's row lock, that the grant and the licence still
        allow it. A failure to make the copy, and a refusal found then, are logged apart."""
        try:
            content, annotation = self._copy(job, seal_copy)
            body = job.body
            body["annotated_copy"] = {"format": job.copy.format, "media_type": job.copy.media_type,
                                      "sm3": sm3(content).hex(), "expires": iso_utc(annotation.expires),
                                      "expires_capped_by": annotation.capped_by, "size": len(content)}
            signature = sign(canonical_json(body))
        except Exception as exc:
            outcome = SEAL_UNAVAILABLE if isinstance(exc, CopySealUnavailable) else COPY_FAILED
            self._log_apart(job, outcome, error=f"{exc.__class__.__name__}: {exc}"[:500])
            raise
        made = (job.copy.format, body["annotated_copy"]["sm3"], annotation.expires, annotation.client_name)
        at = job.now if clock is None else clock(UTC)
        try:
            with self.db.transaction() as s:
                # The row first: on SQLite its INSERT takes the write lock, so what is read next
                # cannot change before the commit; on PostgreSQL the grant's row lock does that.
                self._log(s, job.client, job.response_id, job.now, job.purpose, job.record, job.grant.id,
                          list(job.record.data), SERVED_DATA, copy=made, disclosed=COPY_DISCLOSURE)
                refusal = self._withdrawn(s, job, at)
                if refusal is not None:
                    raise _Rollback(refusal)
        except _Rollback as stop:
            exc, outcome = stop.refusal
            self._log_apart(job, outcome, refused=str(exc))
            raise exc from None
        return {"body": body, "signature": signature,
                "annotated_copy_content": base64.b64encode(content).decode("ascii")}

    @staticmethod
    def _withdrawn(s: Session, job: _CopyJob, at: datetime) -> tuple[AnnotatedCopyRefused, str] | None:
        """The grant (locked) and the licence read again at ``at``: a refusal if either no longer
        allows the copy (revoked or ended, changed or no longer valid meanwhile)."""
        grant = s.get(HolderGrant, job.grant.id, with_for_update=True, populate_existing=True)
        if grant is None or not grant.usable(at):
            why = "the holder's grant was revoked or ended while the copy was made"
            return AnnotatedCopyNotGranted(why), COPY_NOT_GRANTED
        row = s.scalars(select(LicenceRecord).where(LicenceRecord.identifier == job.record.identifier)
                        .execution_options(populate_existing=True)).one()
        status = effective_status(row.status, row.valid_until, at)
        if status is not LicenceStatus.VALID or row.superseded_by is not None:
            refused = AnnotatedCopyLicenceNotValid(status_name(status, row.superseded_by))
            return refused, COPY_LICENCE_NOT_VALID
        return None

    def _log_apart(self, job: _CopyJob, outcome: str, **details: Any) -> None:
        """The usage row and audit entry of a copy refused or failed after the look-up, in a
        transaction of its own (nothing was disclosed: no fields). A failure to write it is
        logged, never raised over the error that is being reported."""
        try:
            with self.db.transaction() as s:
                self._log(s, job.client, job.response_id, job.now, job.purpose, job.record, job.grant.id, [],
                          outcome, annotated_copy=job.copy.format, **details)
        except Exception:
            log.exception("the usage row of annotated copy %s (%s) could not be written", job.response_id,
                          outcome)

    def _copy(self, job: _CopyJob, seal_copy: CopySealer) -> tuple[bytes, Annotation]:
        """The sealed copy of the job's licence version (the current one) for this answer."""
        from .catalogue import UnknownLicenceType
        from .layout import LayoutError

        record, client = job.record, job.client
        annotation = Annotation.for_request(job.copy, purpose=job.purpose, client_id=client.id,
                                            client_name=client.name, now=job.now, response_id=job.response_id,
                                            identifier=record.identifier, grant_until=job.grant.valid_until,
                                            licence_until=record.valid_until)
        try:
            document, box = annotated_document(self.catalogue.get(record.type_code), record,
                                               str(record.qr_payload), annotation)
        except (LayoutError, UnknownLicenceType) as exc:
            raise AnnotatedCopyError(f"no annotated copy can be made of {record.identifier}: {exc}") from None
        return seal_copy(document, job.copy.format, box, job.now), annotation

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
            "issued_at": iso_utc(now),
            "client": {"id": client.id, "name": client.name},
            "purpose": purpose,
            "access": "data" if grant is not None else "metadata",
            "grant": None if grant is None else {"id": grant.id, "valid_until": iso_utc(grant.valid_until),
                                                 "fields": grant.fields},
            "licence": licence,
            "fields": fields,
            "not_granted": not_granted,
            "data": data,
        }

    def _log(self, session: Session, client: ClientView, response_id: str, now: datetime, purpose: str,
             record: LicenceRecord | None, grant_id: str | None, fields: list[str], outcome: str,
             copy: tuple[str, str, datetime, str] | None = None, **extra: Any) -> None:
        """The usage row and its audit entry; ``copy`` is the annotated copy served
        (format, SM3, expiry, the client's name printed on it)."""
        if copy is not None:
            extra = {**extra, "annotated_copy": {"format": copy[0], "sm3": copy[1],
                                                 "expires": iso_utc(copy[2])}}
        session.add(UsageRecord(
            response_id=response_id, at=now, client_id=client.id,
            operation="data" if grant_id else "metadata",
            purpose=purpose, identifier=record.identifier if record else None,
            type_code=record.type_code if record else None,
            licence_number=record.licence_number if record else None, grant_id=grant_id, fields=list(fields),
            outcome=outcome, copy_format=copy[0] if copy else None, copy_sm3=copy[1] if copy else None,
            copy_expires=copy[2] if copy else None, copy_client_name=copy[3] if copy else None))
        session.flush()
        self.audit.record("reuse.access", actor=f"reuse-client:{client.id}",
                          subject=f"licence:{record.identifier}" if record else "licence:-",
                          details={"response_id": response_id, "purpose": purpose, "grant_id": grant_id,
                                   "fields": list(fields), "outcome": outcome, **extra}, session=session)


class _Rollback(Exception):
    """Undo the transaction that logged a copy: it may not be served after all (``refusal``)."""

    def __init__(self, refusal: tuple[AnnotatedCopyRefused, str]) -> None:
        super().__init__(refusal[1])
        self.refusal = refusal
