"""The PDF benchmark script works (tiny durations); it asserts no speed, only that it measures
what it says: fresh licences, both variants, the parts, and its own section of RESULTS.md."""

from __future__ import annotations

import io
import random

import pikepdf

from bench import pdf_speed
from pages.model import QrCode, Text
from pdf.fonts import StandardCidFont
from pdf.writer import write_pdf


def test_licences_are_fresh_and_the_promised_size():
    batches = pdf_speed.Batches()
    first, second = batches.take(2)
    chars = [pdf_speed._chars(doc) for doc in (first, second)]
    assert set(chars[0]) != set(chars[1])
    assert pdf_speed._payload(first) != pdf_speed._payload(second)
    items = first.pages[0].items
    assert sum(isinstance(i, Text) for i in items) >= 25 and sum(isinstance(i, QrCode) for i in items) == 1
    assert len(set(chars[0])) >= 150


def test_measure_and_table(tmp_path, monkeypatch):
    result = pdf_speed.measure(0.01, batch=2)
    assert set(result["ms"]) == {"embedded", "not embedded", "font subset", "QR matrix", "fontTools.subset"}
    assert all(v > 0 for v in result["ms"].values())
    assert result["bytes"]["embedded"] > result["bytes"]["not embedded"]
    text = pdf_speed.table(result)
    assert "| embedded |" in text and "| not embedded |" in text and "× not embedded" in text
    assert "fontTools.subset" in text

    results = tmp_path / "RESULTS.md"
    results.write_text("# B\n\nintro\n<!-- sm2-speed:begin -->\nsm2\n<!-- sm2-speed:end -->\n")
    monkeypatch.setattr(pdf_speed, "RESULTS", results)
    pdf_speed.write_results("first")
    pdf_speed.write_results(text)
    written = results.read_text()
    assert written.count("## PDF writing") == 1 and "first" not in written and text in written
    assert written.startswith("# B\n\nintro\n<!-- sm2-speed:begin -->\nsm2\n")


def test_the_baseline_variant_embeds_nothing():
    doc = pdf_speed.licence(random.Random(1), 1)
    pdf = pikepdf.open(io.BytesIO(write_pdf(doc, font=StandardCidFont)))
    descriptor = pdf.pages[0].Resources.Font.F1.DescendantFonts[0].FontDescriptor
    assert "/FontFile2" not in descriptor
