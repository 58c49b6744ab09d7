"""The text of an OFD page: every TextObject's TextCode, in document order.

Good enough to find a word on a page, not a layout engine. Producers cut lines differently —
Suwell writes one TextObject per field, KingGrid one per character — so runs are joined into
lines by position: a run that continues on the same baseline (within half an em) is appended,
with a space when there is a visible gap, and anything else starts a new line. Positions are
the TextObject's Boundary origin plus its CTM applied to the TextCode's X/Y, in millimetres.

Template pages come first for a Background (default) template and after the page content for
a Foreground one, as they are drawn.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from lxml import etree

from .errors import OfdFormatError
from .package import Package
from .xml import attr, child, children, local_name, numbers, parse


@dataclass(frozen=True)
class _Run:
    x: float
    y: float
    right: float       # where the TextObject's Boundary ends, for gap detection
    em: float          # font size in mm after the CTM
    text: str


def _runs(content: etree._Element, part: str) -> Iterator[_Run]:
    for obj in content.iter():
        if local_name(obj) != "TextObject":
            continue
        box = numbers(attr(obj, "Boundary") or "0 0 0 0", part, "Boundary", 4)
        a, b, c, d, e, f = numbers(attr(obj, "CTM") or "1 0 0 1 0 0", part, "CTM", 6)
        size = numbers(attr(obj, "Size") or "0", part, "Size", 1)[0] * math.sqrt(abs(a * d - b * c))
        x = y = 0.0
        for code in children(obj, "TextCode"):
            if attr(code, "X") is not None:
                x = numbers(attr(code, "X"), part, "TextCode X", 1)[0]
            if attr(code, "Y") is not None:
                y = numbers(attr(code, "Y"), part, "TextCode Y", 1)[0]
            if code.text:
                yield _Run(box[0] + a * x + c * y + e, box[1] + b * x + d * y + f, box[0] + box[2], size,
                           code.text)


def _lines(runs: Iterator[_Run]) -> list[str]:
    lines: list[str] = []
    last: _Run | None = None
    for run in runs:
        tolerance = max(0.5 * max(run.em, last.em if last else 0.0), 0.5)
        same_line = last is not None and abs(run.y - last.y) <= tolerance and run.x >= last.x
        if same_line:
            gap = run.x - last.right
            lines[-1] += (" " if gap > 0.25 * max(run.em, 0.5) else "") + run.text
        else:
            lines.append(run.text)
        last = run
    return lines


def _page_root(package: Package, path: str) -> etree._Element:
    root = parse(package.read(path), path)
    if local_name(root) != "Page":
        raise OfdFormatError(f"{path}: root element is {local_name(root)!r}, not Page")
    return root


def page_lines(package: Package, path: str, templates: Mapping[str, str]) -> list[str]:
    """The lines of text of the page at ``path``; ``templates`` maps TemplatePage IDs to their
    resolved paths (a template that is not in the package contributes nothing)."""
    page = _page_root(package, path)
    before: list[tuple[etree._Element, str]] = []
    after: list[tuple[etree._Element, str]] = []
    for ref in children(page, "Template"):
        template_path = templates.get(attr(ref, "TemplateID") or "")
        if template_path is None or template_path not in package:
            continue
        content = child(_page_root(package, template_path), "Content")
        if content is not None:
            (after if attr(ref, "ZOrder") == "Foreground" else before).append((content, template_path))
    own = child(page, "Content")
    layers = [*before, *([(own, path)] if own is not None else []), *after]
    return _lines(run for content, part in layers for run in _runs(content, part))
