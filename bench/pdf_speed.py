"""PDFs per second per core for a one-page licence, with the CJK font embedded as a subset
against the same page with a non-embedded font, measured in one run on one core.

Run: ``python -m bench.pdf_speed [--seconds S] [--write]``; ``--write`` replaces the table in
bench/RESULTS.md.

The page is a business licence: 25 text lines (labels and values, ~150 CJK characters, bold
title), frame lines and a QR code. Every document gets values of its own (holder, address,
scope and licence number drawn from GB 2312's 3,755 level-1 hanzi, a QR payload with its own
serial), so no cache helps: each PDF subsets a font and encodes a QR code of its own, as in
bulk issuance. The two variants take turns, a fresh batch each time, and the median is kept.

* ``embedded``: :func:`pdf.writer.write_pdf` as issued — Type0/CIDFontType2 with the subset
  as /FontFile2, /W and /ToUnicode, plus PDF/A output intent and XMP;
* ``not embedded``: the same writer with :class:`pdf.fonts.StandardCidFont` (STSong-Light,
  UniGB-UCS2-H, nothing embedded) — the floor a PDF with CJK text cannot go below;
* the parts: the font subset alone (``pages/fonts.py``), and the QR code's module matrix alone
  (``pages/qr.py``, the same in both variants);
* for comparison, what ``fontTools.subset`` takes for the same subset (load the face, subset,
  save), the way the issue first measured it: a few documents only, it is slow.
"""

from __future__ import annotations

import io
import logging
import platform
import random
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime

from bench.results import RESULTS, command_line, cpu_model, replace_section
from pages.fonts import cjk_face, cjk_font_path
from pages.model import Document, Line, Page, QrCode, Rect, Text
from pages.qr import qr_matrix
from pdf.fonts import StandardCidFont
from pdf.writer import write_pdf

BEGIN, END = "<!-- pdf-speed:begin -->", "<!-- pdf-speed:end -->"

HANZI = "".join(bytes([hi, lo]).decode("gb2312") for hi in range(0xB0, 0xD8) for lo in range(0xA1, 0xFF)
                if not (hi == 0xD7 and lo > 0xF9))

LABELS = ("名称", "统一社会信用代码", "类型", "法定代表人", "注册资本", "成立日期", "营业期限", "住所",
          "经营范围", "登记机关")


def licence(rng: random.Random, serial: int) -> Document:
    """A one-page business licence with values of its own."""

    def words(count: int) -> str:
        return "".join(rng.choice(HANZI) for _ in range(count))

    values = (f"{words(6)}有限公司", f"9111{serial:010d}X", "有限责任公司（自然人投资或控股）", words(3),
              f"{rng.randint(10, 9999)}万元人民币", "2026年05月20日", "长期",
              f"北京市{words(8)}路{serial % 999}号", words(30), f"{words(4)}市场监督管理局")
    items: list = [Text(105, 32, "营业执照", 12, bold=True, align="center"),
                   Text(105, 42, "（副本）", 5, align="center"),
                   Text(20, 52, f"证照编号：{serial:012d}", 3.5),
                   Line(20, 56, 190, 56, width=0.4), Rect(15, 15, 180, 267, line_width=0.8)]
    y = 70.0
    for label, value in zip(LABELS, values, strict=True):
        items.append(Text(58, y, label, 4.2, align="right", bold=True))
        if len(value) > 24:
            items.append(Text(64, y, value[:24], 4.2))
            items.append(Text(64, y + 7, value[24:], 4.2))
            y += 7
        else:
            items.append(Text(64, y, value, 4.2, max_width=120))
        y += 11
    items.append(Text(150, 255, "2026年05月20日", 4.2, align="center"))
    items.append(Text(30, 270, "国家企业信用信息公示系统网址：http://www.gsxt.gov.cn", 3))
    items.append(QrCode(30, 215, 30, f"https://verify.example.gov.cn/v/1.2.156.3005.2.{serial:016d}"))
    return Document((Page.a4(items),), title="营业执照", author="市场监督管理局",
                    doc_id=f"{serial:032x}", created=datetime(2026, 5, 20, 10, 30, tzinfo=UTC))


class Batches:
    """Fresh licences on demand: nothing repeats, so no cache is warm."""

    def __init__(self, seed: int = 20260520) -> None:
        self.rng = random.Random(seed)
        self.serial = 0

    def take(self, count: int) -> list[Document]:
        docs = []
        for _ in range(count):
            self.serial += 1
            docs.append(licence(self.rng, self.serial))
        return docs


