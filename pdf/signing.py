"""Signing a PDF with SM2: an approval or certification signature as an incremental update.

The signed file is the original, byte for byte, followed by one update (pdf/incremental.py)
holding: the signature dictionary (/Type /Sig /Filter /Adobe.PPKLite, /SubFilter
adbe.pkcs7.detached or ETSI.CAdES.detached, /ByteRange, /Contents, /M, /Reason, /Location,
/Name, and for a certification the DocMDP /Reference); one merged signature field and widget
(/FT /Sig, /T SignatureN, /V, /Rect, /P, /F 4 print, /AP with the seal picture or an empty
form); the page with the widget added to /Annots; the AcroForm with the field in /Fields and
/SigFlags 3 (SignaturesExist | AppendOnly, which tells readers to save further changes as
updates); the catalogue when it gains /AcroForm or, for a certification, /Perms /DocMDP.
Nothing else is touched, so the changes a verifier sees between revisions are exactly the
ones a signature is permitted to make.

/Contents is reserved once, from :func:`ca.cms.estimated_size` (an exact bound) plus a margin,
and zero-padded; /ByteRange [0 a b c] is written into fixed-width room, so the file is never
rewritten after hashing: SM3 over bytes [0, a) and [b, b + c), where [a, b) is the /Contents
hex string with its angle brackets, and c reaches the end of this revision. The CMS is an
RFC 5652 SignedData (id-signedData / id-data, which PDF readers expect) with one SM2-with-SM3
signer and the signed attributes contentType, messageDigest, signingTime and
signingCertificateV2, and the signer's certificate followed by ``chain``. For
ETSI.CAdES.detached, PAdES baseline (ETSI EN 319 142-1) wants signingTime left out, the time
being /M; ca.cms cannot omit it yet, so those signatures still carry it — a known departure.
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache

import pikepdf

from ca.certificates import load_certificate
from ca.cms import estimated_size, sign_signed_data
from ca.errors import CaError
from hsm.keystore import Signer
from hsm.sm3 import SM3, remember_prefix

from .appearance import (
    AppearanceError,
    empty_appearance,
    page_geometry,
    read_picture,
    seal_appearance,
    widget_box,
)
from .errors import PdfError, PdfFormatError
from .incremental import IncrementalUpdate, Name, Raw, Ref
from .pdfa import pdf_date
from .revisions import Revision, read_revisions

SUBFILTERS = ("adbe.pkcs7.detached", "ETSI.CAdES.detached")
DOCMDP_LEVELS = (1, 2, 3)
"""P of a certification: 1 no changes, 2 form filling and signing, 3 also annotations."""
CONTENTS_MARGIN = 64
"""Bytes reserved in /Contents beyond the CMS size bound."""
MARGIN_RIGHT_MM, MARGIN_BOTTOM_MM = 20.0, 30.0
"""The default placement: the seal's box this far from the right and bottom edges."""
_BYTE_RANGE_ROOM = b"[0 0000000000 0000000000 0000000000]"
_MAX_FIELDS = 10_000
_MAX_FIELD_DEPTH = 32


class PdfSigningError(PdfError):
    """The PDF cannot be signed as asked (encrypted, broken, locked, no such page); nothing was written."""


@dataclass(frozen=True)
class PdfPlacement:
    """Where the seal appears: page index (0-based) and the box in millimetres from the top-left
    corner of the page as displayed; None means the default (bottom right, the picture's size)."""

    page: int = 0
    x: float | None = None
    y: float | None = None
    width: float | None = None
    height: float | None = None


