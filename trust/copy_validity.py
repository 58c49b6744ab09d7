"""Whether a purpose-limited annotated copy (加注件) is still good — offline, from the document.

A copy the data-reuse service made (:mod:`licences.annotated_copy`) carries its annotation in its
metadata — purpose, client, creation time, expiry — as well as on its page: the PDF information
dictionary, or the OFD DocInfo's CustomDatas in OFD.xml. Its seal stays cryptographically good for
ever; what ends is the copy's use. So the engine adds one document-level check,
``annotated-copy-validity``, to every document that carries such metadata:

* passed, "annotated copy for <purpose>, valid until <expiry>", before the expiry;
* failed with TOTAL_FAILED / EXPIRED after it. EN 319 102-1 has EXPIRED only as a TOTAL-FAILED
  sub-indication, for a validity that ended, with certainty, before the time that matters; and
  that is what this is — the expiry is signed content and the time is the verifier's own, so no
  further evidence (the INDETERMINATE sub-indications' business: a missing proof of existence, a
  CRL to fetch) can ever make the copy good again. The signature's own report stays TOTAL_PASSED:
  a reader sees that the seal is authentic and the copy has run out;
* failed with NOT_COVERED when the annotation is not covered by a valid seal — a document that
  says it is a copy without a seal that vouches for it, or whose annotation was changed or added
  after sealing. Such an annotation never makes a document pass, and never fails it silently.

Covered means: in a PDF, the information dictionary of the revision that a signature whose
report is TOTAL_PASSED covers (``data[:b + c]`` of its /ByteRange), and the document as shown must
say the same; in an OFD, the CustomDatas of OFD.xml when OFD.xml is among the files the
References of a TOTAL_PASSED signature name (they match, or the signature would not pass). The
data-service seal covers OFD.xml: it is the package's first signature, and the first signature's
References name every file but Signatures.xml (:mod:`ofd.sealing`).

The register knows more (a grant withdrawn since: :mod:`verify_api.annotated_copies`); this
check is what a verifier without it can say.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from ca.verdict import EXPIRED, FORMAT_FAILURE, NOT_COVERED, TOTAL_PASSED, Check, failed, passed
from licences.annotated_copy import annotation_of
from licences.states import china_text
from licences.utc_text import iso_utc

from .report import SignatureReport

if TYPE_CHECKING:
    from ofd.verification import OfdEvidence
    from pdf.verification import PdfEvidence

CHECK = "annotated-copy-validity"
OFD_XML = "OFD.xml"


def judge_annotation(shown: Mapping[str, str], covered: Mapping[str, str] | None, at: datetime
                     ) -> Check | None:
    """The check for a document whose metadata as shown is ``shown`` and, as a valid seal covers
    it, ``covered`` (None: no valid seal covers the metadata). None for a document that carries
    no annotation at all."""
    shown, sealed = annotation_of(shown), annotation_of(covered) if covered is not None else {}
    if not shown and not sealed:
        return None
    if not sealed:
        return failed(CHECK, "the document says it is an annotated copy (加注件), but no valid seal covers "
                      "that annotation (added after sealing, or the seal does not verify): it is not "
                      "taken as an annotated copy", NOT_COVERED)
    if shown != sealed:
        return failed(CHECK, "the annotation the document shows was changed after sealing; the sealed one "
                      f"says: {_describe(sealed)}", NOT_COVERED)
    try:
        expires = datetime.fromisoformat(sealed.get("AnnotationExpires", "").replace("Z", "+00:00"))
        if expires.tzinfo is None:
            raise ValueError("no time zone")
    except ValueError:
        text = sealed.get("AnnotationExpires", "")[:40]
        return failed(CHECK, f"the sealed annotation's expiry {text!r} is not an ISO 8601 time with its "
                      "zone", FORMAT_FAILURE)
    purpose = sealed.get("AnnotationPurpose", "")
    until = f"{iso_utc(expires)} ({china_text(expires)} 北京时间)"
    if at < expires:
        return passed(CHECK, f"annotated copy for {purpose}, valid until {until}")
    return failed(CHECK, f"annotated copy for {purpose}, expired at {until}: no longer good for any use "
                  f"(checked at {iso_utc(at)}; the seal itself is as good as it was)", EXPIRED)


def _describe(annotation: Mapping[str, str]) -> str:
    return (f"for {annotation.get('AnnotationPurpose', '-')}, "
            f"valid until {annotation.get('AnnotationExpires', '-')}")


def pdf_copy_check(data: bytes, evidence: PdfEvidence, reports: Sequence[SignatureReport], at: datetime
                   ) -> Check | None:
    """:func:`judge_annotation` for a PDF: the information dictionary as shown (the last
    revision's) and as of the newest revision a TOTAL_PASSED signature covers."""
    import pikepdf

    from pdf.revisions import open_revision

    def info(revision_index: int | None) -> dict[str, str]:
        revision = evidence.revisions[-1 if revision_index is None else revision_index]
        with open_revision(data, revision) as pdf:
            return {str(k).lstrip("/"): str(v) for k, v in pdf.docinfo.items()
                    if isinstance(v, pikepdf.String)}

    try:
        shown = info(None)
        if not annotation_of(shown):
            return None  # the cheap answer for every document that is no copy
        valid = [e.revision for e, r in zip(evidence.signatures, reports, strict=True)
                 if r.indication == TOTAL_PASSED and 0 < e.revision <= len(evidence.revisions)]
        covered = info(max(valid) - 1) if valid else None
    except (pikepdf.PdfError, ValueError, IndexError) as exc:
        return failed(CHECK, f"the document's information dictionary cannot be read: {exc}", FORMAT_FAILURE)
    return judge_annotation(shown, covered, at)


def ofd_copy_check(evidence: OfdEvidence, reports: Sequence[SignatureReport], at: datetime) -> Check | None:
    """:func:`judge_annotation` for an OFD: the CustomDatas of its DocInfo (in OFD.xml), covered
    when a TOTAL_PASSED signature's References name OFD.xml."""
    shown: dict[str, str] = {}
    for body in evidence.ofd.bodies:
        if annotation_of(body.info.custom_data):
            shown = dict(body.info.custom_data)
            break
    if not shown:
        return None
    covers = any(r.indication == TOTAL_PASSED and OFD_XML in {p.lstrip("/") for p in e.covered}
                 for e, r in zip(evidence.signatures, reports, strict=True))
    return judge_annotation(shown, shown if covers else None, at)
