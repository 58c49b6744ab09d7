"""Layout's reused work: the per-template fixed items, the advance table and the one-line
fast path of wrapping give exactly the pages the plain per-licence computation gave."""

from __future__ import annotations

import copy
import pickle
import random
from datetime import date

import pytest

from keys_dev.domain import DEMO_DEPARTMENT_CODE, DEMO_DEPARTMENT_NAME
from licences.catalogue import Catalogue
from licences.identifiers import LicenceIdentifier
from licences.layout import NO_LINE_START, LayoutError, fit, render, wrap
from pages.fonts import MissingGlyphs, cjk_face
from pages.model import Text

CATALOGUE = Catalogue.load()
BUSINESS = CATALOGUE.get("11100000MB0000019L001")
QR = "https://verify.example.gov.cn/v/" + "Q7" * 60


def _render(t, data, serial=20240001):
    return render(t, data, identifier=LicenceIdentifier(t.code, DEMO_DEPARTMENT_CODE, serial),
                  qr_payload=QR, issue_date=date(2024, 5, 20), issuer_name=DEMO_DEPARTMENT_NAME)


def _reference_wrap(text: str, width: float, size: float) -> list[str]:
    """The line breaking as it was, one FontFace.advance per character: the reference."""
    face = cjk_face()
    lines: list[str] = []
    current: list[str] = []
    used = 0.0
    for ch in text:
        advance = face.advance(ch, size)
        if current and used + advance > width + 1e-9:
            carry: list[str] = []
            if ch in NO_LINE_START and len(current) > 1:
                carry = [current.pop()]
            lines.append("".join(current).rstrip())
            current = [c for c in carry if not c.isspace()]
            used = sum(face.advance(c, size) for c in current)
        if not current and ch.isspace():
            continue
        current.append(ch)
        used += advance
    if current:
        lines.append("".join(current).rstrip())
    return [line for line in lines if line]


def test_wrap_breaks_exactly_where_the_per_character_reference_does():
    rng = random.Random(5)
    alphabet = "国营业执照食品经营许可证有限公司ABCxyz019 　" + "".join(NO_LINE_START)
    for _ in range(600):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 90)))
        width = rng.choice((1.0, 3.7, 8.0, 20.0, 33.3, 60.0, 150.0, 400.0))
        size = rng.choice((4, 4.0, 3.72, 2.8, 5.5))
        assert wrap(text, width, size) == _reference_wrap(text, width, size), (text, width, size)


def test_one_line_fast_path_at_the_exact_width():
    face = cjk_face()
    text = "营业执照营业执照"
    exact = face.text_width(text, 4.0)
    assert wrap(text, exact, 4.0) == [text] == _reference_wrap(text, exact, 4.0)
    narrower = exact - 0.01
    assert wrap(text, narrower, 4.0) == _reference_wrap(text, narrower, 4.0)
    assert len(wrap(text, narrower, 4.0)) == 2


def test_advance_table_is_the_face_arithmetic_exactly():
    face = cjk_face()
    text = "统一社会信用代码 91110000MA01ABCD2X，经营范围（一般项目）：软件开发。"
    for size in (4, 4.0, 3.72, 2.604, 7.1):
        assert [u * size / face.units_per_em for u in face.unit_advances(text)] == \
            [face.advance(c, size) for c in text]


def test_advance_table_refuses_a_character_the_face_lacks_every_time():
    face = cjk_face()
    for _ in range(2):  # not remembered as anything
        with pytest.raises(MissingGlyphs):
            face.unit_advances("林\U0002A6D6")
    with pytest.raises(LayoutError, match=r"经营范围.*U\+2A6D6"):
        _render(BUSINESS, dict(BUSINESS.example, 经营范围="软件开发\U0002A6D6服务"))


def test_fit_takes_the_face_it_is_given():
    box = BUSINESS.template.fields[0]
    assert fit("国" * 5, box) == fit("国" * 5, box, cjk_face())


def test_fixed_items_are_shared_but_every_page_is_its_own():
    first = _render(BUSINESS, BUSINESS.example)
    other = _render(BUSINESS, dict(BUSINESS.example, 名称="另一家示例科技有限公司", 住所="示例路1号"), 7)
    again = _render(BUSINESS, BUSINESS.example)
    assert again == first  # nothing of the other licence stayed behind
    a, b = first.pages[0].items, other.pages[0].items
    assert a is not b and a != b
    assert a[0] is b[0]  # the frame, made once for the type
    labels = {i.text: i for i in a if isinstance(i, Text) and i.text == BUSINESS.template.fields[0].label}
    assert labels and all(any(j is i for j in b) for i in labels.values())


def test_a_field_left_out_prints_no_label_and_the_next_licence_still_does():
    box = next(f for f in BUSINESS.template.fields if f.field == "注册资本")
    assert box.default is None and box.label.strip()
    without = {k: v for k, v in BUSINESS.example.items() if k != box.field}  # render is not validate
    texts = [i.text for i in _render(BUSINESS, without).pages[0].items if isinstance(i, Text)]
    assert box.label not in texts
    texts = [i.text for i in _render(BUSINESS, BUSINESS.example).pages[0].items if isinstance(i, Text)]
    assert box.label in texts


def test_a_copied_or_pickled_template_renders_the_same():
    _render(BUSINESS, BUSINESS.example)  # its cache filled
    for template in (copy.deepcopy(BUSINESS.template), pickle.loads(pickle.dumps(BUSINESS.template))):
        assert template == BUSINESS.template
        assert template._fixed.heads == {}  # a face is no part of the copy
        t = copy.copy(BUSINESS)
        object.__setattr__(t, "template", template)
        assert _render(t, BUSINESS.example) == _render(BUSINESS, BUSINESS.example)
