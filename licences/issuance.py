"""Issuing an e-licence: data in; a sealed OFD and PDF with a signed QR code out, in the library.

The pipeline, in the order that keeps it honest:

1. the licence type says whether this department may issue it and whether the data is
   complete and well-formed (every field error at once, in Chinese and English);
2. the department's 电子证照专用章 must be usable *now* (active, within validity, its signer
   certificate current) — before any identifier is spent;
3. a serial is allocated in its own transaction: never given twice, a failure later leaves
   a gap, not a duplicate;
4. the QR payload is signed with the seal's signer key (offline-verifiable against the
   published signer certificates), the page is laid out, written as OFD and PDF, and both are
   sealed at the type's seal box;
5. the library stores both documents and the registry row with its event and audit entry,
   with the QR nonce (what the public service looks the licence up by).

A licence number (统一社会信用代码, 许可证编号 …) has at most one live licence of its type:
a second is refused at step 1 (LicenceExists, field ``licence_number``) and, should two
issuances race, by the database at step 5. The issue date is one China date everywhere: the
printed 发证日期, the metadata's issue_date and the QR code's issued_at — except for a legacy
licence converted into an e-licence (``source_id``), which keeps its historical 发证日期 on the
page and in the metadata while its QR code says when it was electronically issued.

A change (变更) or renewal (换证) goes the same way for the next version of an existing
licence, by its own issuer only, after its state has been checked (nothing is signed for a
licence the library would refuse to supersede; the library checks again under the row lock).

Nothing half-done survives: a failure at steps 1–4 records nothing; at step 5 the library's
own rule holds (no row without its documents).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from ofd.sealing import Placement, seal_ofd
from ofd.writer import ofd_package
from pdf.signing import PdfPlacement, sign_pdf
from pdf.writer import write_pdf
from seals.identity_cache import SigningIdentities
from seals.lifecycle import SealNotUsable, SealRefused
from seals.office import SealOffice, SigningIdentity
from seals.picture import picture_png

from .catalogue import Catalogue, FieldError, LicenceDataError, LicenceType
from .identifiers import LicenceIdentifier
from .layout import render, seal_box
from .lifecycle import (
    IssuedDocuments,
    LicenceError,
    LicenceExists,
    LicenceLibrary,
    LicenceRequestError,
    Taken,
    checked_reason,
    china_date,
    effective_status,
    next_status,
)
from .metadata import LicenceMetadata
from .qr_payload import QrClaims, encode_payload
from .registry import LicenceRecord


@dataclass(frozen=True)
class IssuedLicence:
    record: LicenceRecord
    metadata: LicenceMetadata
    ofd: bytes
    pdf: bytes
    qr: str

    @property
    def identifier(self) -> str:
        return self.metadata.identifier.text

    @property
    def previous_identifier(self) -> str | None:
        previous = self.metadata.previous_identifier
        return previous.text if previous else None


@dataclass(frozen=True)
class _Valid:
    """A new licence's data valid for its type and issuer, with the seal to issue it under."""

    licence_type: LicenceType
    identity: SigningIdentity
    department: str
    today: date
    number: str
    conversion: bool  # a legacy licence converted (it has a source record ID)


@dataclass(frozen=True)
class _Checked:
    """A new licence's data passed every check: what making its documents needs."""

    licence_type: LicenceType
    identity: SigningIdentity
    department: str
    issued_on: date
    valid_until: date | None


#: What making a licence version gives: its metadata, OFD, PDF, QR text and QR nonce (hex).
_Made = tuple[LicenceMetadata, bytes, bytes, str, str]


@dataclass
class _Version:
    """One licence version to make (its checked data under its identifier), and what the making
    steps have made of it so far."""

    checked: _Checked
    data: Mapping[str, Any]
    identifier: LicenceIdentifier
    issuer_code: str
    previous: str | None = None
    claims: QrClaims | None = None
    qr: str = ""
    document: Any = None
    ofd: Any = None  # the package in memory, then the sealed OFD
    pdf: bytes = b""
    metadata: LicenceMetadata | None = None


