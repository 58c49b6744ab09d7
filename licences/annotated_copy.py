"""The purpose-limited annotated copy (加注件) of a licence: the page, and what it says.

A department that may read a licence's whole data for a purpose (a grant of all fields, see
:mod:`licences.reuse`) may also ask for a copy of the licence as a document, to file with its
case. The copy must not be passed off as the licence itself, or used for another purpose, or
after its time. So it is a *new* document, made from the licence's current version:

* the licence's own page exactly as issuance laid it out (:func:`licences.layout.render` with
  the version's data, identifier, issue date, issuer and the QR code printed on it — the very
  payload the issuer signed, which the register keeps with the licence row
  (``LicenceRecord.qr_payload``, recorded at issuance), since nobody but the issuer can sign
  another; :func:`check_payload` makes sure it is that version's own);
* below it, on the same page made taller, the annotation (加注): a red-bordered band saying
  加注件 / 用证单位 / 用证事由 / 加注时间 / 有效期至 / 加注编号 (Chinese, with English), and room
  for the data service's seal, which the caller (:mod:`trust.data_seal`) stamps there;
* across the licence, repeated row after row, the watermark ``仅供{purpose}使用 · 有效期至{date}``
  in a tint that survives greyscale printing, kept clear of the QR code so the code still scans;
  and 加注件 in red beside the QR code, so a copy cropped to the licence still says what it is;
* in the document's metadata (OFD CustomDatas, the PDF information dictionary) the annotation
  again, for machines: purpose, client, creation time, expiry, licence identifier, response id
  (:meth:`Annotation.metadata`; the validation engine reads it back, inside what the seal covers,
  to say offline whether the copy is still good: :mod:`trust.copy_validity`).

The copy expires after the days asked for, or earlier when the holder's grant or the licence
itself ends first (:func:`copy_expiry`): it must not outlive the holder's consent.

Nothing here signs: :data:`CopySealer` (given by the caller) writes and seals the document.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING

from pages.fonts import cjk_face
from pages.model import Color, Document, Item, Page, QrCode, Rect, Text

from .layout import LINE_HEIGHT, render, wrap
from .registry import LicenceRecord
from .states import china_text, expiry_instant
from .utc_text import iso_utc

if TYPE_CHECKING:
    from .catalogue import LicenceType

#: The formats a copy can be made in, and their media types.
MEDIA_TYPES = {"pdf": "application/pdf", "ofd": "application/ofd"}
MIN_VALID_DAYS, MAX_VALID_DAYS, DEFAULT_VALID_DAYS = 1, 90, 30
RED: Color = (200, 30, 30)
#: Dark enough to survive a greyscale print or scan (BT.601 luminance ~175 of 255, where the old
#: (246, 206, 206) was 218 and vanished), light enough that the licence stays readable under it.
WATERMARK: Color = (232, 152, 152)
COPY_LABEL = "加注件"  # printed beside the QR code too: a copy cropped to its licence still says so
SEAL_SIDE = 28.0  # mm: the data service's seal in the band (the picture is scaled to it)


class AnnotatedCopyError(RuntimeError):
    """A copy cannot be made of this licence (the QR code the register kept is not that
    version's, or a text cannot be set): the service's fault, never the request's — so not a
    ValueError, which callers answer as a bad request."""


class CopySealUnavailable(AnnotatedCopyError):
    """The data service has no usable seal to seal a copy with now (try again later)."""


@dataclass(frozen=True)
class CopyRequest:
    """What a department asks for: the format and how many days the copy is good for."""

    format: str
    valid_days: int = DEFAULT_VALID_DAYS

    @classmethod
    def checked(cls, value: object) -> CopyRequest:
        """The request from its JSON form; ValueError naming what is wrong."""
        if isinstance(value, CopyRequest):
            value = {"format": value.format, "valid_days": value.valid_days}
        if not isinstance(value, Mapping):
            raise ValueError('annotated_copy must be {"format": "pdf" | "ofd", "valid_days": 1..90}')
        unknown = sorted(set(value) - {"format", "valid_days"})
        if unknown:
            raise ValueError(f"annotated_copy has no field {unknown[0][:40]!r} (only format and valid_days)")
        fmt = value.get("format")
        if fmt not in MEDIA_TYPES:
            raise ValueError(f"annotated_copy.format must be pdf or ofd, not {str(fmt)[:20]!r}")
        days = value.get("valid_days", DEFAULT_VALID_DAYS)
        if isinstance(days, bool) or not isinstance(days, int) or \
                not MIN_VALID_DAYS <= days <= MAX_VALID_DAYS:
            raise ValueError(f"annotated_copy.valid_days must be a whole number of days from "
                             f"{MIN_VALID_DAYS} to {MAX_VALID_DAYS}, not {str(days)[:20]!r}")
        return cls(fmt, days)

    @property
    def media_type(self) -> str:
        return MEDIA_TYPES[self.format]


@dataclass(frozen=True)
class Annotation:
    """What the copy says about itself (on the page and in its metadata)."""

    purpose: str
    client_id: str
    client_name: str
    created: datetime
    expires: datetime
    response_id: str
    identifier: str
    #: What cut the copy's time short of the days asked for: ``"grant"`` (the holder's consent
    #: ends first), ``"licence"`` (the licence itself expires first) or None.
    capped_by: str | None = None

    @classmethod
    def for_request(cls, request: CopyRequest, *, purpose: str, client_id: str, client_name: str,
                    now: datetime, response_id: str, identifier: str,
                    grant_until: datetime | None = None, licence_until: date | None = None) -> Annotation:
        """The annotation of a copy made ``now``: it expires ``request.valid_days`` later, or
        when the holder's grant ends (``grant_until``) or the licence's last valid day
        (``licence_until``, inclusive, China time) is over, whichever is first — a copy must
        not outlive the holder's consent nor the licence it copies."""
        now = now.astimezone(UTC).replace(microsecond=0)
        expires, capped_by = copy_expiry(now, request.valid_days, grant_until, licence_until)
        return cls(purpose, client_id, client_name, now, expires, response_id, identifier, capped_by)

    def metadata(self) -> dict[str, str]:
        """The document metadata entries (OFD CustomData names, PDF /Info keys): exactly
        :data:`METADATA_NAMES`, which :func:`annotation_of` reads back."""
        return {"AnnotatedCopy": "加注件", "AnnotationPurpose": self.purpose,
                "AnnotationClientId": self.client_id, "AnnotationClientName": self.client_name,
                "AnnotationCreated": iso_utc(self.created), "AnnotationExpires": iso_utc(self.expires),
                "AnnotationResponseId": self.response_id, "AnnotatedLicence": self.identifier}


#: The names of a copy's annotation in its metadata (see :meth:`Annotation.metadata`).
METADATA_NAMES = ("AnnotatedCopy", "AnnotationPurpose", "AnnotationClientId", "AnnotationClientName",
                  "AnnotationCreated", "AnnotationExpires", "AnnotationResponseId", "AnnotatedLicence")


def annotation_of(metadata: Mapping[str, str]) -> dict[str, str]:
    """The annotation entries among a document's metadata (``{}`` when it carries none: not a
    copy). Only the names :meth:`Annotation.metadata` writes; values as text."""
    return {name: str(metadata[name]) for name in METADATA_NAMES if name in metadata}


@dataclass(frozen=True)
class SealBox:
    """Where the data service's seal goes on the copy: page index and box in mm (top-left origin)."""

    page: int
    x: float
    y: float
    width: float
    height: float


#: Writes ``document`` in ``format`` ("pdf" | "ofd") and seals it at the box, at the time given.
CopySealer = Callable[[Document, str, SealBox, datetime], bytes]


def copy_expiry(now: datetime, valid_days: int, grant_until: datetime | None, licence_until: date | None
                ) -> tuple[datetime, str | None]:
    """The earliest of ``now + valid_days``, the grant's end and the licence's expiry instant
    (:func:`licences.states.expiry_instant`), in whole seconds rounded down (never past either
    end), and what set it: None (the days asked for), ``"grant"`` or ``"licence"``."""
    candidates: list[tuple[datetime, str | None]] = [(now + timedelta(days=valid_days), None)]
    if grant_until is not None:
        candidates.append((grant_until, "grant"))
    if licence_until is not None:
        candidates.append((expiry_instant(licence_until), "licence"))
    moment, capped_by = min(candidates, key=lambda c: c[0])  # ties: the first (days asked, grant)
    return moment.astimezone(UTC).replace(microsecond=0), capped_by


def unprintable(text: str) -> str:
    """The characters of ``text`` the document font cannot show ('' when it shows them all)."""
    return cjk_face().missing(text)


# ---- the licence's page, as issued -------------------------------------------------------------

def check_payload(payload: str, record: LicenceRecord) -> None:
    """The QR text stored with the row must be this version's own: its identifier, its nonce (what
    the public service looks the licence up by) and the hash of the data the copy prints."""
    from .qr_payload import QrPayloadError, decode_payload, licence_data_hash

    try:
        claims = decode_payload(payload).claims
    except QrPayloadError as exc:
        raise AnnotatedCopyError(f"the stored QR code text of the licence cannot be read: {exc}") from None
    if claims.identifier != record.identifier or (record.qr_nonce and claims.nonce.hex() != record.qr_nonce) \
            or claims.data_hash != licence_data_hash(record.data):
        raise AnnotatedCopyError(f"the stored QR code text of {record.identifier} is not that "
                                 "licence version's")


def licence_document(licence_type: LicenceType, record: LicenceRecord, qr_payload: str) -> Document:
    """The licence version's page model, exactly as issuance rendered it."""
    issued = record.licence_metadata
    return render(licence_type, record.data, identifier=record.identifier, qr_payload=qr_payload,
                  issue_date=date.fromisoformat(str(issued["issue_date"])),
                  issuer_name=str(issued["issuer_name"]))


# ---- the annotation ----------------------------------------------------------------------------

def annotated_document(licence_type: LicenceType, record: LicenceRecord, qr_payload: str,
                       annotation: Annotation) -> tuple[Document, SealBox]:
    """The copy's page model and where its seal goes: the licence page (see
    :func:`licence_document`) made taller by the annotation band, the watermark under it all."""
    check_payload(qr_payload, record)
    licence = licence_document(licence_type, record, qr_payload)
    page = licence.pages[0]
    margin = licence_type.template.frame.inset
    band, band_height, seal = _band(page.width_mm, page.height_mm, margin, annotation)
    qr = next(i for i in page.items if isinstance(i, QrCode))
    label = _copy_label(qr)
    marks = _watermark(page.width_mm, page.height_mm, margin, qr, annotation, keep_clear=label.x)
    taller = Page(page.width_mm, page.height_mm + band_height + margin, (*marks, label, *page.items, *band))
    custom = {**licence.custom, **annotation.metadata()}
    document = dataclasses.replace(
        licence, pages=(taller,), title=f"{licence_type.name} 加注件 {record.identifier}",
        keywords=(*licence.keywords, "加注件"), custom=custom, created=annotation.created)
    return document, seal


def _rows(annotation: Annotation) -> list[tuple[str, str]]:
    return [("用证单位 Department", annotation.client_name),
            ("用证事由 Purpose", annotation.purpose),
            ("加注时间 Annotated", f"{china_text(annotation.created)} (北京时间 CST)"),
            ("有效期至 Valid until", f"{china_text(annotation.expires)} (北京时间 CST)"),
            ("加注编号 Copy No.", annotation.response_id)]


def _band(width: float, top: float, margin: float, annotation: Annotation
          ) -> tuple[list[Item], float, SealBox]:
    """The red-bordered annotation band below the licence (starting at ``top``): its items, its
    height (with the gap above it) and the seal's box in it."""
    face = cjk_face()
    size = 3.0 if width >= 150 else 2.2
    pad, gap = 3.0, 1.0  # the gap keeps the band's stroke off the licence's page
    start, top = top, top + gap
    seal_side = min(SEAL_SIDE, (width - 2 * margin) * 0.28)
    x = margin + pad
    label_width = max(face.text_width(label, size) for label, _ in _rows(annotation)) + 2 * size
    value_width = width - 2 * margin - 3 * pad - seal_side - label_width
    step = size * LINE_HEIGHT
    y = top + pad + size * 1.4
    items: list[Item] = [Text(x, y, "加注件 · ANNOTATED COPY", size * 1.4, color=RED, bold=True)]
    y += step * 1.2
    for label, value in _rows(annotation):
        lines = wrap(value, value_width, size) or ["-"]
        items.append(Text(x, y, label, size, color=RED))
        for line in lines:
            items.append(Text(x + label_width, y, line, size, max_width=value_width))
            y += step
    note = ("本加注件仅供上述用证单位在有效期内用于上述事由，逾期或他用无效；"
            "原证照真伪与状态请扫描二维码核验。"
            " For the purpose above only, until the date above.")
    for line in wrap(note, width - 2 * margin - 3 * pad - seal_side, size * 0.8):
        items.append(Text(x, y, line, size * 0.8, color=(90, 90, 90)))
        y += size * 0.8 * LINE_HEIGHT
    height = max(y - top + pad - size, seal_side + 2 * pad)
    items.insert(0, Rect(margin, top, width - 2 * margin, height, stroke=RED, line_width=0.8))
    seal = SealBox(0, width - margin - pad - seal_side, top + (height - seal_side) / 2, seal_side, seal_side)
    return items, top + height - start, seal


def watermark_text(annotation: Annotation) -> str:
    """The repeated line across the copy: what it may be used for and until when."""
    return f"仅供{annotation.purpose}使用 · 有效期至{china_text(annotation.expires)[:10]}"


def _copy_label(qr: QrCode) -> Text:
    """加注件 in red just left of the QR code, level with its middle: whoever crops the copy to
    the licence (cutting the band off) still shows it is a copy where the code is scanned. Its
    box stays outside the code's own box, so the quiet zone is untouched."""
    size = max(3.0, min(5.0, qr.size * 0.15))
    width = cjk_face().text_width(COPY_LABEL, size)
    return Text(qr.x - 1.5 - width, qr.y + qr.size / 2 + size * 0.35, COPY_LABEL, size, color=RED, bold=True)


def _watermark(width: float, height: float, margin: float, qr: QrCode, annotation: Annotation, *,
               keep_clear: float | None = None) -> list[Item]:
    """Rows of the watermark text over the licence, close enough that any strip of it shows one,
    inside its frame, never over the QR code (its quiet zone and 2 mm more kept clear, and to
    its left from ``keep_clear``, where the copy label is)."""
    face = cjk_face()
    size = 5.0 if width >= 150 else 3.0
    unit = watermark_text(annotation) + "　　"
    left, right = margin + 2, width - margin - 2
    clear = (min(qr.x, keep_clear if keep_clear is not None else qr.x) - 2, qr.y - 2,
             qr.x + qr.size + 2, qr.y + qr.size + 2)
    items: list[Item] = []
    row, y = 0, margin + 2 + size
    while y < height - margin - 2:
        spans = [(left, right)]
        if y + face.descent(size) > clear[1] and y - face.ascent(size) < clear[3]:
            spans = [(left, clear[0]), (clear[2], right)]
        for start, end in spans:
            text = _fill(unit, (row * 7) % len(unit), end - start, size)
            if text.strip():
                items.append(Text(start, y, text, size, color=WATERMARK))
        row, y = row + 1, y + size * 3
    return items


def _fill(unit: str, shift: int, room: float, size: float) -> str:
    """``unit`` repeated from its ``shift``-th character, as much as fits ``room`` mm."""
    face = cjk_face()
    out, used, index = [], 0.0, shift
    while True:
        ch = unit[index % len(unit)]
        advance = face.advance(ch, size)
        if used + advance > room:
            break
        out.append(ch)
        used += advance
        index += 1
    return "".join(out).strip()