def sign_pdf(data: bytes, *, signer: Signer, certificate: bytes, chain: Sequence[bytes] = (),
             appearance_png: bytes | None = None, placement: PdfPlacement | None = None,
             reason: str | None = None, location: str | None = None, name: str | None = None,
             time: datetime | None = None, subfilter: str = "adbe.pkcs7.detached",
             certify: int | None = None, field_name: str | None = None) -> bytes:
    """``data`` with one more signature, appended as an incremental update.

    ``certificate`` (DER or PEM) holds ``signer``'s key; ``chain`` its issuers, carried in the
    CMS. ``appearance_png`` is the seal picture drawn at ``placement`` (default: bottom right
    of the first page, at ``placement``'s width/height or else the size the PNG's resolution
    gives); without it the signature is invisible. ``name`` defaults to the certificate's
    common name, ``time`` (timezone-aware; /M is written in its offset) to now. ``certify``
    = 1, 2 or 3 makes this the document's certification signature with that DocMDP level;
    only the first signature may certify, and nothing may follow P=1. ``field_name`` defaults
    to the first free ``SignatureN``. Raises :class:`PdfSigningError`, having written nothing.
    """
    when = _signing_time(time)
    _check_options(subfilter, certify, field_name, placement, reason, location, name)
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise PdfSigningError(f"expected the PDF's bytes, got {type(data).__name__}")
    chain = tuple(chain)
    if not all(isinstance(c, (bytes, bytearray)) for c in (certificate, *chain)):
        raise PdfSigningError("the certificate and the chain must be bytes (DER or PEM)")
    data = bytes(data)
    try:
        update = IncrementalUpdate(data, _revisions(data))
        with _open(data) as pdf:
            field = _add_signature(pdf, update, appearance_png, placement or PdfPlacement(), certify,
                                   field_name)
            _check_not_repaired(pdf)
            sig = _signature_dictionary(update, field.signature, certificate, chain, when, subfilter, certify,
                                        reason, location, name)
            out, offsets = update.write()
    except pikepdf.PdfError as exc:
        raise PdfSigningError(f"cannot sign: the PDF is damaged ({_qpdf_message(exc)})") from exc
    except PdfFormatError as exc:
        raise PdfSigningError(f"cannot sign: {exc}") from exc
    except AppearanceError as exc:
        raise PdfSigningError(f"cannot draw the seal: {exc}") from exc
    return _fill_signature(out, offsets[field.signature], sig, signer, certificate, chain, when,
                           with_time=subfilter != "ETSI.CAdES.detached")


# ---- the inputs -----------------------------------------------------------------------------

def _signing_time(time: datetime | None) -> datetime:
    if time is None:
        return datetime.now(UTC).replace(microsecond=0)
    if not isinstance(time, datetime) or time.tzinfo is None or time.utcoffset() is None:
        raise PdfSigningError("time must be a timezone-aware datetime (e.g. datetime.now(UTC))")
    return time.replace(microsecond=0)


def _check_options(subfilter: str, certify: int | None, field_name: str | None,
                   placement: PdfPlacement | None, *texts: str | None) -> None:
    if subfilter not in SUBFILTERS:
        raise PdfSigningError(f"unknown /SubFilter {subfilter!r}: use one of {', '.join(SUBFILTERS)}")
    if certify is not None and (isinstance(certify, bool) or certify not in DOCMDP_LEVELS):
        raise PdfSigningError(f"certify must be a DocMDP level 1, 2 or 3, not {certify!r}")
    if field_name is not None and (not isinstance(field_name, str) or not field_name or "." in field_name):
        raise PdfSigningError(f"field name {field_name!r} must be a non-empty name without '.'")
    for text in texts:
        if text is not None and not isinstance(text, str):
            raise PdfSigningError(f"reason, location and name are text, not {type(text).__name__}")
    if placement is None:
        return
    if not isinstance(placement, PdfPlacement):
        raise PdfSigningError(f"placement must be a PdfPlacement, not {type(placement).__name__}")
    if isinstance(placement.page, bool) or not isinstance(placement.page, int) or placement.page < 0:
        raise PdfSigningError(f"page must be a page index from 0, not {placement.page!r}")
    for label in ("x", "y", "width", "height"):
        value = getattr(placement, label)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                                  or not math.isfinite(value) or value < 0 or
                                  (label in ("width", "height") and value == 0)):
            raise PdfSigningError(f"placement {label} must be a finite, non-negative number of mm, "
                                  f"not {value!r}")


def _revisions(data: bytes) -> tuple[Revision, ...]:
    """The original's revisions as the verifier reads them; refused unless they are sound."""
    if b"%PDF-" not in data[:1024]:
        raise PdfSigningError("not a PDF: no %PDF- header in the first 1024 bytes")
    revisions = read_revisions(data)  # PdfFormatError: no cross-reference chain to extend
    problems = [p for revision in revisions for p in revision.problems]
    if problems:
        raise PdfSigningError("the PDF's cross-reference sections are inconsistent, so a verifier could not "
                              "tell what a signature covers: " + "; ".join(problems[:5]))
    trailing = data[revisions[-1].end:]
    if trailing.strip(b"\0\t\n\f\r "):
        raise PdfSigningError(f"{len(trailing)} bytes follow the final %%EOF: the file is not a complete PDF")
    return revisions


def _check_not_repaired(pdf: pikepdf.Pdf) -> None:
    """qpdf mends what it reads (a missing /MediaBox, a broken page tree) in memory, and the
    mended objects would be written into the update as if the original said so: refuse."""
    warnings = [_qpdf_message(w) for w in pdf.get_warnings()]
    if warnings:
        raise PdfSigningError("the PDF needed repair to be read (" + "; ".join(warnings[:3]) +
                              "): sign a repaired copy instead (e.g. qpdf in.pdf out.pdf)")


