"""Write a page-model Document as an OFD package (GB/T 33190-2016), the way conforming
producers (ofdrw, Suwell, the tax bureau's) lay it out:

    OFD.xml                          DocBody: DocInfo, DocRoot
    Doc_0/Document.xml               CommonData (MaxUnitID, PageArea, PublicRes, DocumentRes), Pages
    Doc_0/PublicRes.xml              Fonts: the one embedded face (only when there is text)
    Doc_0/DocumentRes.xml            MultiMedias: images and QR codes (only when there are any)
    Doc_0/Pages/Page_N/Content.xml   one per page (see ofd.content)
    Doc_0/Res/font_1.ttf, image_N.*  the font subset and the pictures

The font is a subset holding exactly the characters the document uses, so the package is
small and every reader draws the same glyphs. Identical pictures are stored once. With
``doc_id`` and ``created`` fixed, the same Document always gives the same bytes: sealing
and the registry can rely on a document's digest.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from importlib import metadata

from pages.fonts import cjk_face
from pages.model import Document, Image, Item, PageModelError, QrCode, Text
from pages.qr import qr_png

from .content import IdSequence, element, numbers, page_content, serialize
from .package import Package, write_package

DOC = "Doc_0"
RES = "Res"
CHINA_STANDARD_TIME = timezone(timedelta(hours=8), "CST")
_EXTENSIONS = {"png": ("PNG", "png"), "jpeg": ("JPEG", "jpg")}


def _creator_version() -> str:
    try:
        return metadata.version("zhengyin")
    except metadata.PackageNotFoundError:
        return "0"


CREATOR_VERSION = _creator_version()


def write_ofd(document: Document) -> bytes:
    """The OFD package of ``document``; see :func:`ofd_entries`."""
    entries, created = ofd_entries(document)
    return write_package(entries, when=_zip_time(created))


def ofd_package(document: Document) -> Package:
    """The OFD package of ``document`` in memory, not archived: what the sealer reads when the
    document is sealed at once (issuing a licence), sparing an archive written and read back."""
    return Package.from_entries(ofd_entries(document)[0])


def ofd_entries(document: Document) -> tuple[dict[str, bytes], datetime]:
    """The files of ``document``'s OFD package, in archive order, and its creation time.

    A missing ``doc_id`` becomes a fresh uuid4 (32 hex digits); a missing ``created`` becomes
    now, and an aware one is read, in China Standard Time: OFD's CreationDate is a bare date,
    and a licence issued at 01:00 in Beijing must not carry the previous day.

    Raises PageModelError for text the font cannot show, FontNotFound when no CJK font is
    installed and FontError when it is unusable.
    """
    if not isinstance(document, Document):
        raise PageModelError(f"write_ofd needs a pages.model.Document, not {type(document).__name__}")
    created = _creation_time(document.created)
    ids = IdSequence()
    entries: dict[str, bytes] = {}

    chars = "".join(item.text for page in document.pages for item in page.items if isinstance(item, Text))
    font_id = ids.next() if chars else None
    media = _pictures(document)
    media_ids = {data: ids.next() for data in media}
    pictures = {item: media_ids[data] for data, items in media.items() for item in items}

    first = document.pages[0]
    page_ids, contents = [], []
    for page in document.pages:
        page_ids.append(ids.next())
        own_area = (page.width_mm, page.height_mm) != (first.width_mm, first.height_mm)
        contents.append(page_content(page, ids, font_id=font_id, pictures=pictures, own_area=own_area))

    entries["OFD.xml"] = _ofd_xml(document, created)
    entries[f"{DOC}/Document.xml"] = _document_xml(document, ids.last, page_ids, bool(chars), bool(media))
    files: dict[str, bytes] = {}
    if font_id is not None:
        face = cjk_face()
        files["font_1.ttf"] = face.subset(chars)
        entries[f"{DOC}/PublicRes.xml"] = _public_res(font_id, face.family_name, "font_1.ttf")
    if media:
        listing = []
        for index, (data, items) in enumerate(media.items(), start=1):
            label, extension = _EXTENSIONS[_format(items[0])]
            name = f"image_{index}.{extension}"
            files[name] = data
            listing.append((media_ids[data], label, name))
        entries[f"{DOC}/DocumentRes.xml"] = _document_res(listing)
    for index, content in enumerate(contents):
        entries[f"{DOC}/Pages/Page_{index}/Content.xml"] = content
    for name, data in files.items():
        entries[f"{DOC}/{RES}/{name}"] = data
    return entries, created


def _creation_time(created: datetime | None) -> datetime:
    """``created`` on Beijing's clock when it has a time zone; a naive time is taken as given."""
    if created is None:
        return datetime.now(CHINA_STANDARD_TIME)
    return created.astimezone(CHINA_STANDARD_TIME) if created.tzinfo is not None else created


