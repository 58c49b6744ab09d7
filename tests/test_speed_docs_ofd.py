"""Content.xml written as text (ofd.content) is what lxml serializes for its own tree, byte for
byte, whatever the text holds; its DeltaX still rounds on cumulative positions; and the OFD
reader reads every line back."""

from __future__ import annotations

import random

from lxml import etree

from ofd.content import XML_DECLARATION, IdSequence, delta_x, page_content
from ofd.reader import read_ofd
from ofd.writer import write_ofd
from pages.model import Document, Line, Page, QrCode, Rect, Text, set_text

MARKUP = "&<>\"'"
POOL = "".join(chr(c) for c in range(0x20, 0x7F)) + "（）《》、。，：；“”—…·￥" + "营业执照统一社会信用代码名称住所"


def random_page(rng: random.Random) -> Page:
    items = []
    for _ in range(rng.randint(0, 25)):
        kind = rng.randrange(4)
        if kind == 0:
            text = "".join(rng.choice(POOL + MARKUP * 3) for _ in range(rng.randint(1, 30)))
            if not text.strip():
                text = "x" + text
            items.append(Text(rng.uniform(60, 120), rng.uniform(20, 280), text, rng.choice([2.5, 3.7, 5]),
                              color=(rng.randrange(256), 0, 255), bold=rng.random() < 0.3,
                              align=rng.choice(["left", "center", "right"]), max_width=rng.choice([None, 45.5])))
        elif kind == 1:
            items.append(Line(rng.uniform(1, 200), rng.uniform(1, 290), rng.uniform(1, 200), rng.uniform(1, 290),
                              width=rng.choice([0.1, 0.333])))
        elif kind == 2:
            stroke = rng.choice([None, (0, 0, 0)])
            items.append(Rect(rng.uniform(1, 100), rng.uniform(1, 100), rng.uniform(1, 90), rng.uniform(1, 90),
                              stroke=stroke, fill=(1, 2, 3) if stroke is None else rng.choice([None, (9, 9, 9)])))
        else:
            items.append(QrCode(rng.uniform(1, 150), rng.uniform(1, 200), 30, f"HTTP://X/{rng.random()}"))
    return Page.a4(items)


def test_content_is_what_lxml_writes_for_its_tree():
    rng = random.Random(33190)
    for _ in range(150):
        page = random_page(rng)
        pictures = {item: 7 for item in page.items if isinstance(item, QrCode)}
        written = page_content(page, IdSequence(), font_id=3, pictures=pictures, own_area=rng.random() < 0.5)
        assert written.startswith(XML_DECLARATION)
        root = etree.fromstring(written)
        assert XML_DECLARATION + etree.tostring(root, encoding="UTF-8") == written
        texts = [code.text for code in root.iter("{*}TextCode")]
        assert texts == [item.text for item in page.items if isinstance(item, Text)]


def test_ids_follow_drawing_order_after_the_layer():
    page = Page.a4([Text(20, 30, "甲<乙>", 5), Line(1, 1, 9, 9), QrCode(50, 50, 20, "HTTP://X")])
    ids = IdSequence()
    ids.next()
    root = etree.fromstring(page_content(page, ids, font_id=1, pictures={page.items[2]: 9}, own_area=False))
    assert [el.get("ID") for el in root.iter() if el.get("ID")] == ["2", "3", "4", "5"]
    assert ids.last == 5 and root.find(".//{*}ImageObject").get("ResourceID") == "9"


def test_an_empty_page_has_an_empty_layer():
    written = page_content(Page.a4(), IdSequence(), font_id=None, pictures={}, own_area=True)
    root = etree.fromstring(written)
    assert [etree.QName(el).localname for el in root.iter()] == ["Page", "Area", "PhysicalBox", "Content", "Layer"]
    assert b'<ofd:Layer ID="1" Type="Body"/>' in written


def test_delta_x_rounds_on_cumulative_positions():
    rng = random.Random(5)
    for _ in range(200):
        advances = tuple(rng.uniform(0.5, 7) for _ in range(rng.randint(2, 60)))
        gaps = [float(gap) for gap in delta_x(advances).split()]
        assert len(gaps) == len(advances) - 1
        placed = 0.0
        for index, gap in enumerate(gaps, start=1):
            placed += gap
            assert abs(placed - round(sum(advances[:index]), 3)) < 1e-6
    assert delta_x((3.0,)) is None


def test_the_reader_reads_each_line_back_markup_and_all():
    lines = ["名称 A&B <有限> 公司", "\"引号\" 'single'", "住所：示例市 1 号"]
    page = Page.a4([Text(20, 30 + 10 * i, line, 5) for i, line in enumerate(lines)])
    ofd = read_ofd(write_ofd(Document((page,), doc_id="d1")))
    assert ofd.page_text(0, 0).split("\n") == lines
    assert set_text(page.items[0]).advances  # laid out as the writer did
