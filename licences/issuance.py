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
5. the library stores both documents and the registry row with its event and audit entry.

Nothing half-done survives: a failure at steps 1–4 records nothing; at step 5 the library's
own rule holds (no row without its documents).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ofd.sealing import Placement, seal_ofd
from ofd.writer import write_ofd
from pdf.signing import PdfPlacement, sign_pdf
from pdf.writer import write_pdf
from seals.lifecycle import SealNotUsable, SealRefused
from seals.office import SealOffice, SigningIdentity
from seals.picture import picture_png

from .catalogue import Catalogue, LicenceType
from .identifiers import LicenceIdentifier
from .layout import render, seal_box
from .lifecycle import LicenceLibrary, china_date
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

    def licence_seal(self, issuer_code: str, at: datetime) -> tuple[SigningIdentity, str]:
        """The usable licence seal of ``issuer_code`` and the department's name on it."""
        candidates = self.seals.seals(issuer_code, "active", kind="licence")
        problems = []
        for record in candidates:
            try:
                return self.seals.signing_identity(record.es_id, at), record.department
            except SealNotUsable as exc:
                problems.append(str(exc))
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
        LicenceDataError with every field error), NoLicenceSeal, or the library's errors."""
        now = now or datetime.now(UTC).replace(microsecond=0)
        licence_type = self.catalogue.get(type_code)
        licence_type.check_issuer(issuer_code)
        licence_type.validate(data)
        identity, department = self.licence_seal(issuer_code, now)
        today = china_date(now)
        valid_until = licence_type.valid_until(data, today)
        # The metadata's own rules (an end date before today, …) are checked on a stand-in
        # identifier first: a refusal must not spend a serial or a signature.
        self._metadata(
            licence_type,
            data,
            LicenceIdentifier(type_code, issuer_code, 1),
            department,
            issuer_code,
            today,
            valid_until,
        )
        identifier = self.library.allocate_identifier(type_code, issuer_code)
        claims = QrClaims.for_licence(
            identifier.text,
            data,
            valid_until=valid_until,
            signer_certificate=identity.signer_certificate,
            issued_at=today,
        )
        qr = encode_payload(claims, identity.signer, self.base_url)
        document = render(
            licence_type, data, identifier=identifier, qr_payload=qr, issue_date=today, issuer_name=department
        )
        ofd, pdf = self._seal_both(licence_type, document, identity, now)
        metadata = self._metadata(licence_type, data, identifier, department, issuer_code, today, valid_until)
        record = self.library.record_issued(metadata, data, ofd=ofd, pdf=pdf, source_id=source_id)
        return IssuedLicence(record, metadata, ofd, pdf, qr)

    @staticmethod
    def _seal_both(
        licence_type: LicenceType, document, identity: SigningIdentity, now: datetime
    ) -> tuple[bytes, bytes]:
        page, x, y, width, height = seal_box(licence_type)
        ofd = seal_ofd(
            write_ofd(document),
            seal=identity.seal_der,
            signer=identity.signer,
            signer_certificate=identity.signer_certificate,
            placement=Placement(page=page, x=x, y=y, width=width, height=height),
            time=now,
        )
        picture = identity.seal.picture
        pdf = sign_pdf(
            write_pdf(document),
            signer=identity.signer,
            certificate=identity.signer_certificate,
            chain=list(identity.chain),
            appearance_png=picture_png(picture.type, picture.data),
            placement=PdfPlacement(page=page, x=x, y=y, width=width, height=height),
            reason=f"{licence_type.name} 签发",
            name=identity.seal.name,
            time=now,
        )
        return ofd, pdf

    @staticmethod
    def _metadata(
        licence_type: LicenceType,
        data: Mapping[str, Any],
        identifier,
        department: str,
        issuer_code: str,
        today,
        valid_until,
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
        )
