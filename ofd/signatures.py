"""The signature files of an OFD package (GB/T 33190 §18), as real producers write them.

OFD.xml DocBody → Signatures.xml (a list: Signature ID, Type, BaseLoc) → each Signature.xml
(SignedInfo{Provider, SignatureMethod, SignatureDateTime, References CheckMethod{Reference
FileRef → CheckValue}, StampAnnot, Seal BaseLoc}, SignedValue). This module only reads and
resolves them; judging them is :mod:`ofd.verification`'s job.

Leniency where producers differ, and only there: element order (ofdrw writes SignedValue
first), paths relative to the referring file or to the package root, namespace spellings,
Type absent (= Seal, as the standard's default). Anything structurally missing — no
SignedValue, a Reference without a FileRef or CheckValue, an undecodable CheckValue — is an
:class:`~ofd.errors.OfdFormatError` naming the part.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

from .errors import OfdFormatError
from .package import Package
from .reader import reference_path
from .xml import attr, child, child_text, children, local_name, numbers, parse

SEAL = "Seal"
SIGN = "Sign"


@dataclass(frozen=True)
class Reference:
    file_ref: str  # as written
    path: str  # resolved in the package (may not exist: then the file is missing)
    check_value: bytes  # base64-decoded


@dataclass(frozen=True)
class StampAnnot:
    id: str | None
    page_ref: str | None
    boundary: tuple[float, float, float, float] | None
    clip: tuple[float, float, float, float] | None = None


@dataclass(frozen=True)
class SignatureEntry:
    """One Signature element of Signatures.xml (which is normally unprotected)."""

    id: str
    type: str  # "Seal" (also when absent) or "Sign"; anything else is kept as written
    type_written: str | None
    base_loc: str
    path: str  # resolved Signature.xml


@dataclass(frozen=True)
class SignatureList:
    path: str
    max_sign_id: str | None
    entries: tuple[SignatureEntry, ...]


@dataclass(frozen=True)
class SignatureFile:
    """A parsed Signature.xml and the locations it names."""

    entry: SignatureEntry
    raw: bytes  # the file's bytes: what a seal signature's dataHash covers
    provider: dict[str, str]
    signature_method: str | None
    signature_date_time: str | None
    check_method: str | None
    references: tuple[Reference, ...]
    stamp_annots: tuple[StampAnnot, ...]
    seal_path: str | None  # Seal/BaseLoc (Seal.esl), resolved
    signed_value_path: str  # SignedValue, resolved


def _box(text: str | None, part: str, what: str) -> tuple[float, float, float, float] | None:
    return None if text is None else numbers(text, part, what, 4)  # type: ignore[return-value]


def read_signature_list(package: Package, path: str) -> SignatureList:
    """Signatures.xml at ``path`` (already resolved from OFD.xml's DocBody)."""
    root = parse(package.read(path), path)
    if local_name(root) != "Signatures":
        raise OfdFormatError(f"{path}: root element is {local_name(root)!r}, not Signatures")
    entries = []
    seen: set[str] = set()
    for element in children(root, "Signature"):
        sid = attr(element, "ID")
        base_loc = attr(element, "BaseLoc")
        if not sid or not base_loc:
            raise OfdFormatError(f"{path}: a Signature entry lacks its ID or BaseLoc")
        if sid in seen:
            raise OfdFormatError(f"{path}: signature ID {sid!r} is listed twice")
        seen.add(sid)
        written = attr(element, "Type")
        entries.append(
            SignatureEntry(
                id=sid,
                type=written or SEAL,
                type_written=written,
                base_loc=base_loc,
                path=reference_path(package, base_loc, path, what="BaseLoc"),
            )
        )
    return SignatureList(path=path, max_sign_id=child_text(root, "MaxSignId"), entries=tuple(entries))


def read_signature_file(package: Package, entry: SignatureEntry) -> SignatureFile:
    part = entry.path
    raw = package.read(part)
    root = parse(raw, part)
    info = child(root, "SignedInfo")
    if info is None:
        raise OfdFormatError(f"{part}: no SignedInfo")
    signed_value = child_text(root, "SignedValue")
    if not signed_value:
        raise OfdFormatError(f"{part}: no SignedValue")
    provider_el = child(info, "Provider")
    provider = dict(provider_el.attrib) if provider_el is not None else {}
    refs_el = child(info, "References")
    references = []
    check_method = None
    if refs_el is not None:
        check_method = attr(refs_el, "CheckMethod")
        for ref in children(refs_el, "Reference"):
            file_ref = attr(ref, "FileRef")
            value = child_text(ref, "CheckValue")
            if not file_ref or value is None:
                raise OfdFormatError(f"{part}: a Reference lacks its FileRef or CheckValue")
            try:
                digest = base64.b64decode(value, validate=True)
            except (binascii.Error, ValueError) as exc:
                raise OfdFormatError(f"{part}: CheckValue of {file_ref} is not base64") from exc
            references.append(
                Reference(file_ref, reference_path(package, file_ref, part, what="FileRef"), digest)
            )
    stamps = tuple(
        StampAnnot(
            attr(s, "ID"),
            attr(s, "PageRef"),
            _box(attr(s, "Boundary"), part, "Boundary"),
            _box(attr(s, "Clip"), part, "Clip"),
        )
        for s in children(info, "StampAnnot")
    )
    seal_el = child(info, "Seal")
    seal_loc = child_text(seal_el, "BaseLoc") if seal_el is not None else None
    return SignatureFile(
        entry=entry,
        raw=raw,
        provider=provider,
        signature_method=child_text(info, "SignatureMethod"),
        signature_date_time=child_text(info, "SignatureDateTime"),
        check_method=check_method,
        references=tuple(references),
        stamp_annots=stamps,
        seal_path=reference_path(package, seal_loc, part, what="Seal BaseLoc") if seal_loc else None,
        signed_value_path=reference_path(package, signed_value, part, what="SignedValue"),
    )