def _qpdf_message(message: object) -> str:
    """qpdf's message without the name of the in-memory stream it read from."""
    return re.sub(r"^stream <[^>]*>,? *", "", str(message))


def _open(data: bytes) -> pikepdf.Pdf:
    try:
        # No recovery: a file whose cross-references must be rebuilt cannot take an update that
        # points back at them. No page-attribute push-down: the page is rewritten as it is.
        pdf = pikepdf.Pdf.open(io.BytesIO(data), attempt_recovery=False, inherit_page_attributes=False)
    except pikepdf.PasswordError as exc:
        raise PdfSigningError("the PDF is encrypted: signing encrypted PDFs is not supported") from exc
    except pikepdf.PdfError as exc:
        raise PdfSigningError(f"not a readable PDF: {_qpdf_message(exc)}") from exc
    if pdf.is_encrypted:
        pdf.close()
        raise PdfSigningError("the PDF is encrypted: signing encrypted PDFs is not supported")
    return pdf


# ---- the form: existing fields, certification, the new field -----------------------------------

@dataclass(frozen=True)
class _Field:
    signature: Ref   # the /V signature dictionary, filled in after hashing
    field: Ref


def _walk_fields(fields: object) -> Iterator[pikepdf.Dictionary]:
    """Every field dictionary of the tree (terminal or not), bounded against loops and bombs."""
    stack, seen, count = [(fields, 0)], set(), 0
    while stack:
        kids, depth = stack.pop()
        if not isinstance(kids, pikepdf.Array):
            continue
        if depth > _MAX_FIELD_DEPTH:
            raise PdfSigningError(f"the form's field tree is deeper than {_MAX_FIELD_DEPTH} levels")
        for kid in kids:
            if not isinstance(kid, pikepdf.Dictionary):
                continue
            if kid.is_indirect:
                if kid.objgen in seen:
                    continue
                seen.add(kid.objgen)
            count += 1
            if count > _MAX_FIELDS:
                raise PdfSigningError(f"the form has more than {_MAX_FIELDS} fields")
            yield kid
            stack.append((kid.get("/Kids"), depth + 1))


def _docmdp_level(signature: object) -> int | None:
    """P of a signature dictionary's DocMDP reference (2 if the reference omits it), or None."""
    if not isinstance(signature, pikepdf.Dictionary):
        return None
    references = signature.get("/Reference")
    for ref in references if isinstance(references, pikepdf.Array) else ():
        if isinstance(ref, pikepdf.Dictionary) and ref.get("/TransformMethod") == pikepdf.Name.DocMDP:
            params = ref.get("/TransformParams")
            p = params.get("/P", 2) if isinstance(params, pikepdf.Dictionary) else 2
            return p if isinstance(p, int) and p in DOCMDP_LEVELS else 1  # unreadable: strictest
    return None


def _check_form(root: pikepdf.Dictionary, acroform: object, certify: int | None, field_name: str | None
                ) -> str:
    """Refuse what the existing signatures forbid; the name of the new field."""
    fields = acroform.get("/Fields") if isinstance(acroform, pikepdf.Dictionary) else None
    if fields is not None and not isinstance(fields, pikepdf.Array):
        raise PdfSigningError("the form's /Fields is not an array")
    # The new field is a top-level one, so only top-level names can collide with it.
    names = {str(f["/T"]) for f in fields or () if isinstance(f, pikepdf.Dictionary) and "/T" in f}
    signed, levels = 0, []
    for f in _walk_fields(fields):
        value = f.get("/V")
        if isinstance(value, pikepdf.Dictionary) and "/ByteRange" in value:
            signed += 1
            levels.append(_docmdp_level(value))
    perms = root.get("/Perms")
    if isinstance(perms, pikepdf.Dictionary):
        levels.append(_docmdp_level(perms.get("/DocMDP")))
    if 1 in levels:
        raise PdfSigningError("the document is certified with DocMDP P=1 (no changes permitted): "
                              "a further signature would invalidate the certification")
    if certify is not None and (signed or any(level is not None for level in levels)):
        raise PdfSigningError(f"a certification signature must be the document's first; it has {signed} "
                              "signature(s) already")
    if field_name is not None:
        if field_name in names:
            raise PdfSigningError(f"the form already has a field named {field_name!r}")
        return field_name
    n = 1
    while f"Signature{n}" in names:
        n += 1
    return f"Signature{n}"


