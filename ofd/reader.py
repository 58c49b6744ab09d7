"""Open any producer's OFD: OFD.xml → DocBody → Document.xml → pages, templates, resources.

Strict where safety or meaning is at stake, lenient where producers merely differ:

* strict: the container (:class:`~ofd.package.Package`), the XML (:func:`~ofd.xml.parse`),
  OFD.xml with at least one DocBody and DocRoot, a Document with CommonData, a PhysicalBox
  and at least one page, and every page file present — each failure an
  :class:`~ofd.errors.OfdFormatError` naming the part;
* lenient: element order, namespace spelling, whitespace, paths relative to the referring
  file or to the package root, a template path in the wrong case (``TPLS/Tpl_0`` for
  ``Tpls/Tpl_0``), resource files and templates that are named but absent (the fptpl
  template names a Signatures.xml it lacks; ofdrw's h.ofd a PublicRes.xml). Those are listed
  in :attr:`Document.missing` instead of failing the whole document.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from lxml import etree

from .errors import OfdFormatError, PackageError
from .package import Package
from .text import page_lines
from .xml import attr, child, child_text, children, local_name, numbers, parse

OFD_XML = "OFD.xml"


@dataclass(frozen=True)
class DocInfo:
    """OFD.xml's DocInfo, strings as written (stripped); None when the element is absent."""

    doc_id: str | None
    title: str | None
    author: str | None
    creator: str | None
    creator_version: str | None
    creation_date: str | None
    modification_date: str | None
    custom_data: Mapping[str, str]


@dataclass(frozen=True)
class PageEntry:
    id: str | None
    base_loc: str        # as written in Document.xml
    path: str            # resolved, present in the package


@dataclass(frozen=True)
class FontInfo:
    name: str | None
    family: str | None
    path: str | None     # the embedded font file, resolved (it may be missing: see Document.missing)


@dataclass(frozen=True)
class Document:
    path: str
    physical_box: tuple[float, float, float, float]          # mm
    pages: tuple[PageEntry, ...]
    templates: Mapping[str, str]                              # TemplatePage ID -> resolved path
    fonts: Mapping[str, FontInfo]                             # Font ID
    media: Mapping[str, str]                                  # MultiMedia ID -> resolved MediaFile
    max_unit_id: int | None
    missing: tuple[str, ...] = ()                             # named but absent parts, resolved


@dataclass(frozen=True)
class DocBody:
    doc_root: str              # resolved path of Document.xml
    signatures: str | None     # resolved path of Signatures.xml; may name an absent entry
    info: DocInfo
    document: Document


@dataclass(frozen=True)
class OfdFile:
    package: Package
    bodies: tuple[DocBody, ...]

    def page_text(self, doc_index: int, page_index: int) -> str:
        """The text of one page, template content included, lines joined with ``"\\n"``."""
        if not 0 <= doc_index < len(self.bodies):
            raise IndexError(f"document {doc_index} out of range: the package has {len(self.bodies)}")
        document = self.bodies[doc_index].document
        if not 0 <= page_index < len(document.pages):
            raise IndexError(f"page {page_index} out of range: {document.path} has {len(document.pages)}")
        return "\n".join(page_lines(self.package, document.pages[page_index].path, document.templates))

    def text(self) -> list[str]:
        """One string per page of the first document."""
        return [self.page_text(0, i) for i in range(len(self.bodies[0].document.pages))]


def read_ofd(data: bytes | Package) -> OfdFile:
    """Read an OFD package (bytes or an opened :class:`Package`)."""
    package = data if isinstance(data, Package) else Package.open(data)
    if OFD_XML not in package:
        raise OfdFormatError(f"no {OFD_XML} at the package root: not an OFD")
    root = parse(package.read(OFD_XML), OFD_XML)
    if local_name(root) != "OFD":
        raise OfdFormatError(f"{OFD_XML}: root element is {local_name(root)!r}, not OFD")
    bodies = children(root, "DocBody")
    if not bodies:
        raise OfdFormatError(f"{OFD_XML}: no DocBody")
    return OfdFile(package=package, bodies=tuple(_doc_body(package, body) for body in bodies))


def _doc_body(package: Package, body: etree._Element) -> DocBody:
    doc_root = child_text(body, "DocRoot")
    if not doc_root:
        raise OfdFormatError(f"{OFD_XML}: a DocBody has no DocRoot")
    try:
        doc_path = package.locate(doc_root, OFD_XML)
    except PackageError as exc:
        raise OfdFormatError(f"{OFD_XML}: DocRoot {doc_root!r} is not in the package ({exc})") from None
    signatures = child_text(body, "Signatures")
    listing = reference_path(package, signatures, OFD_XML) if signatures else None
    return DocBody(doc_root=doc_path, signatures=listing,
                   info=_doc_info(child(body, "DocInfo")), document=_document(package, doc_path))


