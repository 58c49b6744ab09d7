"""Sealing an OFD package: add a signature (GB/T 33190 §18) without disturbing earlier ones.

Every existing entry is copied byte for byte; what changes is only what must: Signatures.xml
(created, or extended by one entry) and, for the first signature only, OFD.xml (to point at
Signatures.xml — no earlier signature can cover it then). The new Sign_N folder holds:

* Seal.esl — the seal, for readers that show it (Seal-type only);
* Signature.xml — SignedInfo with References over every file of the package as it now stands
  (earlier signatures' files included, so this signature also vouches for them), CheckMethod
  SM3, the StampAnnot where the seal is shown, and the seal's location;
* SignedValue.dat — for a Seal-type signature the SES_Signature whose dataHash is SM3 of
  Signature.xml; for a Sign-type one a GB/T 35275 SignedData over Signature.xml.

The new Seal.esl is the archive's first entry (GB/T 33190 readers find entries through the
ZIP's central directory; the order of entries carries no meaning), every other entry keeps its
order: so every package a seal stamps begins with the same bytes, the whole seal, which SM3 then goes over
once (:func:`hsm.sm3.remember_prefix`) when the store hashes the package for its address.

Signatures.xml itself is left out of the References, as conforming producers do, so that a
later signature can be added; the verifier judges it by coverage instead. A document whose
existing signature *does* protect Signatures.xml was locked by its signer: sealing it again
would break that signature, so it is refused.
"""

from __future__ import annotations

import base64
import functools
import posixpath
import re
import struct
from dataclasses import dataclass
from datetime import UTC, datetime

from lxml import etree

from hsm import oids
from hsm.keystore import Signer
from hsm.sm3 import remember_prefix, sm3
from seals.make import sign_with_seal
from seals.seal import Seal, read_seal

from .content import element, number, serialize
from .errors import OfdError
from .package import Package, write_package
from .reader import OfdFile, read_ofd
from .signatures import SEAL, SIGN, read_signature_file, read_signature_list
from .xml import children, parse

PROVIDER = {"ProviderName": "zhengyin", "Company": "zhengyin", "Version": "0.1"}


class SealingError(OfdError):
    """The document cannot be sealed as asked (locked, no such page, …); nothing was written."""


@dataclass(frozen=True)
class Placement:
    """Where the stamp appears: page index (0-based) and the box in millimetres from top-left."""

    page: int = 0
    x: float | None = None
    y: float | None = None
    width: float | None = None
    height: float | None = None


DEFAULT_PLACEMENT = Placement()


def _free_folder(package: Package, signs_dir: str) -> str:
    prefix = f"{signs_dir}/" if signs_dir else ""  # a Signatures.xml at the package root
    n = 0
    while any(name.startswith(f"{prefix}Sign_{n}/") for name in package.names):
        n += 1
    return f"{prefix}Sign_{n}"


_ID = re.compile(rb'\bID="(\d{1,18})"')


def _next_id(package: Package) -> str:
    """An object ID no part of the document uses yet (GB/T 33190 IDs are document-wide)."""
    highest = 0
    for name in package.names:
        if name.lower().endswith(".xml"):
            highest = max([highest, *(int(m) for m in _ID.findall(package.read(name)))])
    return str(highest + 1)


@dataclass(frozen=True)
class _Target:
    ofd: OfdFile
    signatures_path: str
    listing: etree._Element | None  # the existing Signatures.xml root, or None
    new_id: str
    ofd_xml: bytes | None  # replacement OFD.xml when this is the first signature


def _target(ofd: OfdFile) -> _Target:
    body = ofd.bodies[0]
    package = ofd.package
    if body.signatures is not None and body.signatures not in package:
        # OFD.xml names a Signatures.xml that is not there (templates do): create it there.
        return _Target(ofd, body.signatures, None, "1", None)
    if body.signatures is not None:
        listing = read_signature_list(package, body.signatures)
        for entry in listing.entries:
            signature = read_signature_file(package, entry)
            if any(ref.path == body.signatures for ref in signature.references):
                raise SealingError(
                    f"signature {entry.id} protects {body.signatures}: its signer locked the "
                    "document against further signatures"
                )
        ids = [int(e.id) for e in listing.entries if e.id.isdigit()]
        if listing.max_sign_id and listing.max_sign_id.strip().isdigit():
            ids.append(int(listing.max_sign_id))
        new_id = str(max(ids, default=0) + 1)
        return _Target(
            ofd, body.signatures, parse(package.read(body.signatures), body.signatures), new_id, None
        )
    doc_dir = posixpath.dirname(body.doc_root)
    path = f"{doc_dir}/Signs/Signatures.xml" if doc_dir else "Signs/Signatures.xml"
    root = parse(package.read("OFD.xml"), "OFD.xml")
    first = children(root, "DocBody")[0]
    pointer = etree.SubElement(first, _same_namespace(first, "Signatures"))
    pointer.text = "/" + path
    return _Target(ofd, path, None, "1", serialize(root))