class _Edits:
    """Changes to existing dictionaries, gathered per object so each is rewritten once."""

    def __init__(self, update: IncrementalUpdate):
        self._update = update
        self._changes: dict[Ref, tuple[pikepdf.Dictionary, dict[str, object]]] = {}

    def set(self, obj: pikepdf.Dictionary, key: str, value: object) -> None:
        ref = Ref(*obj.objgen)
        self._changes.setdefault(ref, (obj, {}))[1][key] = value

    def append(self, holder: pikepdf.Dictionary, key: str, item: Ref) -> None:
        """Add ``item`` to the array ``holder[key]``: the array object itself if it is indirect."""
        current = holder.get(key)
        if current is None:
            self.set(holder, key, [item])
        elif not isinstance(current, pikepdf.Array):
            raise PdfSigningError(f"{key} is not an array")
        elif current.is_indirect:
            self._update.put(Ref(*current.objgen), [*current, item])
        else:
            self.set(holder, key, [*current, item])

    def write(self) -> None:
        for ref, (obj, changes) in self._changes.items():
            self._update.put(ref, {**{key: value for key, value in obj.items()}, **changes})


def _add_signature(pdf: pikepdf.Pdf, update: IncrementalUpdate, png: bytes | None, placement: PdfPlacement,
                   certify: int | None, field_name: str | None) -> _Field:
    root = pdf.Root
    acroform = root.get("/AcroForm")
    if acroform is not None and not isinstance(acroform, pikepdf.Dictionary):
        raise PdfSigningError("the catalogue's /AcroForm is not a dictionary")
    title = _check_form(root, acroform, certify, field_name)
    if placement.page >= len(pdf.pages):
        raise PdfSigningError(f"page {placement.page + 1} does not exist (the document has {len(pdf.pages)})")
    page = pdf.pages[placement.page].obj
    if not page.is_indirect:
        raise PdfSigningError(f"page {placement.page + 1} is not an indirect object")

    signature, field = update.new_ref(), update.new_ref()
    widget: dict[str, object] = {"FT": Name("Sig"), "T": title, "V": signature, "Type": Name("Annot"),
                                 "Subtype": Name("Widget"), "F": 4, "P": Ref(*page.objgen)}
    if png is None:
        widget["Rect"] = [0, 0, 0, 0]
        widget["AP"] = {"N": empty_appearance(update)}
    else:
        picture = read_picture(png)
        geometry = page_geometry(page)
        width, height = _size(placement, picture.size_mm)
        page_w, page_h = geometry.display_size_mm
        x = placement.x if placement.x is not None else page_w - width - MARGIN_RIGHT_MM
        y = placement.y if placement.y is not None else page_h - height - MARGIN_BOTTOM_MM
        box = widget_box(geometry, x, y, width, height)
        widget["Rect"] = [round(v, 4) for v in box.rect]
        widget["AP"] = {"N": seal_appearance(update, picture, box)}
    update.put(field, widget)

    edits = _Edits(update)
    if acroform is None:
        form_ref = update.new_ref()
        update.put(form_ref, {"Fields": [field], "SigFlags": 3})
        edits.set(root, "/AcroForm", form_ref)
    else:
        flags = acroform.get("/SigFlags", 0)
        flags = (flags if isinstance(flags, int) else 0) | 3
        if acroform.is_indirect:
            edits.append(acroform, "/Fields", field)
            if flags != acroform.get("/SigFlags"):
                edits.set(acroform, "/SigFlags", flags)
        else:  # a direct AcroForm changes with the catalogue that holds it
            fields = acroform.get("/Fields")
            direct = {key: value for key, value in acroform.items()}
            direct["/SigFlags"] = flags
            if isinstance(fields, pikepdf.Array) and fields.is_indirect:
                update.put(Ref(*fields.objgen), [*fields, field])
            else:
                direct["/Fields"] = [*(fields or ()), field]
            edits.set(root, "/AcroForm", direct)
    if certify is not None:
        perms = root.get("/Perms")
        merged = {key: value for key, value in perms.items()} if isinstance(perms, pikepdf.Dictionary) else {}
        edits.set(root, "/Perms", {**merged, "/DocMDP": signature})
    edits.append(page, "/Annots", field)
    edits.write()
    return _Field(signature, field)


