"""PDF/A-2b conventions (ISO 19005-2, level B): what an archive validator looks for besides
embedded fonts, which :mod:`pdf.fonts` takes care of.

* An output intent (/S /GTS_PDFA1) carrying an sRGB ICC profile, so DeviceRGB and DeviceGray
  colours have a defined meaning. The profile is LittleCMS's built-in sRGB (through Pillow),
  generated at first use, never shipped in the repository. Its header is normalised: a fixed
  creation date (LittleCMS stamps the current time, which would make every PDF's bytes
  differ), and version 4.2, the ICC.1:2004-10 version PDF 1.7 and PDF/A-2 name; the tags it
  holds (mluc, para, sf32, XYZ, chrm) are all 4.2 types, and the profile ID stays zero
  ("not computed"), which the ICC format allows.
* An XMP packet (uncompressed, as validators read it) with pdfaid:part 2 and conformance B,
  and the same title, author, keywords, producer, creator tool and dates as /Info: PDF/A
  demands that the two agree, so both are made here from one :class:`Metadata`.
* Custom entries (a licence's number, its holder) go into /Info only: PDF/A-2 checks /Info
  entries that have an XMP twin, and custom XMP would need an extension schema. A custom name
  may not be one of the standard entries (it would overwrite the title or the dates) nor
  longer than the 127 bytes PDF/A-2 allows a name; no text may pass its 32,767-byte limit.
"""

from __future__ import annotations

import functools
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from xml.sax.saxutils import escape

from pages.model import PageModelError

from .errors import PdfError
from .incremental import Name, ObjectSink, Stream

__all__ = ["SRGB", "Metadata", "pdf_date", "pdfa_objects", "srgb_profile", "xmp_date"]

SRGB = "sRGB IEC61966-2.1"
_ICC_VERSION_4_2 = 0x04200000
_ICC_DATE = (2003, 1, 1, 0, 0, 0)  # IEC 61966-2-1 Amendment 1: a fixed date, for determinism
STANDARD_INFO = frozenset({"Title", "Author", "Subject", "Keywords", "Creator", "Producer", "CreationDate",
                           "ModDate", "Trapped"})
MAX_NAME_BYTES = 127     # ISO 19005-2 §6.1.13 implementation limits
MAX_STRING_BYTES = 32767


@functools.cache
def srgb_profile() -> bytes:
    """The sRGB ICC profile every document's output intent carries (the same bytes each call)."""
    from PIL import ImageCms

    data = bytearray(ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes())
    if data[36:40] != b"acsp" or data[12:20] != b"mntrRGB ":
        raise PdfError("LittleCMS did not produce an RGB display ICC profile")
    struct.pack_into(">I", data, 8, _ICC_VERSION_4_2)
    struct.pack_into(">6H", data, 24, *_ICC_DATE)
    data[84:100] = bytes(16)  # profile ID: not computed
    return bytes(data)


def _zone(when: datetime, between: str, after: str) -> str:
    offset = when.utcoffset()
    if offset is None:
        return ""
    minutes = round(offset.total_seconds() / 60)
    if minutes == 0:
        return "Z"
    hours, minutes = divmod(abs(minutes), 60)
    return f"{'+' if offset > timedelta(0) else '-'}{hours:02d}{between}{minutes:02d}{after}"


def pdf_date(when: datetime) -> str:
    """``D:YYYYMMDDHHmmSS+hh'mm'`` (ISO 32000 §7.9.4); no offset for a naive time."""
    return (f"D:{when.year:04d}{when.month:02d}{when.day:02d}"
            f"{when.hour:02d}{when.minute:02d}{when.second:02d}") + _zone(when, "'", "'")


def xmp_date(when: datetime) -> str:
    """The same instant as :func:`pdf_date` in XMP's form (ISO 8601)."""
    return (f"{when.year:04d}-{when.month:02d}-{when.day:02d}"
            f"T{when.hour:02d}:{when.minute:02d}:{when.second:02d}{_zone(when, ':', '')}")