class _Steps:
    """Licence versions taken through the making steps together; one that a step refuses with
    one of ``faults`` keeps that error as its outcome and skips the steps after."""

    def __init__(self, versions: Sequence[_Version], faults: tuple[type[BaseException], ...]):
        self.versions, self.faults = list(versions), faults
        self.errors: dict[int, BaseException] = {}

    def each(self, made: str, step: Callable[[_Version], object]) -> None:
        """Set each version's ``made`` to what ``step`` makes of it."""
        for index, version in enumerate(self.versions):
            if index not in self.errors:
                try:
                    setattr(version, made, step(version))
                except self.faults as exc:
                    self.errors[index] = exc

    def outcomes(self) -> list[_Made | BaseException]:
        return [self.errors[index] if index in self.errors else
                (v.metadata, v.ofd, v.pdf, v.qr, v.claims.nonce.hex())
                for index, v in enumerate(self.versions)]


class NotTheIssuer(LicenceError):
    """Only the department that issued a licence may change or renew it."""

    def __init__(self, identifier: str, issuer_code: str, owner: str):
        self.identifier, self.issuer_code, self.owner = identifier, issuer_code, owner
        super().__init__(f"licence {identifier} was issued by department {owner}, not {issuer_code}: only "
                         "its issuer may change or renew it")


class NoLicenceSeal(SealRefused):
    """The department has no usable 电子证照专用章: nothing can be issued until it has one."""

    def __init__(self, issuer_code: str, detail: str):
        self.issuer_code = issuer_code
        super().__init__(
            f"department {issuer_code} has no usable 电子证照专用章 ({detail}); make and "
            "activate one (`zhengyin seal make --kind licence …`)"
        )