def _size(placement: PdfPlacement, picture_mm: tuple[float, float] | None) -> tuple[float, float]:
    width, height = placement.width, placement.height
    if width is not None and height is not None:
        return width, height
    if picture_mm is None:
        raise PdfSigningError("the seal picture states no resolution: give the placement's width and "
                              "height in mm (the seal's picture size)")
    if width is not None:
        return width, width * picture_mm[1] / picture_mm[0]
    if height is not None:
        return height * picture_mm[0] / picture_mm[1], height
    return picture_mm


# ---- the signature dictionary and the CMS -----------------------------------------------------

def _common_name(certificate: bytes) -> str | None:
    try:
        subject = load_certificate(certificate).subject.native
    except CaError as exc:
        raise PdfSigningError(f"the signer certificate is unusable: {exc}") from exc
    value = subject.get("common_name")
    return value if isinstance(value, str) else None


@lru_cache(maxsize=64)
def _contents_size(certificate: bytes, chain: tuple[bytes, ...]) -> int:
    """Bytes to reserve for the CMS. Without a signing time the bound assumes the longer
    GeneralizedTime, so one figure serves every signature with this certificate and chain
    (building the bound costs as much as signing: bulk issuance pays it once)."""
    try:
        return estimated_size(certificate=certificate, chain=list(chain), detached=True,
                              flavour="rfc5652") + CONTENTS_MARGIN
    except CaError as exc:
        raise PdfSigningError(f"cannot sign with this certificate or chain: {exc}") from exc


def _signature_dictionary(update: IncrementalUpdate, ref: Ref, certificate: bytes, chain: Sequence[bytes],
                          when: datetime, subfilter: str, certify: int | None, reason: str | None,
                          location: str | None, name: str | None) -> dict[str, object]:
    size = _contents_size(bytes(certificate), tuple(bytes(c) for c in chain))
    # /ByteRange and /Contents come before any caller text, so the first match of each after the
    # object's offset is the one written here.
    sig: dict[str, object] = {
        "Type": Name("Sig"), "Filter": Name("Adobe.PPKLite"), "SubFilter": Name(subfilter),
        "ByteRange": Raw(_BYTE_RANGE_ROOM), "Contents": Raw(b"<" + b"0" * (2 * size) + b">"),
        "M": pdf_date(when),
    }
    signer_name = name if name is not None else _common_name(certificate)
    for key, value in (("Name", signer_name), ("Reason", reason), ("Location", location)):
        if value is not None:
            sig[key] = value
    if certify is not None:
        sig["Reference"] = [{"Type": Name("SigRef"), "TransformMethod": Name("DocMDP"),
                             "TransformParams": {"Type": Name("TransformParams"), "P": certify,
                                                 "V": Name("1.2")}}]
    update.put(ref, sig)
    return sig


def _fill_signature(out: bytes, offset: int, sig: dict[str, object], signer: Signer, certificate: bytes,
                    chain: Sequence[bytes], when: datetime, *, with_time: bool = True) -> bytes:
    """Write /ByteRange, hash the covered bytes, sign, and write /Contents: no byte moves.
    ``with_time=False`` (PAdES, ETSI.CAdES.detached): the time is /M's, not a signed attribute."""
    range_at = out.index(b"/ByteRange " + _BYTE_RANGE_ROOM, offset) + len(b"/ByteRange ")
    a = out.index(b"/Contents <", offset) + len(b"/Contents ")
    b = a + len(sig["Contents"].pdf)
    c = len(out) - b
    byte_range = b"[0 %d %d %d]" % (a, b, c)
    buffer = bytearray(out)
    width = len(_BYTE_RANGE_ROOM)
    buffer[range_at:range_at + width] = byte_range[:-1].ljust(width - 1) + b"]"
    covered = SM3()
    with memoryview(buffer) as view:
        # Everything before /Contents is also how the signed file begins, which the document
        # store hashes next for its address: hashed once (hsm.sm3 compares it byte for byte).
        remember_prefix(view[:a])
        covered.update(view[:a])
        covered.update(view[b:])
    digest = covered.digest()
    try:
        cms = sign_signed_data(signer=signer, certificate=certificate, chain=list(chain), digest=digest,
                               detached=True, flavour="rfc5652", signing_time=when,
                               signing_time_attribute=with_time)
    except CaError as exc:
        raise PdfSigningError(f"cannot sign: {exc}") from exc
    room = (b - a - 2) // 2
    if len(cms) > room:  # estimated_size is a bound; this would be a bug, never a re-signing
        raise PdfSigningError(f"internal error: the {len(cms)}-byte CMS exceeds the {room} bytes reserved")
    buffer[a + 1:a + 1 + 2 * len(cms)] = cms.hex().upper().encode("ascii")
    return bytes(buffer)