def _doc_info(info: etree._Element | None) -> DocInfo:
    if info is None:
        return DocInfo(None, None, None, None, None, None, None, MappingProxyType({}))
    custom = child(info, "CustomDatas")
    data = {} if custom is None else {attr(c, "Name") or "": (c.text or "").strip()
                                      for c in children(custom, "CustomData")}
    return DocInfo(doc_id=child_text(info, "DocID"), title=child_text(info, "Title"),
                   author=child_text(info, "Author"), creator=child_text(info, "Creator"),
                   creator_version=child_text(info, "CreatorVersion"),
                   creation_date=child_text(info, "CreationDate"),
                   modification_date=child_text(info, "ModDate"),
                   custom_data=MappingProxyType(data))


def reference_path(package: Package, ref: str, base: str | None, *, fold_case: bool = False,
                   what: str = "reference") -> str:
    """Where ``ref`` points: the existing entry if there is one, else the resolved path (so
    a caller can report it missing). A path that climbs out of the package is an error."""
    try:
        return package.target(ref, base, fold_case=fold_case)
    except PackageError as exc:
        raise OfdFormatError(f"{base or 'package'}: bad {what} {ref!r}: {exc}") from None



def _document(package: Package, path: str) -> Document:
    root = parse(package.read(path), path)
    if local_name(root) != "Document":
        raise OfdFormatError(f"{path}: root element is {local_name(root)!r}, not Document")
    common = child(root, "CommonData")
    if common is None:
        raise OfdFormatError(f"{path}: no CommonData")
    area = child(common, "PageArea")
    box_text = child_text(area, "PhysicalBox") if area is not None else None
    if not box_text:
        raise OfdFormatError(f"{path}: no CommonData/PageArea/PhysicalBox")
    box = numbers(box_text, path, "PhysicalBox", 4)
    missing: list[str] = []

    pages = []
    pages_el = child(root, "Pages")
    for page in children(pages_el, "Page") if pages_el is not None else ():
        base_loc = attr(page, "BaseLoc")
        if not base_loc:
            raise OfdFormatError(f"{path}: page {attr(page, 'ID')!r} has no BaseLoc")
        try:
            page_path = package.locate(base_loc, path, fold_case=True)
        except PackageError as exc:
            raise OfdFormatError(f"{path}: page {attr(page, 'ID')!r} BaseLoc {base_loc!r} is not in the "
                                 f"package ({exc})") from None
        pages.append(PageEntry(id=attr(page, "ID"), base_loc=base_loc, path=page_path))
    if not pages:
        raise OfdFormatError(f"{path}: no pages")

    templates = {}
    for template in children(common, "TemplatePage"):
        tid, base_loc = attr(template, "ID"), attr(template, "BaseLoc")
        if not tid or not base_loc:
            raise OfdFormatError(f"{path}: a TemplatePage lacks its ID or BaseLoc")
        templates[tid] = reference_path(package, base_loc, path, fold_case=True)
        if templates[tid] not in package:
            missing.append(templates[tid])

    fonts: dict[str, FontInfo] = {}
    media: dict[str, str] = {}
    for res_ref in [*children(common, "PublicRes"), *children(common, "DocumentRes")]:
        if not (res_ref.text or "").strip():
            continue
        res_path = reference_path(package, res_ref.text, path, fold_case=True)
        if res_path not in package:
            missing.append(res_path)
            continue
        _resources(package, res_path, fonts, media, missing)

    max_unit = child_text(common, "MaxUnitID")
    try:
        max_unit_id = int(max_unit) if max_unit else None
    except ValueError:
        raise OfdFormatError(f"{path}: MaxUnitID {max_unit!r} is not an integer") from None
    return Document(path=path, physical_box=box, pages=tuple(pages), templates=MappingProxyType(templates),
                    fonts=MappingProxyType(fonts), media=MappingProxyType(media), max_unit_id=max_unit_id,
                    missing=tuple(dict.fromkeys(missing)))


def _resources(package: Package, path: str, fonts: dict[str, FontInfo], media: dict[str, str],
               missing: list[str]) -> None:
    """Fonts and media of one Res file. Their files are relative to the Res BaseLoc, itself
    relative to the Res file; the first definition of an ID wins."""
    root = parse(package.read(path), path)
    base_loc = attr(root, "BaseLoc")
    directory = path.rpartition("/")[0]
    if base_loc and base_loc.strip():
        # resolve() names files, so resolve a file inside the directory and drop it again
        inside = reference_path(package, base_loc.strip().rstrip("/") + "/_", path)
        directory = inside.rpartition("/")[0]
    anchor = f"{directory}/_" if directory else None

    def file_of(el: etree._Element, what: str) -> str | None:
        ref = child_text(el, what)
        if not ref:
            return None
        found = reference_path(package, ref, anchor, fold_case=True)
        if found not in package:
            missing.append(found)
        return found

    for group in children(root, "Fonts"):
        for font in children(group, "Font"):
            fid = attr(font, "ID")
            if fid and fid not in fonts:
                fonts[fid] = FontInfo(name=attr(font, "FontName"), family=attr(font, "FamilyName"),
                                      path=file_of(font, "FontFile"))
    for group in children(root, "MultiMedias"):
        for item in children(group, "MultiMedia"):
            mid = attr(item, "ID")
            location = file_of(item, "MediaFile")
            if mid and location and mid not in media:
                media[mid] = location