def _format(item: Item) -> str:
    return "png" if isinstance(item, QrCode) else item.format


def _pictures(document: Document) -> dict[bytes, list[Item]]:
    """Each distinct picture's bytes and the items that show it, in order of first use."""
    media: dict[bytes, list[Item]] = {}
    qr_cache: dict[str, bytes] = {}
    for page in document.pages:
        for item in page.items:
            if isinstance(item, Image):
                media.setdefault(item.data, []).append(item)
            elif isinstance(item, QrCode):
                if item.payload not in qr_cache:
                    qr_cache[item.payload] = qr_png(item.payload)
                media.setdefault(qr_cache[item.payload], []).append(item)
    return media


def _zip_time(created: datetime) -> datetime | None:
    """The archive's entry time: the creation time as a wall clock (ZIP has no time zone)."""
    return created.replace(tzinfo=None) if 1980 <= created.year <= 2107 else None


def _ofd_xml(document: Document, created: datetime) -> bytes:
    root = element(None, "OFD", Version="1.0", DocType="OFD")
    body = element(root, "DocBody")
    info = element(body, "DocInfo")
    element(info, "DocID", document.resolved_id())
    if document.title:
        element(info, "Title", document.title)
    if document.author:
        element(info, "Author", document.author)
    element(info, "CreationDate", created.date().isoformat())
    if document.keywords:
        keywords = element(info, "Keywords")
        for keyword in document.keywords:
            element(keywords, "Keyword", keyword)
    if document.creator:
        element(info, "Creator", document.creator)
        element(info, "CreatorVersion", CREATOR_VERSION)
    if document.custom:
        datas = element(info, "CustomDatas")
        for name, value in document.custom.items():
            element(datas, "CustomData", value, Name=name)
    element(body, "DocRoot", f"{DOC}/Document.xml")
    return serialize(root)


def _document_xml(document: Document, max_id: int, page_ids: list[int], fonts: bool, media: bool) -> bytes:
    first = document.pages[0]
    root = element(None, "Document")
    common = element(root, "CommonData")
    element(common, "MaxUnitID", str(max_id))
    area = element(common, "PageArea")
    element(area, "PhysicalBox", numbers(0, 0, first.width_mm, first.height_mm))
    if fonts:
        element(common, "PublicRes", "PublicRes.xml")
    if media:
        element(common, "DocumentRes", "DocumentRes.xml")
    pages = element(root, "Pages")
    for index, page_id in enumerate(page_ids):
        element(pages, "Page", ID=str(page_id), BaseLoc=f"Pages/Page_{index}/Content.xml")
    return serialize(root)


def _public_res(font_id: int, family: str, file_name: str) -> bytes:
    root = element(None, "Res", BaseLoc=RES)
    fonts = element(root, "Fonts")
    font = element(fonts, "Font", ID=str(font_id), FontName=family, FamilyName=family)
    element(font, "FontFile", file_name)
    return serialize(root)


def _document_res(listing: list[tuple[int, str, str]]) -> bytes:
    root = element(None, "Res", BaseLoc=RES)
    medias = element(root, "MultiMedias")
    for media_id, label, file_name in listing:
        media = element(medias, "MultiMedia", ID=str(media_id), Type="Image", Format=label)
        element(media, "MediaFile", file_name)
    return serialize(root)
