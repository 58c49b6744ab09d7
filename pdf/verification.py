"""What a PDF's own bytes say about its signatures — every check short of trust.

For each signature field with a value (/V), checks named as the OFD evidence names them:

* ``format`` — the signature dictionary, read from the bytes at the offset the xref gives
  (never through a repairing parser): /Type /Sig, /Filter and /SubFilter known, /Contents a
  hex string of hex digits only, holding a detached CMS SignedData followed by zeros only;
  a certification signature's DocMDP transform; no key written twice;
* ``byte-range`` — /ByteRange exactly four integers [0 a b c] with 0 < a < b, b + c within the
  file, the gap [a, b) exactly this dictionary's /Contents string including its angle
  brackets, and b + c the end of a revision (just past its %%EOF and end of line). This is
  what defeats signature wrapping (a /Contents moved away from the gap) and universal
  forgery (empty or null /Contents, [0 0 0 0], ranges that cover nothing or the wrong part);
* ``data-hash`` — messageDigest equals SM3 of the covered bytes (HASH_FAILURE);
* the SignedData checks of :func:`ca.cms.verify_signed_data` (algorithm, signer certificate,
  signingCertificateV2, content type, ``signature``);
* ``modifications`` — every revision after the one the signature covers, judged by
  :mod:`pdf.modifications`; a refused change fails with ``NOT_COVERED`` (the change is real
  and shown by readers, but no signature protects it — the same sub-indication the OFD
  coverage check uses; HASH_FAILURE would claim the signed bytes changed, and they did not).

For the document: ``coverage`` — the last revision is signed, or every revision after the
last signed one is permitted; bytes after the final %%EOF belong to no revision and fail it.

Chains, revocation and trust anchors are the trust room's: the evidence carries the signer's
certificate, every certificate of the CMS and the claimed signing time.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta, timezone

import pikepdf

from ca.cms import CmsFormatError, SignedDataInfo, read_signed_data, verify_signed_data
from ca.verdict import FORMAT_FAILURE, NOT_COVERED, Check, failed, passed
from hsm.sm3 import SM3

from .errors import PdfFormatError
from .modifications import History, RevisionDiff
from .revisions import Revision, object_as_of, open_revision, read_revisions, revision_ending_at
from .syntax import WHITESPACE, Name, PdfDict, PdfString, Ref

PADES = "pades-b"
PKCS7 = "pkcs7-detached"
UNKNOWN = "unknown"
SUBFILTERS = {"ETSI.CAdES.detached": PADES, "adbe.pkcs7.detached": PKCS7}
FILTERS = frozenset({"Adobe.PPKLite", "Adobe.PPKMS"})
_REFUSED_SUBFILTERS = {
    "adbe.pkcs7.sha1": "SHA-1 digests are not accepted",
    "adbe.x509.rsa_sha1": "a bare RSA/SHA-1 signature",
    "ETSI.RFC3161": "a document time-stamp, not a signature (not supported yet)",
}
_BUFFER = re.compile(r"(?:stream )?<_io\.BytesIO object at 0x[0-9a-f]+>:? ?")
_UNLINKED = re.compile(rb"\bobj\b|\bxref\b|\btrailer\b|startxref|\bendobj\b")
_HEX_DIGITS = re.compile(rb"<[0-9A-Fa-f]*>")
_PDF_DATE = re.compile(r"D:(\d{4})(\d{2})?(\d{2})?(\d{2})?(\d{2})?(\d{2})?(?:([Zz+-])(\d{2})?'?(\d{2})?'?)?$")


@dataclass(frozen=True)
class PdfSignatureEvidence:
    field_name: str
    format: str                               # PADES, PKCS7 or UNKNOWN
    checks: tuple[Check, ...]
    signer_certificate: bytes | None = None
    certificates: tuple[bytes, ...] = ()      # every certificate the CMS carries
    signing_time: datetime | None = None      # CMS signingTime, else /M: a claim, not a proof
    revision: int = 0                         # the revision it covers (1 = the original); 0 unknown
    covered_to: int = 0                       # b + c of its /ByteRange
    reason: str | None = None
    location: str | None = None
    docmdp: int | None = None                 # P, when this is the certification signature


@dataclass(frozen=True)
class PdfEvidence:
    revisions: tuple[Revision, ...]
    signatures: tuple[PdfSignatureEvidence, ...]
    checks: tuple[Check, ...] = ()            # document level: coverage


# ---- small readers --------------------------------------------------------------------------
def _text(value: object) -> str | None:
    """A PDF text string: UTF-16BE with its BOM (or UTF-8 with one), else PDFDocEncoding (~Latin-1)."""
    if not isinstance(value, bytes):
        return None
    if value.startswith(b"\xfe\xff"):
        return value[2:].decode("utf-16-be", "replace")
    if value.startswith(b"\xef\xbb\xbf"):
        return value[3:].decode("utf-8", "replace")
    return value.decode("latin-1")


def read_pdf_date(value: object) -> datetime | None:
    """``D:YYYYMMDDHHmmSS+HH'mm'`` (ISO 32000-1 §7.9.4), None if it is not one."""
    match = _PDF_DATE.match(_text(value) or "")
    if match is None:
        return None
    y, mo, d, h, mi, s, sign, oh, om = match.groups()
    try:
        when = datetime(int(y), int(mo or 1), int(d or 1), int(h or 0), int(mi or 0), int(s or 0))
        if sign in (None, "Z", "z"):
            return when.replace(tzinfo=UTC)
        offset = timedelta(hours=int(oh or 0), minutes=int(om or 0))
        return when.replace(tzinfo=timezone(offset if sign == "+" else -offset))
    except ValueError:
        return None


def _name(value: object) -> str | None:
    return str(value) if isinstance(value, Name) else None


# ---- the signature fields -----------------------------------------------------------------------
@dataclass(frozen=True)
class _SignatureField:
    name: str
    value: pikepdf.Object


def _signature_fields(pdf: pikepdf.Pdf) -> list[_SignatureField]:
    form = pdf.Root.get("/AcroForm")
    found: list[_SignatureField] = []
    seen: set[tuple[int, int]] = set()

    def walk(kids, parent: str, ft, depth: int) -> None:
        if not isinstance(kids, pikepdf.Array) or depth > 32:
            return
        for kid in kids:
            if not isinstance(kid, pikepdf.Dictionary) or (kid.is_indirect and kid.objgen in seen):
                continue
            if kid.is_indirect:
                seen.add(kid.objgen)
            title = kid.get("/T")
            name = ".".join(p for p in (parent, str(title) if title is not None else "") if p)
            kind = kid.get("/FT", ft)
            if kind == "/Sig" and "/V" in kid:
                found.append(_SignatureField(name or "(unnamed)", kid.get("/V")))
            walk(kid.get("/Kids"), name, kind, depth + 1)

    if isinstance(form, pikepdf.Dictionary):
        walk(form.get("/Fields"), "", None, 0)
    return found


def _certification(pdf: pikepdf.Pdf) -> tuple[int, int] | None:
    perms = pdf.Root.get("/Perms")
    docmdp = perms.get("/DocMDP") if isinstance(perms, pikepdf.Dictionary) else None
    return docmdp.objgen if isinstance(docmdp, pikepdf.Object) and docmdp.is_indirect else None


def _docmdp_level(sig: PdfDict) -> int | str | None:
    """P of the DocMDP transform in /Reference; a string says what is wrong; None if there is none."""
    references = sig.get("Reference")
    if not isinstance(references, list):
        return None
    for ref in references:
        if isinstance(ref, PdfDict) and ref.get("TransformMethod") == "DocMDP":
            params = ref.get("TransformParams")
            p = params.get("P", 2) if isinstance(params, PdfDict) else 2
            if not isinstance(p, int) or isinstance(p, bool) or p not in (1, 2, 3):
                return f"DocMDP /P {p!r} is not 1, 2 or 3"
            return p
    return None


# ---- one signature ----------------------------------------------------------------------------
@dataclass
class _Examination:
    data: bytes
    revisions: tuple[Revision, ...]
    history: History
    certification: tuple[int, int] | None
    docmdp: tuple[int, int] | None = None     # (level, revision of the certification)

    def level_for(self, revision: int) -> int | None:
        """The DocMDP level that governs an update creating ``revision``."""
        if self.docmdp is not None and revision > self.docmdp[1]:
            return self.docmdp[0]
        return None

    def diffs_after(self, revision: int) -> list[RevisionDiff]:
        """Each later revision against the one before it, under the DocMDP level in force."""
        return [self.history.diff(n, self.level_for(n)) for n in range(revision + 1, len(self.revisions) + 1)]


def _format(sig: PdfDict, data: bytes, contents_span: tuple[int, int] | None
            ) -> tuple[str, list[str], SignedDataInfo | None]:
    """(format, problems, the SignedData) of a raw signature dictionary."""
    problems: list[str] = []
    if sig.duplicates:
        problems.append(f"key(s) {', '.join('/' + k for k in sig.duplicates)} written twice (readers "
                        "disagree on which counts)")
    kind = _name(sig.get("Type"))
    if "Type" in sig and kind != "Sig":
        problems.append(f"/Type is {sig.get('Type')!r}, not /Sig")
    filter_name, subfilter = _name(sig.get("Filter")), _name(sig.get("SubFilter"))
    if filter_name not in FILTERS:
        problems.append(f"/Filter {filter_name or sig.get('Filter')!r} is not a known signature handler "
                        f"({', '.join(sorted(FILTERS))})")
    fmt = SUBFILTERS.get(subfilter or "", UNKNOWN)
    if fmt == UNKNOWN:
        why = _REFUSED_SUBFILTERS.get(subfilter or "", "unknown")
        problems.append(f"/SubFilter {subfilter or sig.get('SubFilter')!r}: {why}; accepted are "
                        f"{', '.join(SUBFILTERS)}")
    contents = sig.get("Contents")
    if not isinstance(contents, PdfString) or not contents.hex or contents_span is None:
        what = ("missing" if "Contents" not in sig else "null" if contents is None
                else "a literal string" if isinstance(contents, PdfString) else type(contents).__name__)
        problems.append(f"/Contents is {what}, not a hex string")
        return fmt, problems, None
    raw = data[contents_span[0]:contents_span[1]]
    if not _HEX_DIGITS.fullmatch(raw) or len(raw) % 2:
        problems.append("/Contents holds characters other than an even number of hex digits")
        return fmt, problems, None
    if not contents.strip(b"\x00"):
        problems.append("/Contents is empty (zeros only): nothing was signed")
        return fmt, problems, None
    try:
        info = read_signed_data(bytes(contents), allow_zero_padding=True)
    except CmsFormatError as exc:
        problems.append(f"/Contents is not a CMS SignedData followed by zero padding: {exc}")
        return fmt, problems, None
    if not info.detached:
        problems.append("the SignedData encapsulates content: a PDF signature's must be detached")
    return fmt, problems, info


def _byte_range(sig: PdfDict, contents_span: tuple[int, int] | None, ex: _Examination
                ) -> tuple[Check, tuple[int, int, int] | None, Revision | None]:
    """The byte-range check, the ranges if they are usable for hashing, and the revision covered."""
    name, size = "byte-range", len(ex.data)
    br = sig.get("ByteRange")
    if not isinstance(br, list) or len(br) != 4 or not all(isinstance(v, int) and not isinstance(v, bool)
                                                           for v in br):
        return failed(name, f"/ByteRange is {'missing' if br is None else repr(br)[:80]}, not four integers",
                      FORMAT_FAILURE), None, None
    start, a, b, c = br
    if start != 0:
        return failed(name, f"/ByteRange starts at {start}, not 0", FORMAT_FAILURE), None, None
    if min(a, b, c) < 0 or not 0 < a < b:
        return failed(name, f"/ByteRange {br} has negative, empty or overlapping ranges", FORMAT_FAILURE), \
            None, None
    if b + c > size:
        return failed(name, f"/ByteRange {br} reaches {b + c}, past the end of the {size}-byte file",
                      FORMAT_FAILURE), None, None
    ranges = (a, b, c)
    if contents_span != (a, b):
        where = f"at [{contents_span[0]}, {contents_span[1]})" if contents_span else "not found"
        return failed(name, f"the gap [{a}, {b}) is not this dictionary's /Contents string ({where}): "
                            "the signed bytes are not the ones around this signature", FORMAT_FAILURE), \
            ranges, None
    revision = revision_ending_at(ex.revisions, b + c)
    if revision is None:
        ends = ", ".join(str(r.end) for r in ex.revisions)
        return failed(name, f"the covered bytes end at {b + c}, which is not the end of a revision "
                            f"(revisions end at {ends})", FORMAT_FAILURE), ranges, None
    return passed(name, f"[0 {a} {b} {c}]: everything but /Contents, up to the end of revision "
                        f"{revision.number} of {len(ex.revisions)}"), ranges, revision


def _modifications(revision: Revision, ex: _Examination) -> Check:
    name, last = "modifications", len(ex.revisions)
    if revision.number == last:
        return passed(name, "the signature covers the file's last revision: nothing was changed after it")
    diffs = ex.diffs_after(revision.number)
    refused = [(d.revision, r) for d in diffs for r in d.refused()]
    if refused:
        shown = "; ".join(f"revision {n}: {r}" for n, r in refused[:8])
        more = f" (and {len(refused) - 8} more)" if len(refused) > 8 else ""
        return failed(name, f"changed after signing and not permitted: {shown}{more}", NOT_COVERED)
    done = "; ".join(f"revision {d.revision}: {d.summary()}" for d in diffs)
    return passed(name, f"{len(diffs)} later revision(s), each permitted: {done}")


def _examine_signature(field: _SignatureField, ex: _Examination) -> PdfSignatureEvidence:
    value = field.value
    if not isinstance(value, pikepdf.Dictionary) or not value.is_indirect:
        return PdfSignatureEvidence(field.name, UNKNOWN, (failed(
            "format", "the signature value (/V) is not an indirect signature dictionary", FORMAT_FAILURE),))
    try:
        _, raw = object_as_of(ex.data, ex.revisions, Ref(*value.objgen), len(ex.revisions))
    except PdfFormatError as exc:
        return PdfSignatureEvidence(field.name, UNKNOWN, (failed(
            "format", f"the signature dictionary cannot be read where the xref puts it: {exc}",
            FORMAT_FAILURE),))
    sig = raw.value
    if not isinstance(sig, PdfDict):
        return PdfSignatureEvidence(field.name, UNKNOWN, (failed(
            "format", f"object {raw.number} {raw.generation} is not a dictionary", FORMAT_FAILURE),))
    span = sig.spans.get("Contents")
    fmt, problems, info = _format(sig, ex.data, span)
    level = _docmdp_level(sig)
    is_certification = ex.certification == value.objgen
    if isinstance(level, str):
        problems.append(level)
    elif is_certification and level is None:
        problems.append("/Perms /DocMDP names this signature, but it has no DocMDP /Reference")
    if isinstance(sig.get("Contents"), bytes) and value.get("/Contents") is not None and \
            bytes(value.get("/Contents")) != bytes(sig["Contents"]):
        problems.append("qpdf reads a different /Contents than the bytes at the object's offset")
    checks = [failed("format", "; ".join(problems), FORMAT_FAILURE) if problems else
              passed("format", f"/SubFilter {_name(sig.get('SubFilter'))}, object {raw.number} "
                               f"{raw.generation}, {len(info.certificates)} certificate(s); "
                               + "; ".join(info.layout))]
    range_check, ranges, revision = _byte_range(sig, span, ex)
    checks.append(range_check)
    extra: dict = {"reason": _text(sig.get("Reason")), "location": _text(sig.get("Location"))}
    if is_certification and isinstance(level, int):
        extra["docmdp"] = level
    if revision is not None:
        extra.update(revision=revision.number, covered_to=revision.end)
    if info is not None:
        extra.update(signer_certificate=info.signer_certificate, certificates=info.certificates,
                     signing_time=info.signer.signing_time or read_pdf_date(sig.get("M")))
        checks += _cms_checks(info, ranges, ex.data)
    else:
        extra["signing_time"] = read_pdf_date(sig.get("M"))
    if revision is not None:
        checks.append(_modifications(revision, ex))
    return PdfSignatureEvidence(field.name, fmt, tuple(checks), **extra)


def _cms_checks(info: SignedDataInfo, ranges: tuple[int, int, int] | None, data: bytes) -> list[Check]:
    if ranges is None:
        return [failed("data-hash", "not checked: the byte range is unusable", FORMAT_FAILURE)]
    a, b, c = ranges
    digest = SM3(memoryview(data)[:a])
    digest.update(memoryview(data)[b:b + c])
    result = verify_signed_data(info, digest=digest.digest())
    out = []
    for check in result.checks:
        if check.name == "format":
            continue
        if check.name == "message-digest":
            detail = ("messageDigest equals SM3 of the covered bytes" if check.ok else
                      f"messageDigest is not SM3 of the covered bytes [0, {a}) + [{b}, {b + c}): "
                      f"{check.detail}")
            check = Check("data-hash", check.ok, detail, check.subject, check.code)
        out.append(check)
    return out


# ---- the document -----------------------------------------------------------------------------
def _coverage(signatures: list[PdfSignatureEvidence], ex: _Examination) -> Check:
    name, last = "coverage", ex.revisions[-1]
    tail = ex.data[last.end:]
    if tail.strip(WHITESPACE):
        return failed(name, f"{len(tail)} byte(s) after the last %%EOF belong to no revision", NOT_COVERED)
    signed = [s.revision for s in signatures if s.revision]
    if not signed:
        return failed(name, "no signature's byte range ends at a revision: nothing is known to be signed",
                      NOT_COVERED)
    newest = max(signed)
    if newest == last.number:
        return passed(name, f"the last revision ({last.number}) is signed")
    diffs = ex.diffs_after(newest)
    refused = [f"revision {d.revision}: {r}" for d in diffs for r in d.refused()]
    if refused:
        return failed(name, f"revision(s) after the last signature (revision {newest}) change what no "
                            f"signature protects: {'; '.join(refused[:8])}", NOT_COVERED)
    return passed(name, f"revisions {newest + 1}–{last.number} after the last signature are permitted: "
                        + "; ".join(d.summary() for d in diffs))


def examine_pdf(data: bytes) -> PdfEvidence:
    """Examine every signature of a PDF; :class:`PdfFormatError` only if it is not a readable PDF."""
    revisions = read_revisions(data)
    data = bytes(data)
    tail = data[revisions[-1].end:]
    if _UNLINKED.search(tail):
        raise PdfFormatError(f"the {len(tail)} bytes after the last complete revision hold objects or "
                             "cross-reference data that no startxref reaches: the file is truncated, or was "
                             "appended to without an xref section")
    try:
        pdf = open_revision(data, revisions[-1])
    except pikepdf.PdfError as exc:
        raise PdfFormatError(f"the PDF cannot be read: {_BUFFER.sub('', str(exc))}") from exc
    with pdf:
        fields = _signature_fields(pdf)
        ex = _Examination(data, revisions, History(data, revisions), _certification(pdf))
        signatures = [_examine_signature(f, ex) for f in _ordered(fields, ex)]
    if not signatures:
        return PdfEvidence(revisions, ())
    signatures = _certification_first(signatures)
    return PdfEvidence(revisions, tuple(signatures), (_coverage(signatures, ex),))


def _certification_first(signatures: list[PdfSignatureEvidence]) -> list[PdfSignatureEvidence]:
    """A certification (DocMDP) signature must be the document's first (ISO 32000-1 §12.8.2.2)."""
    out = []
    for s in signatures:
        earlier = [o.field_name for o in signatures if o.revision and s.revision and o.revision < s.revision]
        if s.docmdp is not None and earlier:
            problem = failed("format", f"a certification signature must be the document's first; "
                                       f"{', '.join(earlier)} came before it", FORMAT_FAILURE)
            s = replace(s, checks=(problem, *s.checks))
        out.append(s)
    return out


def _ordered(fields: list[_SignatureField], ex: _Examination) -> list[_SignatureField]:
    """The certification first, so its DocMDP level is known when later signatures are judged."""
    if ex.certification is None:
        return fields
    for f in fields:
        if isinstance(f.value, pikepdf.Object) and f.value.is_indirect and f.value.objgen == ex.certification:
            _set_docmdp(f, ex)
    return fields


def _set_docmdp(f: _SignatureField, ex: _Examination) -> None:
    try:
        _, raw = object_as_of(ex.data, ex.revisions, Ref(*f.value.objgen), len(ex.revisions))
    except PdfFormatError:
        return
    if not isinstance(raw.value, PdfDict):
        return
    level = _docmdp_level(raw.value)
    br = raw.value.get("ByteRange")
    if isinstance(level, int) and isinstance(br, list) and len(br) == 4 and all(
            isinstance(v, int) and not isinstance(v, bool) for v in br):
        revision = revision_ending_at(ex.revisions, br[2] + br[3])
        if revision is not None:
            ex.docmdp = (level, revision.number)
