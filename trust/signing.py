"""Sealing documents for a department: the seal office decides, ofd/ writes, the audit log remembers.

A document is sealed only with a seal that is usable at that moment (active, within its
validity, its signer certificate current: :meth:`seals.office.SealOffice.signing_identity`),
and every sealing is an audit entry naming the seal, the signer certificate and the SM3 of
what went in and what came out, so a department can later prove what it sealed.
"""

from __future__ import annotations

from datetime import UTC, datetime

from asn1crypto import x509

from hsm.sm3 import sm3
from ofd.sealing import DEFAULT_PLACEMENT, Placement, seal_ofd, sign_ofd
from seals.office import SigningIdentity

from .domain import TrustDomain

KINDS = ("seal", "sign")


def seal_document(
    td: TrustDomain,
    data: bytes,
    es_id: str,
    *,
    placement: Placement = DEFAULT_PLACEMENT,
    kind: str = "seal",
    time: datetime | None = None,
    certify: int | None = None,
) -> bytes:
    """The sealed OFD. Raises the seal office's errors when the seal may not be used now."""
    if kind not in KINDS:
        raise ValueError(f"signature kind must be one of {', '.join(KINDS)}")
    when = time or datetime.now(UTC)
    if certify is not None and data[:5] != b"%PDF-":
        raise ValueError("certification (DocMDP) applies to PDF documents only")
    identity = td.seals.signing_identity(es_id, when)
    if data[:5] == b"%PDF-":
        out = seal_pdf(data, identity, placement, kind, when, certify)
    elif kind == "seal":
        out = seal_ofd(
            data,
            seal=identity.seal_der,
            signer=identity.signer,
            signer_certificate=identity.signer_certificate,
            placement=placement,
            time=when,
        )
    else:
        out = sign_ofd(
            data,
            signer=identity.signer,
            signer_certificate=identity.signer_certificate,
            chain=list(identity.chain),
            placement=placement,
            time=when,
        )
    serial = x509.Certificate.load(identity.signer_certificate).serial_number
    td.audit.record(
        "document.seal",
        actor=td.actor,
        subject=f"seal:{es_id}",
        details={
            "kind": kind,
            "format": "pdf" if data[:5] == b"%PDF-" else "ofd",
            "certify": certify,
            "signer_serial": format(serial, "X"),
            "page": placement.page + 1,
            "input_sm3": sm3(data).hex(),
            "output_sm3": sm3(out).hex(),
            "time": when.isoformat(),
        },
    )
    return out


def seal_pdf(
    data: bytes, identity: SigningIdentity, placement: Placement, kind: str, when: datetime,
    certify: int | None = None,
) -> bytes:
    """A PDF approval signature: the seal's picture as the widget appearance (kind "seal"), or
    an invisible signature (kind "sign"); the CMS is the same SM2 SignedData either way. Public:
    the data service seals its annotated copies this way too (:mod:`trust.data_seal`), unaudited
    here — the caller records what it sealed."""
    from pdf.signing import PdfPlacement, sign_pdf
    from seals.picture import picture_png

    seal = identity.seal
    box = PdfPlacement(
        page=placement.page,
        x=placement.x,
        y=placement.y,
        width=placement.width or seal.picture.width_mm,
        height=placement.height or seal.picture.height_mm,
    )
    appearance = picture_png(seal.picture.type, seal.picture.data) if kind == "seal" else None
    return sign_pdf(
        data,
        signer=identity.signer,
        certificate=identity.signer_certificate,
        chain=list(identity.chain),
        appearance_png=appearance,
        placement=box if kind == "seal" else None,
        reason=f"{seal.name} 盖章",
        name=seal.name,
        time=when,
        certify=certify,
    )