def _ms_per(work: Callable[[Document], object], docs: list[Document]) -> float:
    start = time.perf_counter()
    for doc in docs:
        work(doc)
    return (time.perf_counter() - start) / len(docs) * 1000


def _chars(doc: Document) -> str:
    return "".join(i.text for p in doc.pages for i in p.items if isinstance(i, Text))


def _payload(doc: Document) -> str:
    return next(i.payload for p in doc.pages for i in p.items if isinstance(i, QrCode))


def _fonttools_subset(doc: Document) -> bytes:
    from fontTools import subset
    from fontTools.ttLib import TTFont

    logging.getLogger("fontTools.subset").setLevel(logging.ERROR)  # "BDF NOT subset; dropped"
    font = TTFont(cjk_font_path(), fontNumber=0, lazy=True)
    subsetter = subset.Subsetter(subset.Options())
    subsetter.populate(text=_chars(doc))
    subsetter.subset(font)
    out = io.BytesIO()
    font.save(out)
    return out.getvalue()


def measure(seconds: float, batch: int = 20) -> dict:
    """Median ms per PDF of each variant and part, taking turns for about ``seconds`` each."""
    batches = Batches()
    face = cjk_face()
    work: dict[str, Callable[[Document], object]] = {
        "embedded": write_pdf,
        "not embedded": lambda doc: write_pdf(doc, font=StandardCidFont),
        "font subset": lambda doc: face.subset(_chars(doc)),
        "QR matrix": lambda doc: qr_matrix(_payload(doc)),
    }
    for run in work.values():  # warm-up: imports, the parsed face, the ICC profile
        _ms_per(run, batches.take(2))
    times: dict[str, list[float]] = {name: [] for name in work}
    deadline = time.perf_counter() + seconds * len(work)
    while not times["embedded"] or time.perf_counter() < deadline:
        for name, run in work.items():
            times[name].append(_ms_per(run, batches.take(batch)))
    sample = batches.take(1)[0]
    reference = statistics.median(_ms_per(_fonttools_subset, [doc]) for doc in batches.take(3))
    return {"when": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), "cpu": cpu_model(),
            "python": platform.python_version(),
            "ms": {name: statistics.median(values) for name, values in times.items()}
            | {"fontTools.subset": reference},
            "rounds": len(times["embedded"]), "batch": batch,
            "chars": len(_chars(sample)), "distinct": len(set(_chars(sample))),
            "texts": sum(isinstance(i, Text) for i in sample.pages[0].items),
            "bytes": {"embedded": len(write_pdf(sample)),
                      "not embedded": len(write_pdf(sample, font=StandardCidFont))}}


def table(result: dict) -> str:
    ms = result["ms"]
    base = ms["not embedded"]
    lines = [f"Measured {result['when']} on {result['cpu']} (one core), Python {result['python']}: "
             f"{result['rounds']} rounds of {result['batch']} fresh licences per variant, median.",
             f"One A4 page: {result['texts']} text lines, {result['chars']} characters "
             f"({result['distinct']} distinct), frame, QR code.", "",
             "| variant | ms per PDF | PDFs/s per core | × not embedded | bytes |",
             "|---|---:|---:|---:|---:|"]
    for name in ("embedded", "not embedded"):
        lines.append(f"| {name} | {ms[name]:.2f} | {1000 / ms[name]:,.0f} | {ms[name] / base:.2f} | "
                     f"{result['bytes'][name]:,} |")
    for name in ("font subset", "QR matrix"):
        lines.append(f"| part: {name} | {ms[name]:.2f} | {1000 / ms[name]:,.0f} | {ms[name] / base:.2f} | |")
    slow = ms["fontTools.subset"]
    lines.append(f"| for comparison: fontTools.subset | {slow:.0f} | {1000 / slow:,.1f} | "
                 f"{slow / base:.1f} | |")
    lines += ["", f"Embedding costs {ms['embedded'] - base:.2f} ms per PDF "
              f"({ms['embedded'] / base:.2f}× the non-embedded page); the subset itself is "
              f"{slow / ms['font subset']:.0f}× faster than fontTools.subset's."]
    return "\n".join(lines)


def write_results(text: str) -> None:
    replace_section(RESULTS, BEGIN, END, text, "PDF writing (bench/pdf_speed.py)")


def main(argv: list[str] | None = None) -> None:
    command_line(__doc__.split("\n")[0], measure, table, write_results, argv, "time per variant")


if __name__ == "__main__":
    main()