def _same_namespace(parent: etree._Element, name: str) -> str:
    """A tag in the namespace the producer used for ``parent`` (2016, the older one, or none)."""
    namespace = etree.QName(parent).namespace
    return f"{{{namespace}}}{name}" if namespace else name


def _signatures_xml(target: _Target, signature_path: str, kind: str) -> bytes:
    if target.listing is None:
        root = element(None, "Signatures")
        element(root, "MaxSignId", target.new_id)
    else:
        root = target.listing
        for old in children(root, "MaxSignId"):
            root.remove(old)
    entry = etree.SubElement(root, _same_namespace(root, "Signature"))
    entry.set("ID", target.new_id)
    entry.set("Type", kind)
    entry.set("BaseLoc", "/" + signature_path)
    if target.listing is not None:  # GB/T 33190's order: MaxSignId before the entries
        max_id = etree.Element(_same_namespace(root, "MaxSignId"))
        max_id.text = target.new_id
        root.insert(0, max_id)
    return serialize(root)


def _page(ofd: OfdFile, placement: Placement, width: float, height: float) -> tuple[str, tuple[float, ...]]:
    pages = ofd.bodies[0].document.pages
    if not 0 <= placement.page < len(pages):
        raise SealingError(f"page {placement.page + 1} does not exist (the document has {len(pages)})")
    box = ofd.bodies[0].document.physical_box
    page_w, page_h = box[2], box[3]
    x = placement.x if placement.x is not None else page_w - width - 20
    y = placement.y if placement.y is not None else page_h - height - 30
    if not (0 <= x and 0 <= y and x + width <= page_w + 0.001 and y + height <= page_h + 0.001):
        raise SealingError(
            f"a {width}×{height} mm stamp at ({x}, {y}) does not fit the {page_w}×{page_h} mm page"
        )
    return pages[placement.page].id, (x, y, width, height)


def _digest(data: bytes) -> bytes:
    """SM3 of a referenced file; a large one's is kept by its bytes (the 100 kB seal every
    licence of a department references is hashed once, not once a licence)."""
    return _kept_digest(bytes(data)) if len(data) >= _KEPT_DIGEST_SIZE else sm3(data)


_KEPT_DIGEST_SIZE = 64 * 1024


@functools.lru_cache(maxsize=8)
def _kept_digest(data: bytes) -> bytes:
    return sm3(data)


def _signature_xml(
    *,
    references: dict[str, bytes],
    stamp: tuple[str, tuple[float, ...]] | None,
    stamp_id: str,
    seal_path: str | None,
    signed_value_path: str,
    time: datetime,
) -> bytes:
    root = element(None, "Signature")
    info = element(root, "SignedInfo")
    element(info, "Provider", **PROVIDER)
    element(info, "SignatureMethod", oids.SM2_WITH_SM3)
    element(info, "SignatureDateTime", time.astimezone(UTC).strftime("%Y%m%d%H%M%SZ"))
    refs = element(info, "References", CheckMethod=oids.SM3)
    for name, data in references.items():
        ref = element(refs, "Reference", FileRef="/" + name)
        element(ref, "CheckValue", base64.b64encode(_digest(data)).decode("ascii"))
    if stamp is not None:
        page_id, box = stamp
        element(info, "StampAnnot", ID=stamp_id, PageRef=page_id, Boundary=" ".join(number(v) for v in box))
    if seal_path is not None:
        seal = element(info, "Seal")
        element(seal, "BaseLoc", "/" + seal_path)
    element(root, "SignedValue", "/" + signed_value_path)
    return serialize(root)