@dataclass(frozen=True)
class Metadata:
    """What /Info and the XMP packet both say about a document."""

    document_id: str
    created: datetime
    producer: str
    title: str = ""
    author: str = ""
    creator: str = ""
    keywords: tuple[str, ...] = ()
    custom: Mapping[str, str] = field(default_factory=dict)

    @property
    def keyword_text(self) -> str:
        return ", ".join(self.keywords)

    def info(self) -> dict[str, object]:
        """The document information dictionary (/Info) as plain values (pdf.incremental's);
        PageModelError for a custom entry PDF/A cannot carry."""
        self._check()
        info: dict[str, object] = {}
        if self.title:
            info["Title"] = self.title
        if self.author:
            info["Author"] = self.author
        if self.keywords:
            info["Keywords"] = self.keyword_text
        if self.creator:
            info["Creator"] = self.creator
        info["Producer"] = self.producer
        info["CreationDate"] = info["ModDate"] = pdf_date(self.created)
        for name, value in self.custom.items():
            info["/" + name] = value  # the writer strips one slash: the name stays as given
        return info

    def _check(self) -> None:
        texts = {"Document.title": self.title, "Document.author": self.author,
                 "Document.creator": self.creator, "Document.keywords": self.keyword_text}
        for name, value in self.custom.items():
            if name in STANDARD_INFO:
                raise PageModelError(f"Document.custom name {name!r} is a standard PDF /Info entry; "
                                     "choose another name")
            if len(name.encode("utf-8")) > MAX_NAME_BYTES:
                raise PageModelError(f"Document.custom name {name[:20]!r}... is {len(name.encode())} bytes "
                                     f"in UTF-8; PDF/A allows names of at most {MAX_NAME_BYTES}")
            texts[f"Document.custom[{name!r}]"] = value
        for what, value in texts.items():
            size = 2 + len(value.encode("utf-16-be"))  # the worst case: UTF-16 with its BOM
            if size > MAX_STRING_BYTES:
                raise PageModelError(f"{what} takes {size:,} bytes as a PDF string; PDF/A allows at most "
                                     f"{MAX_STRING_BYTES:,}")

    def xmp(self) -> bytes:
        """The XMP packet, UTF-8."""
        date = xmp_date(self.created)
        lines = ['<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>',
                 '<x:xmpmeta xmlns:x="adobe:ns:meta/">',
                 '<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">',
                 '<rdf:Description rdf:about=""',
                 ' xmlns:dc="http://purl.org/dc/elements/1.1/"',
                 ' xmlns:xmp="http://ns.adobe.com/xap/1.0/"',
                 ' xmlns:pdf="http://ns.adobe.com/pdf/1.3/"',
                 ' xmlns:xmpMM="http://ns.adobe.com/xap/1.0/mm/"',
                 ' xmlns:pdfaid="http://www.aiim.org/pdfa/ns/id/">',
                 "<dc:format>application/pdf</dc:format>"]
        if self.title:
            lines.append(f'<dc:title><rdf:Alt><rdf:li xml:lang="x-default">{escape(self.title)}'
                         "</rdf:li></rdf:Alt></dc:title>")
        if self.author:
            lines.append(f"<dc:creator><rdf:Seq><rdf:li>{escape(self.author)}</rdf:li></rdf:Seq></dc:creator>")
        if self.keywords:
            items = "".join(f"<rdf:li>{escape(k)}</rdf:li>" for k in self.keywords)
            lines.append(f"<dc:subject><rdf:Bag>{items}</rdf:Bag></dc:subject>")
            lines.append(f"<pdf:Keywords>{escape(self.keyword_text)}</pdf:Keywords>")
        lines += [f"<xmp:CreateDate>{date}</xmp:CreateDate>",
                  f"<xmp:ModifyDate>{date}</xmp:ModifyDate>",
                  f"<xmp:MetadataDate>{date}</xmp:MetadataDate>"]
        if self.creator:
            lines.append(f"<xmp:CreatorTool>{escape(self.creator)}</xmp:CreatorTool>")
        lines += [f"<pdf:Producer>{escape(self.producer)}</pdf:Producer>",
                  f"<xmpMM:DocumentID>{escape(self.document_id)}</xmpMM:DocumentID>",
                  f"<xmpMM:InstanceID>{escape(self.document_id)}</xmpMM:InstanceID>",
                  "<pdfaid:part>2</pdfaid:part>",
                  "<pdfaid:conformance>B</pdfaid:conformance>",
                  "</rdf:Description>", "</rdf:RDF>", "</x:xmpmeta>", '<?xpacket end="w"?>']
        return "\n".join(lines).encode("utf-8")


def output_intent(objects: ObjectSink) -> dict[str, object]:
    """The PDF/A output intent: sRGB, with the ICC profile embedded (stored as it is)."""
    profile = objects.indirect(Stream({"N": 3}, srgb_profile()))
    return {"Type": Name("OutputIntent"), "S": Name("GTS_PDFA1"), "OutputConditionIdentifier": SRGB,
            "Info": SRGB, "RegistryName": "http://www.color.org", "DestOutputProfile": profile}


def pdfa_objects(objects: ObjectSink, metadata: Metadata) -> tuple[dict[str, object], object]:
    """The catalogue's /OutputIntents and /Metadata (the XMP packet, uncompressed, as
    validators read it) for ``metadata``, and the /Info dictionary the trailer names."""
    catalogue = {"OutputIntents": [objects.indirect(output_intent(objects))],
                 "Metadata": objects.indirect(Stream({"Type": Name("Metadata"), "Subtype": Name("XML")},
                                                     metadata.xmp()))}
    return catalogue, objects.indirect(metadata.info())
