"""XML without surprises: the only way the ofd room parses a part.

An OFD part is data, never a program: no DTD (so no entity expansion — billion laughs — and
no external entities — XXE), no network, no processing instructions, bounded size and depth.
Refusal is loud: every problem is an :class:`~ofd.errors.OfdFormatError` naming the part,
and nothing is stripped silently.

Producers disagree on spelling, not on meaning: UTF-8 with or without a BOM, the ``ofd:``
prefix, a default namespace, or no namespace at all. The accessors below therefore match on
local names only, so the reader never depends on how a producer spelled the namespace.
"""

from __future__ import annotations

import re
from collections import Counter

from lxml import etree

from .errors import OfdFormatError

OFD_NS = "http://www.ofdspec.org/2016"

MAX_SIZE = 64 * 1024 * 1024
MAX_DEPTH = 64

_DOCTYPE = re.compile(rb"<!DOCTYPE", re.IGNORECASE)
_FIRST_ELEMENT = re.compile(rb"<[A-Za-z_:\x80-\xff]")


def _parser() -> etree.XMLParser:
    # One parser per call: lxml parsers must not be shared between threads.
    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, dtd_validation=False,
                           huge_tree=False, remove_blank_text=False, remove_comments=False, remove_pis=False)


def parse(data: bytes, part: str, *, max_size: int = MAX_SIZE, max_depth: int = MAX_DEPTH) -> etree._Element:
    """The root element of ``data``, the part named ``part`` (used in every error message)."""
    if len(data) > max_size:
        raise OfdFormatError(f"{part}: {len(data)} bytes of XML (limit {max_size})")
    doctype = _DOCTYPE.search(data)
    first = _FIRST_ELEMENT.search(data)
    if doctype and (first is None or doctype.start() < first.start()):
        raise OfdFormatError(f"{part}: a DOCTYPE/DTD is not allowed in OFD XML")
    try:
        root = etree.fromstring(data, _parser())
    except etree.XMLSyntaxError as exc:
        raise OfdFormatError(f"{part}: not well-formed XML: {exc}") from None
    except ValueError as exc:  # e.g. an unsupported encoding declaration
        raise OfdFormatError(f"{part}: unreadable XML: {exc}") from None
    if root is None:
        raise OfdFormatError(f"{part}: no root element")
    docinfo = root.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None or docinfo.externalDTD is not None:
        raise OfdFormatError(f"{part}: a DOCTYPE/DTD is not allowed in OFD XML")
    for sibling in (*root.itersiblings(preceding=True), *root.itersiblings()):
        if isinstance(sibling, etree._ProcessingInstruction):
            raise OfdFormatError(f"{part}: processing instruction <?{sibling.target}?> is not allowed")
    _check_body(root, part, max_depth)
    return root


def _check_body(root: etree._Element, part: str, max_depth: int) -> None:
    """Depth bound and node kinds, walked without recursion so depth cannot hurt us."""
    stack = [(root, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > max_depth:
            raise OfdFormatError(f"{part}: XML nested deeper than {max_depth} levels")
        if isinstance(node, etree._ProcessingInstruction):
            raise OfdFormatError(f"{part}: processing instruction <?{node.target}?> is not allowed")
        if isinstance(node, etree._Entity):
            raise OfdFormatError(f"{part}: entity reference {node.text} is not allowed")
        stack.extend((kid, depth + 1) for kid in node)


def local_name(el: etree._Element) -> str | None:
    """The element's name without namespace or prefix; None for comments and the like."""
    if not isinstance(el.tag, str):
        return None
    return etree.QName(el).localname


def children(el: etree._Element, name: str) -> list[etree._Element]:
    """Child elements called ``name`` (local name, any namespace), in document order."""
    return [kid for kid in el if local_name(kid) == name]


def child(el: etree._Element, name: str) -> etree._Element | None:
    """The first child element called ``name``, or None."""
    for kid in el:
        if local_name(kid) == name:
            return kid
    return None


def child_text(el: etree._Element, name: str) -> str | None:
    """The stripped text of the first child called ``name``; None if there is no such child,
    ``""`` if it is empty."""
    kid = child(el, name)
    if kid is None:
        return None
    return (kid.text or "").strip()


def attr(el: etree._Element, name: str) -> str | None:
    """Attribute ``name`` as written; OFD attributes are unqualified, but a prefixed spelling
    (``ofd:ID``) is found too."""
    value = el.get(name)
    if value is not None:
        return value
    for key, value in el.attrib.items():
        if key.startswith("{") and etree.QName(key).localname == name:
            return value
    return None


def duplicate_ids(*roots: etree._Element) -> list[str]:
    """``ID`` values used more than once across ``roots`` (one OFD document's parts share one
    ID space), in order of first use. Documents we issue must have none; the reader reports."""
    counts = Counter(value for root in roots for el in root.iter() if isinstance(el.tag, str)
                     if (value := attr(el, "ID")) is not None)
    return [value for value, n in counts.items() if n > 1]


def numbers(text: str, part: str, what: str, count: int | None = None) -> tuple[float, ...]:
    """An OFD number array (ST_Array, ST_Box, ST_Pos): numbers separated by spaces (some
    producers add commas). ``count`` demands exactly that many."""
    try:
        values = tuple(float(v) for v in text.replace(",", " ").split())
    except ValueError:
        raise OfdFormatError(f"{part}: {what} {text!r} is not a list of numbers") from None
    if count is not None and len(values) != count:
        raise OfdFormatError(f"{part}: {what} {text!r} should be {count} numbers")
    if any(v != v or v in (float("inf"), float("-inf")) for v in values):
        raise OfdFormatError(f"{part}: {what} {text!r} holds a non-finite number")
    return values