def _assemble(
    ofd: OfdFile,
    kind: str,
    placement: Placement | None,
    size: tuple[float, float] | None,
    seal_der: bytes | None,
    time: datetime,
    sign,
) -> bytes:
    package = ofd.package
    target = _target(ofd)
    signs_dir = posixpath.dirname(target.signatures_path)
    folder = _free_folder(package, signs_dir)
    signature_path, value_path = f"{folder}/Signature.xml", f"{folder}/SignedValue.dat"
    seal_path = f"{folder}/Seal.esl" if seal_der is not None else None
    entries = {name: package.read(name) for name in package.names}
    if target.ofd_xml is not None:
        entries["OFD.xml"] = target.ofd_xml
    if seal_path is not None:
        entries[seal_path] = seal_der
    stamp = _page(ofd, placement, *size) if placement is not None and size is not None else None
    references = {name: data for name, data in entries.items() if name != target.signatures_path}
    signature_xml = _signature_xml(
        references=references,
        stamp=stamp,
        stamp_id=_next_id(package),
        seal_path=seal_path,
        signed_value_path=value_path,
        time=time,
    )
    entries[signature_path] = signature_xml
    entries[value_path] = sign(signature_xml, "/" + signature_path)
    entries[target.signatures_path] = _signatures_xml(target, signature_path, kind)
    if seal_path is None:
        return write_package(entries)
    package_bytes = write_package({seal_path: seal_der, **entries})
    _remember_first_entry(package_bytes, seal_path)
    return package_bytes


def _remember_first_entry(archive: bytes, name: str) -> None:
    """Tell SM3 that packages begin with this entry (local header and data): Seal.esl, written
    first, with its CRC, sizes and the fixed timestamp, is the same bytes in every document a
    seal stamps at the same place, and the store hashes each whole package for its address.
    Only speed depends on this: the prefix is compared byte for byte with what is hashed."""
    if archive[:4] != b"PK\x03\x04" or len(archive) < 30:
        return
    flags, compressed_size, name_size, extra_size = struct.unpack_from("<H10xIxxxxHH", archive, 6)
    first = archive[30:30 + name_size]
    if flags & 0x8 or compressed_size == 0xFFFFFFFF or first != name.encode("utf-8"):
        return  # sizes in a data descriptor, or not the entry we put first
    remember_prefix(archive[:30 + name_size + extra_size + compressed_size])


@functools.lru_cache(maxsize=16)
def _read_seal(seal: bytes) -> Seal:
    """The seal parsed, kept by its exact bytes (a Seal is immutable): every licence a seal
    stamps hands over the same seal."""
    return read_seal(seal)


def seal_ofd(
    data: bytes | Package,
    *,
    seal: bytes,
    signer: Signer,
    signer_certificate: bytes,
    placement: Placement = DEFAULT_PLACEMENT,
    time: datetime | None = None,
) -> bytes:
    """A new package with a Seal-type signature added. The caller has checked that the seal
    is usable (active, within validity, the signer one of its holders)."""
    when = time or datetime.now(UTC)
    ofd = read_ofd(data)
    parsed = _read_seal(bytes(seal))
    if signer_certificate not in parsed.certificates:
        raise SealingError(f"the signer certificate is not one of seal {parsed.es_id}'s certificates")
    size = (placement.width or parsed.picture.width_mm, placement.height or parsed.picture.height_mm)

    def sign(signature_xml: bytes, property_info: str) -> bytes:
        return sign_with_seal(
            seal,
            data_hash=sm3(signature_xml),
            property_info=property_info,
            signer=signer,
            signer_certificate=signer_certificate,
            time=when,
        )

    return _assemble(ofd, SEAL, placement, size, seal, when, sign)


def sign_ofd(
    data: bytes | Package,
    *,
    signer: Signer,
    signer_certificate: bytes,
    chain: list[bytes] = (),
    placement: Placement | None = None,
    time: datetime | None = None,
) -> bytes:
    """A new package with a Sign-type signature (GB/T 35275 SignedData over Signature.xml)."""
    from ca.cms import sign_signed_data

    when = time or datetime.now(UTC)
    ofd = read_ofd(data)
    size = (placement.width, placement.height) if placement and placement.width and placement.height else None
    if placement is not None and size is None:
        pages = len(ofd.bodies[0].document.pages)
        if not 0 <= placement.page < pages:
            raise SealingError(f"page {placement.page + 1} does not exist (the document has {pages})")
        if placement.x is not None or placement.y is not None:
            raise SealingError("a Sign-type signature shows no stamp: give no position, or seal instead")

    def sign(signature_xml: bytes, _property_info: str) -> bytes:
        return sign_signed_data(
            signer=signer,
            certificate=signer_certificate,
            chain=list(chain),
            content=signature_xml,
            detached=True,
            flavour="gbt35275",
            signing_time=when,
        )

    return _assemble(ofd, SIGN, placement if size else None, size, None, when, sign)