class LicenceDesk:
    """A department's issuing desk: the catalogue, the library and the seal office together."""

    def __init__(self, catalogue: Catalogue, library: LicenceLibrary, seals: SealOffice, *, base_url: str):
        self.catalogue, self.library, self.seals, self.base_url = catalogue, library, seals, base_url
        self.identities = SigningIdentities(seals)

    def licence_seal(self, issuer_code: str, at: datetime) -> tuple[SigningIdentity, str]:
        """The usable licence seal of ``issuer_code`` and the department's name on it.

        The answer is kept for a couple of seconds (seals.identity_cache: a seal, certificate
        or key change in this process is seen at once, in another within the cache's age; the
        signing time is checked against the seal's and certificate's validity every time)."""
        key = ("licence seal", issuer_code)
        kept = self.identities.chosen(key, at)
        if kept is not None:
            identity, department = kept
            return identity, department or ""
        candidates = self.seals.seals(issuer_code, "active", kind="licence")
        problems = []
        for record in candidates:
            try:
                identity = self.seals.signing_identity(record.es_id, at)
            except SealNotUsable as exc:
                problems.append(str(exc))
                continue
            self.identities.keep(key, identity, record.department)
            return identity, record.department
        detail = "; ".join(problems) or "none is active"
        raise NoLicenceSeal(issuer_code, detail)

    def issue(
        self,
        type_code: str,
        data: Mapping[str, Any],
        *,
        issuer_code: str,
        source_id: str | None = None,
        now: datetime | None = None,
    ) -> IssuedLicence:
        """Issue one licence. Raises the catalogue's errors (unknown type, issuer not allowed,
        LicenceDataError with every field error), LicenceExists (a live licence has the number),
        NoLicenceSeal, or the library's errors.

        With ``source_id`` the licence is a conversion of a legacy licence (存量转换, what bulk
        conversion does): a 发证日期 the data states (not after today, China time) is the
        licence's issue date — printed, in the metadata, and the first day of its validity,
        from which a period of years is counted — and a licence whose validity has ended is
        refused (a field error), not issued as valid. Its QR code's issued_at is still the day
        it is signed ("electronically issued on"). Without ``source_id`` the issue date is
        today and a stated 发证日期 must be today."""
        now = now or datetime.now(UTC).replace(microsecond=0)
        valid = self._valid(type_code, data, issuer_code, source_id, now)
        taken = self.library.taken(type_code, issuer_code, numbers=[valid.number],
                                   source_ids=[source_id] if source_id is not None else [], now=now)
        checked = self._checked(valid, data, issuer_code, source_id, taken)
        identifier = self.library.allocate_identifier(type_code, issuer_code)
        (made,) = self._make([_Version(checked, data, identifier, issuer_code)], now)
        metadata, ofd, pdf, qr, nonce = made
        record = self.library.record_issued(metadata, data, ofd=ofd, pdf=pdf, source_id=source_id,
                                            qr_nonce=nonce, qr_payload=qr)
        return IssuedLicence(record, metadata, ofd, pdf, qr)

    def issue_group(self, type_code: str, records: Sequence[tuple[str, Mapping[str, Any]]], *,
                    issuer_code: str, faults: tuple[type[BaseException], ...],
                    now: datetime | None = None) -> list[IssuedLicence | BaseException]:
        """Issue legacy licences (``(source_id, data)`` each) as :meth:`issue` does, recorded
        together: the serials in one transaction, the documents and rows in another
        (:meth:`LicenceLibrary.record_issued_group`). What bulk conversion does per chunk.

        Returns, in order, each record's IssuedLicence or the error that refused it — one of
        ``faults`` (the errors that are about one record) or the library's LicenceError. Any
        other error stops the group and propagates; nothing of it is recorded then.

        The library is not asked first whether a source ID is converted already (the caller
        asked once for the chunk); should it be, the record's licence number is taken (by
        itself) or, failing that, the unique source ID refuses the row: LicenceExists either way.
        Which licence numbers are taken is asked once for the group's valid records.
        """
        now = now or datetime.now(UTC).replace(microsecond=0)
        results: list[IssuedLicence | BaseException | None] = [None] * len(records)
        valid = []
        for index, (source_id, data) in enumerate(records):
            try:
                passed = self._valid(type_code, data, issuer_code, source_id, now)
                valid.append((index, source_id, data, passed))
            except faults as exc:
                results[index] = exc
        taken = self.library.taken(type_code, issuer_code, numbers=[v.number for *_, v in valid], now=now)
        checked = []
        for index, source_id, data, passed in valid:
            try:
                checked.append((index, source_id, data, self._checked(passed, data, issuer_code, source_id,
                                                                      taken)))
            except faults as exc:
                results[index] = exc
        made = []
        if checked:
            serials = self.library.allocate_serials(issuer_code, type_code, len(checked))
            versions = [_Version(check, data, LicenceIdentifier(type_code, issuer_code, serial, 1),
                                 issuer_code)
                        for (_, _, data, check), serial in zip(checked, serials, strict=True)]
            for (index, source_id, data, _), outcome in zip(checked, self._make(versions, now, faults),
                                                             strict=True):
                if isinstance(outcome, BaseException):  # its serial is a gap, as for a failed issuance
                    results[index] = outcome
                else:
                    made.append((index, source_id, data, outcome))
        outcomes = self.library.record_issued_group([
            IssuedDocuments(metadata, data, ofd, pdf, source_id, nonce, qr)
            for _, source_id, data, (metadata, ofd, pdf, qr, nonce) in made]) if made else []
        for (index, _, _, (metadata, ofd, pdf, qr, _nonce)), outcome in zip(made, outcomes, strict=True):
            results[index] = IssuedLicence(outcome, metadata, ofd, pdf, qr) \
                if isinstance(outcome, LicenceRecord) else outcome
        settled = [r for r in results if r is not None]
        if len(settled) != len(records):  # every record is settled above; never shift the outcomes
            raise AssertionError("internal error: a record of the group has no outcome")
        return settled

    def _valid(self, type_code: str, data: Mapping[str, Any], issuer_code: str, source_id: str | None,
               now: datetime) -> _Valid:
        """The checks of a new licence that need no registry: the type, the issuer, a usable seal
        and the data against the type's rules (every field error at once)."""
        licence_type = self.catalogue.get(type_code)
        licence_type.check_issuer(issuer_code)
        today = china_date(now)
        # The seal first: its department is the issuing authority the data may print.
        identity, department = self.licence_seal(issuer_code, now)
        licence_type.validate(data, today, conversion=source_id is not None, issuer_name=department)
        return _Valid(licence_type, identity, department, today, licence_type.licence_number_of(data),
                      source_id is not None)

    def _checked(self, valid: _Valid, data: Mapping[str, Any], issuer_code: str, source_id: str | None,
                 taken: Taken) -> _Checked:
        """Everything else a new licence must pass before a serial or a signature is spent, with
        what the library said is ``taken``: its source record not converted yet (when the library
        was asked about ``source_id``), its licence number free, its dates and metadata sound."""
        licence_type, today = valid.licence_type, valid.today
        if source_id is not None and source_id in taken.converted:  # said before the number it holds
            raise LicenceExists("source_id", source_id, taken.converted[source_id])
        self._check_number_free(valid.number, taken, replacing=None)
        issued_on = licence_type.issue_date(data, today, conversion=valid.conversion)
        valid_until = licence_type.valid_until(data, issued_on)
        # The metadata's own rules are checked on a stand-in identifier first: a refusal must
        # not spend a serial or a signature.
        self._metadata(licence_type, data, LicenceIdentifier(licence_type.code, issuer_code, 1),
                       valid.department, issuer_code, issued_on, valid_until)
        return _Checked(licence_type, valid.identity, valid.department, issued_on, valid_until)

    def change(self, identifier: str, data: Mapping[str, Any], *, issuer_code: str, reason: str,
               now: datetime | None = None) -> IssuedLicence:
        """Issue the changed licence (变更): the next version of ``identifier`` with ``data``,
        superseding it. Only a valid licence of ``issuer_code``'s own can be changed, and only
        into one with the same licence number and holder code (field errors otherwise: another
        number or holder is another licence); the reason goes into both versions' history. An
        issue date carried over from the old data is replaced by the new version's (today)."""
        reason = checked_reason(reason, required=True)
        return self._new_version("change", identifier, data, issuer_code, reason, now)

    def renew(self, identifier: str, data: Mapping[str, Any] | None = None, *, issuer_code: str,
              reason: str | None = None, now: datetime | None = None) -> IssuedLicence:
        """Issue the renewed licence (换证/延续): the next version of a valid or expired licence
        of ``issuer_code``'s own. Without ``data`` the old data is kept and the validity comes
        anew from the type's rules (a fresh full period for a type whose data states its end)."""
        reason = checked_reason(reason, required=False)
        return self._new_version("renew", identifier, data, issuer_code, reason, now)

    def _new_version(self, act: str, identifier: str, data: Mapping[str, Any] | None, issuer_code: str,
                     reason: str | None, now: datetime | None) -> IssuedLicence:
        now = now or datetime.now(UTC).replace(microsecond=0)
        old = self.library.find(identifier)  # IdentifierError, LicenceNotFound
        if old.issuer_code != issuer_code:
            raise NotTheIssuer(old.identifier, issuer_code, old.issuer_code)
        # The state first: nothing is signed for a licence the library would refuse to supersede.
        next_status(old.identifier, effective_status(old.status, old.valid_until, now), act)
        licence_type = self.catalogue.get(old.type_code)
        licence_type.check_issuer(issuer_code)
        new_identifier = LicenceIdentifier.parse(old.identifier).next_version()  # refused after 999
        today = china_date(now)
        if data is None:
            if act != "renew":
                raise LicenceRequestError("a change needs the changed licence data")
            data = licence_type.renewal_data(old.data, today)
        else:
            data = licence_type.without_carried_dates(data, old.data)
        identity, department = self.licence_seal(issuer_code, now)
        self._validate_version(licence_type, old, data, today, department)
        number = licence_type.licence_number_of(data)
        self._check_number_free(number, self.library.taken(licence_type.code, issuer_code, numbers=[number],
                                                           now=now), replacing=old.identifier)
        valid_until = licence_type.valid_until(data, today)
        self._metadata(licence_type, data, new_identifier, department, issuer_code, today, valid_until,
                       previous=old.identifier)
        checked = _Checked(licence_type, identity, department, today, valid_until)
        (made,) = self._make([_Version(checked, data, new_identifier, issuer_code, old.identifier)], now)
        metadata, ofd, pdf, qr, nonce = made
        record = getattr(self.library, act)(old.identifier, metadata, data, ofd=ofd, pdf=pdf, reason=reason,
                                            qr_nonce=nonce, qr_payload=qr)
        return IssuedLicence(record, metadata, ofd, pdf, qr)

    @staticmethod
    def _validate_version(licence_type: LicenceType, old: LicenceRecord, data: Mapping[str, Any],
                          today, department: str) -> None:
        """LicenceDataError with every fault of a new version's ``data``: the type's rules for a
        licence issued ``today``, and the old version's licence number and holder code kept (a
        change must not hand the licence, or free its number, to someone else)."""
        try:
            licence_type.validate(data, today, issuer_name=department)
            errors: list[FieldError] = []
        except LicenceDataError as exc:
            errors = list(exc.errors)
        kept = {licence_type.licence_number_field: ("证照编号", "licence number", old.licence_number)}
        kept.setdefault(licence_type.holder.code_field, ("持证主体代码", "holder code", old.holder_code))
        for name, (zh, en, was) in kept.items():
            value = data.get(name) if isinstance(data, Mapping) else None
            if value is not None and str(value) != was:
                title = licence_type.fields.get(name, name)
                errors.append(FieldError(
                    f"$.{name}",
                    f"{title}（{zh}）不能在变更或换证时改变：原为{was}；不同的{zh}是另一份证照，请另行签发",
                    f"{name} is the {en} and cannot change in a new version: it was {was}; another "
                    f"{en} is another licence (issue it anew)", "same-licence"))
        if errors:
            raise LicenceDataError(sorted(errors, key=lambda e: (e.path, e.validator)))

    @staticmethod
    def _check_number_free(number: str, taken: Taken, replacing: str | None) -> None:
        """LicenceExists unless no live licence of the type has the licence number (but the one
        being replaced), as the library said in ``taken``; checked before a serial or a
        signature is spent."""
        holder = taken.holders.get(number)
        if holder is not None and holder != replacing:
            raise LicenceExists("licence_number", number, holder)

    def _make(self, versions: Sequence[_Version], now: datetime,
              faults: tuple[type[BaseException], ...] = ()) -> list[_Made | BaseException]:
        """The signed QR code, the sealed OFD and PDF and the metadata of each licence version;
        and its QR nonce's hex — or, for a version one of ``faults`` stopped, that error (any
        other error propagates). The page and the metadata carry the issue date ``issued_on``;
        the QR code's issued_at is the signing day (China time), the same day except for a
        converted legacy licence.

        The versions go through each step together, the step for all of them before the next
        (:class:`_Steps`): a step's code and tables then stay in the processor's caches from one
        licence to the next, where going licence by licence ran every step cold: a group of
        eight cost ~15 % less CPU a licence on two workers, measured side by side (bench/RESULTS.md)."""
        steps = _Steps(versions, faults)
        signed_on = china_date(now)
        steps.each("claims", lambda v: QrClaims.for_licence(
            v.identifier.text, v.data, valid_until=v.checked.valid_until,
            signer_certificate=v.checked.identity.signer_certificate, issued_at=signed_on))
        steps.each("qr", lambda v: encode_payload(v.claims, v.checked.identity.signer, self.base_url))
        steps.each("document", lambda v: render(
            v.checked.licence_type, v.data, identifier=v.identifier, qr_payload=v.qr,
            issue_date=v.checked.issued_on, issuer_name=v.checked.department))
        steps.each("ofd", lambda v: ofd_package(v.document))  # in memory, sealed next
        steps.each("ofd", lambda v: self._seal_ofd(v, now))
        steps.each("pdf", lambda v: write_pdf(v.document))
        steps.each("pdf", lambda v: self._sign_pdf(v, now))
        steps.each("metadata", lambda v: self._metadata(
            v.checked.licence_type, v.data, v.identifier, v.checked.department, v.issuer_code,
            v.checked.issued_on, v.checked.valid_until, previous=v.previous))
        return steps.outcomes()

    @staticmethod
    def _seal_ofd(version: _Version, now: datetime) -> bytes:
        identity = version.checked.identity
        page, x, y, width, height = seal_box(version.checked.licence_type)
        return seal_ofd(
            version.ofd,  # the package in memory: sealed without archiving it twice
            seal=identity.seal_der,
            signer=identity.signer,
            signer_certificate=identity.signer_certificate,
            placement=Placement(page=page, x=x, y=y, width=width, height=height),
            time=now,
        )

    @staticmethod
    def _sign_pdf(version: _Version, now: datetime) -> bytes:
        identity, licence_type = version.checked.identity, version.checked.licence_type
        page, x, y, width, height = seal_box(licence_type)
        picture = identity.seal.picture
        return sign_pdf(
            version.pdf,
            signer=identity.signer,
            certificate=identity.signer_certificate,
            chain=list(identity.chain),
            appearance_png=picture_png(picture.type, picture.data),
            placement=PdfPlacement(page=page, x=x, y=y, width=width, height=height),
            reason=f"{licence_type.name} 签发",
            name=identity.seal.name,
            time=now,
        )

    @staticmethod
    def _metadata(
        licence_type: LicenceType,
        data: Mapping[str, Any],
        identifier,
        department: str,
        issuer_code: str,
        today,
        valid_until,
        previous: str | None = None,
    ) -> LicenceMetadata:
        holder_name, holder_code, holder_code_type = licence_type.holder_of(data)
        return LicenceMetadata(
            identifier=identifier,
            type_name=licence_type.name,
            type_code=licence_type.code,
            licence_number=licence_type.licence_number_of(data),
            name=licence_type.name,
            issue_date=today,
            issuer_name=department,
            issuer_code=issuer_code,
            defining_authority=licence_type.defining_authority,
            valid_from=today,
            valid_until=valid_until,
            area_code=issuer_code[2:8],
            holder_name=holder_name,
            holder_code=holder_code,
            holder_code_type=holder_code_type,
            version=identifier.version,
            previous_identifier=previous,
        )
