"""Seal pictures: the generated official look, and reading every picture type real seals carry."""

from __future__ import annotations

import io
import math
import struct
import zipfile
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from seals.errors import SealError
from seals.picture import (
    SEAL_RED,
    PictureFacts,
    SealImage,
    SealPictureError,
    SealShape,
    inspect_picture,
    picture_png,
    seal_image,
)
from seals.seal import read_seal
from seals.seal_signature import read_seal_signature
from support.paths import INTEROP

DEPARTMENT = "北京市海淀区市场监督管理局"
LONG_NAME = "中华人民共和国国家市场监督管理总局某某省某某市分局"     # 25 characters
DPI = 300


def _open(image: SealImage) -> Image.Image:
    picture = Image.open(io.BytesIO(image.png))
    assert picture.format == "PNG" and picture.mode == "RGBA"
    return picture


def _px(mm: float, dpi: int = DPI) -> int:
    return round(mm * dpi / 25.4)


def _is_ink(pixel: tuple[int, int, int, int]) -> bool:
    return pixel == (*SEAL_RED, 255)


def _ink_in(picture: Image.Image, box_mm: tuple[float, float, float, float], dpi: int = DPI) -> int:
    """How many pixels in the box (mm: left, top, right, bottom) carry any ink."""
    alpha = picture.getchannel("A").crop(tuple(_px(v, dpi) for v in box_mm))
    return alpha.width * alpha.height - alpha.histogram()[0]


def _ink_at_polar(picture: Image.Image, centre_mm: float, radius_mm: float, degrees_from_top: float) -> int:
    x = centre_mm + radius_mm * math.sin(math.radians(degrees_from_top))
    y = centre_mm - radius_mm * math.cos(math.radians(degrees_from_top))
    return picture.getpixel((_px(x), _px(y)))[3]


# --------------------------------------------------------------------------- generating


@pytest.mark.parametrize(("purpose", "diameter"), [("", 42), ("电子证照专用章", 40)])
def test_round_seal_face(purpose, diameter):
    image = seal_image(DEPARTMENT, purpose, code="1101080012345")
    picture = _open(image)
    assert (image.width_mm, image.height_mm, image.shape) == (diameter, diameter, SealShape.ROUND)
    assert picture.size == (_px(diameter), _px(diameter))        # 42 mm at 300 dpi = 496 px
    assert tuple(round(v) for v in picture.info["dpi"]) == (DPI, DPI)
    w, h = picture.size
    for corner in ((0, 0), (w - 1, 0), (0, h - 1), (w - 1, h - 1)):
        assert picture.getpixel(corner)[3] == 0
    assert _is_ink(picture.getpixel((w // 2, h // 2)))               # the star's centre
    r = diameter / 2
    ring_mid = 0.15 + 0.5                                          # half-way through the ~1 mm ring
    for degrees in (0, 90, 180, 270):
        x = r + (r - ring_mid) * math.sin(math.radians(degrees))
        y = r - (r - ring_mid) * math.cos(math.radians(degrees))
        assert _is_ink(picture.getpixel((_px(x), _px(y))))
    # the name on the upper arc: ink in a band between the ring and the star
    assert _ink_in(picture, (r - 8, 2.5, r + 8, 8)) > 2000


def test_round_background_is_transparent_outside_the_ring():
    picture = _open(seal_image(DEPARTMENT))
    w, _ = picture.size
    c = (w - 1) / 2
    outside = [picture.getpixel((x, y))[3] for y in range(0, w, 7) for x in range(0, w, 7)
               if math.hypot(x - c, y - c) > w / 2 + 1]
    assert outside and max(outside) == 0


def test_purpose_and_code_add_ink_where_they_belong():
    plain = _open(seal_image(DEPARTMENT, "合同专用章"))
    with_code = _open(seal_image(DEPARTMENT, "合同专用章", code="1101080012345"))
    official = _open(seal_image(DEPARTMENT))
    below_star = (13, 27, 27, 33)                                  # mm, on the 40 mm face
    assert _ink_in(plain, below_star) > 1000
    assert _ink_in(_open(seal_image(DEPARTMENT, "")), (14, 28.5, 28, 34.5)) == 0   # official: no purpose
    rim = (16.5, 36.2, 23.5, 38.2)                                  # bottom inner rim, inside the ring
    assert _ink_in(plain, rim) == 0
    assert _ink_in(with_code, rim) > 300
    assert official.size != plain.size                             # 42 mm official, 40 mm special


@pytest.mark.parametrize("name", ["某局", DEPARTMENT, LONG_NAME, LONG_NAME + "办公室一二三四五"])
def test_long_names_stay_on_the_upper_240_degrees(name):
    picture = _open(seal_image(name))
    r, name_radius = 21, 15.2
    assert _ink_at_polar(picture, r, name_radius, 0) or _ink_in(picture, (r - 3, 2.5, r + 3, 9)) > 0
    bottom = [_ink_at_polar(picture, r, radius, degrees)
              for radius in (13.5, 15.2, 17) for degrees in range(135, 226, 3)]
    assert max(bottom) == 0                                        # nothing below ±120°
    if len(name) >= 20:
        # a long name reaches far down both sides
        assert _ink_in(picture, (1.5, 21, 9, 30)) > 500 and _ink_in(picture, (33, 21, 40.5, 30)) > 500


def test_same_inputs_same_bytes():
    first = seal_image(DEPARTMENT, "电子证照专用章", code="1101080012345")
    assert seal_image(DEPARTMENT, "电子证照专用章", code="1101080012345") == first
    assert seal_image(DEPARTMENT + "局", "电子证照专用章", code="1101080012345").png != first.png
    assert seal_image(DEPARTMENT, "电子证照专用章", code="1101080012346").png != first.png


def test_oval_seal():
    image = seal_image("北京某某科技有限公司", "财务专用章", shape=SealShape.OVAL, code="1101080012345")
    picture = _open(image)
    assert (image.width_mm, image.height_mm, image.shape) == (45, 30, SealShape.OVAL)
    assert picture.size == (_px(45), _px(30))
    w, h = picture.size
    assert picture.getpixel((0, 0))[3] == 0 and picture.getpixel((w - 1, h - 1))[3] == 0
    assert _is_ink(picture.getpixel((_px(22.5), _px(0.65))))        # ring at the top
    assert _is_ink(picture.getpixel((_px(0.65), _px(15))))          # ring at the left end
    assert _ink_in(picture, (14, 15, 31, 20)) > 1000                # the purpose in the middle
    assert _ink_in(picture, (17, 2, 28, 7)) > 1000                  # the name on the upper arc


def test_oval_takes_a_25_character_name():
    picture = _open(seal_image(LONG_NAME, "财务专用章", shape=SealShape.OVAL))
    assert picture.size == (_px(45), _px(30))
    assert _ink_in(picture, (1.5, 12, 8, 20)) > 300 and _ink_in(picture, (37, 12, 43.5, 20)) > 300


@pytest.mark.parametrize("name", ["王", "王明", "王小明", "张三丰印", "欧阳娜娜印"])
def test_name_seal_is_a_square_filled_with_the_name(name):
    image = seal_image(name, shape=SealShape.RECTANGLE)
    picture = _open(image)
    assert (image.width_mm, image.height_mm) == (22, 22) and picture.size == (_px(22), _px(22))
    assert picture.getpixel((0, 0))[3] == 0
    assert _is_ink(picture.getpixel((_px(11), _px(0.65))))          # the border
    assert _is_ink(picture.getpixel((_px(0.65), _px(11))))
    # both columns hold ink (one column only for a single character)
    right, left = _ink_in(picture, (12, 3, 19, 19)), _ink_in(picture, (3, 3, 10, 19))
    assert right > 1000 and left > 1000


def test_name_seal_reads_right_to_left_top_to_bottom():
    # "一" carries far less ink than "三": where each lands tells the reading order.
    top_right, top_left = (11.5, 2.5, 19.5, 10.5), (2.5, 2.5, 10.5, 10.5)
    bottom_right = (11.5, 11.5, 19.5, 19.5)
    first_right = _open(seal_image("一三三三", shape=SealShape.RECTANGLE))
    assert _ink_in(first_right, top_right) < _ink_in(first_right, top_left) / 2
    second_right = _open(seal_image("三一三三", shape=SealShape.RECTANGLE))
    assert _ink_in(second_right, bottom_right) < _ink_in(second_right, top_right) / 2
    # three characters: the surname alone in the right column, full height
    surname_alone = _open(seal_image("一三三", shape=SealShape.RECTANGLE))
    right_column, left_column = (11.5, 2.5, 19.5, 19.5), (2.5, 2.5, 10.5, 19.5)
    assert _ink_in(surname_alone, right_column) < _ink_in(surname_alone, left_column) / 2


def test_bar_seal_with_purpose_or_long_name():
    image = seal_image(DEPARTMENT, "受理专用章", shape=SealShape.RECTANGLE)
    picture = _open(image)
    assert (image.width_mm, image.height_mm) == (50, 20) and picture.size == (_px(50), _px(20))
    assert _ink_in(picture, (3, 3, 47, 9.5)) > 2000 and _ink_in(picture, (3, 10.5, 47, 17)) > 2000
    assert _open(seal_image(LONG_NAME, shape=SealShape.RECTANGLE)).size == (_px(50), _px(20))


@pytest.mark.parametrize("dpi", [72, 300, 1200])
def test_other_resolutions(dpi):
    picture = _open(seal_image(DEPARTMENT, dpi=dpi))
    assert picture.size == (_px(42, dpi), _px(42, dpi))
    assert tuple(round(v) for v in picture.info["dpi"]) == (dpi, dpi)
    assert _is_ink(picture.getpixel((picture.width // 2, picture.height // 2)))


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"department": ""}, "department name"),
    ({"department": " \u3000\t"}, "department name"),
    ({"department": 42}, "must be text"),
    ({"department": "北京\U0001F600局"}, "no glyph"),
    ({"department": "北京\x00局"}, "control characters"),
    ({"department": "局" * 41}, "at most 40"),
    ({"department": DEPARTMENT, "purpose": "专" * 17}, "at most 16"),
    ({"department": DEPARTMENT, "shape": "triangle"}, "unknown seal shape"),
    ({"department": DEPARTMENT, "dpi": 10}, "dpi"),
    ({"department": DEPARTMENT, "dpi": 600.0}, "dpi"),
    ({"department": DEPARTMENT, "dpi": 5000}, "dpi"),
])
def test_bad_requests_get_a_specific_error(kwargs, message):
    with pytest.raises(SealPictureError, match=message):
        seal_image(**kwargs)


def test_error_belongs_to_the_seals_room():
    assert issubclass(SealPictureError, SealError)


# --------------------------------------------------------------------------- reading

SEALS = INTEROP / "seals"
SIGNED = INTEROP / "signed-ofd"

# where the picture is: (declared type, actual type, width px, height px) — read from the files
PICTURES = {
    "seals/ofdrw_SESealData_hebeigede_v4.der": ("GIF", "gif", 236, 236),
    "seals/ofdrw_UserV1.esl": ("PNG", "png", 400, 400),
    "seals/ofdrw_UserV4.esl": ("PNG", "png", 400, 400),
    "seals/ofdrw_UserV5.esl": ("PNG", "png", 400, 400),
    "seals/ofdrw_UserV5_ts.esl": ("PNG", "png", 400, 400),
    "seals/ofdrw_hist_UserV1_BER.esl": ("PNG", "png", 400, 400),
    "seals/ofdrw_hist_UserV4_BER.esl": ("PNG", "png", 400, 400),
    "seals/ofdrw_SignedValueV4.dat": ("PNG", "png", 400, 400),
    "seals/ofdrw_SignedValueV5.dat": ("PNG", "png", 400, 400),
    "easyofd_guizhou_vat_special_einvoice_2022_sesv4.ofd:0": ("ofd", "ofd", None, None),
    "ofdrw_1_zhejiang_vat_einvoice_2020_sesv4.ofd:0": ("ofd", "ofd", None, None),
    "ofdrw_v4signed_chongqing_test_einvoice_sesv4.ofd:0": ("ofd", "ofd", None, None),
    "ofdrw_SignScaleError_zhejiang_einvoice_platform_sesv4.ofd:0": ("ofd", "ofd", None, None),
    "ofdrw_SESV4SignDoc_ofdrw_sesv4.ofd:0": ("PNG", "png", 400, 400),
    "ofdrw_allprotected_ofdrw_sesv4.ofd:0": ("PNG", "png", 400, 400),
    "ofdrw_h_ofdrw_testseal_2sigs_sesv4.ofd:0": ("PNG", "png", 400, 400),
    "ofdrw_h_ofdrw_testseal_2sigs_sesv4.ofd:1": ("PNG", "png", 400, 400),
    "ofdrw_hist_anzhengtong_manual_seal_sesv4.ofd:0": ("bmp", "bmp", 236, 236),
    "ofdrw_hist_anzhengtong_manual_seal_sesv4.ofd:1": ("bmp", "bmp", 236, 236),
    "ofdrw_hist_kinggrid_auto_seal_sesv1.ofd:0": ("gif", "gif", 474, 472),
    "ofdrw_keyword_shandong_sesv4_rawrs_plus_gbt35275.ofd:1": ("PNG", "png", 500, 500),
    "ofdrw_n_dms360_sesv1_does_not_verify.ofd:0": ("PNG", "png", 125, 125),
    "ofdrw_zsbk_yunnan_2sigs_sesv4_modified_after_signing.ofd:0": ("png", "png", 1067, 1067),
    "ofdrw_zsbk_yunnan_2sigs_sesv4_modified_after_signing.ofd:1": ("png", "png", 1067, 1067),
}


def _picture(where: str):
    if where.startswith("seals/"):
        data = (INTEROP / where).read_bytes()
        seal = read_seal_signature(data).seal if where.endswith(".dat") else read_seal(data)
        return seal.picture
    name, index = where.rsplit(":", 1)
    with zipfile.ZipFile(SIGNED / name) as package:
        value = package.read(f"Doc_0/Signs/Sign_{index}/SignedValue.dat")
    return read_seal_signature(value).seal.picture


@pytest.fixture(scope="module")
def png_data() -> bytes:
    return seal_image(DEPARTMENT, dpi=240).png                      # 397 × 397 px


@pytest.fixture(scope="module")
def gif_data(png_data) -> bytes:
    out = io.BytesIO()
    Image.open(io.BytesIO(png_data)).convert("P").save(out, "GIF")
    return out.getvalue()


@pytest.mark.interop
@pytest.mark.parametrize("where", sorted(PICTURES))
def test_real_seal_pictures(interop_dir, where):
    declared, actual, width, height = PICTURES[where]
    picture = _picture(where)
    facts = inspect_picture(picture.type, picture.data)
    assert facts == PictureFacts(declared, actual, width, height, True)
    if actual == "ofd":
        with pytest.raises(SealPictureError, match="rendered by ofd/"):
            picture_png(picture.type, picture.data)
        return
    png = Image.open(io.BytesIO(picture_png(picture.type, picture.data)))
    assert (png.format, png.mode, png.size) == ("PNG", "RGBA", (width, height))


@pytest.mark.interop
def test_old_bmp_seal_keeps_its_white_background(interop_dir):
    picture = _picture("ofdrw_hist_anzhengtong_manual_seal_sesv4.ofd:0")
    png = Image.open(io.BytesIO(picture_png(picture.type, picture.data)))
    assert png.getpixel((0, 0)) == (255, 255, 255, 255)


@pytest.mark.interop
def test_dianju_gif_declared_as_bmp(interop_dir):
    gif = _picture("seals/ofdrw_SESealData_hebeigede_v4.der").data
    facts = inspect_picture("bmp", gif)
    assert facts == PictureFacts("bmp", "gif", 236, 236, False)
    assert Image.open(io.BytesIO(picture_png("bmp", gif))).size == (236, 236)


def _encoded(image: Image.Image, fmt: str) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt)
    return out.getvalue()


@pytest.mark.parametrize(("declared", "fmt", "mode", "actual"), [
    ("jpg", "JPEG", "RGB", "jpeg"), ("JPEG", "JPEG", "CMYK", "jpeg"), ("image/png", "PNG", "LA", "png"),
    (".PNG", "PNG", "I;16", "png"), ("BMP", "BMP", "1", "bmp"), ("gif", "GIF", "P", "gif"),
])
def test_declared_type_spellings_and_colour_modes(declared, fmt, mode, actual):
    data = _encoded(Image.new(mode, (12, 9)), fmt)
    assert inspect_picture(declared, data) == PictureFacts(declared, actual, 12, 9, True)
    png = Image.open(io.BytesIO(picture_png(declared, data)))
    assert (png.mode, png.size) == ("RGBA", (12, 9))


def test_a_wrong_label_is_reported_not_trusted():
    data = _encoded(Image.new("RGB", (5, 5), "red"), "PNG")
    assert inspect_picture("jpg", data) == PictureFacts("jpg", "png", 5, 5, False)


def test_unknown_bytes():
    assert inspect_picture("png", b"hello") == PictureFacts("png", "unknown", None, None, False)
    assert inspect_picture("png", b"").actual_type == "unknown"
    with pytest.raises(SealPictureError, match="not PNG, JPEG, GIF, BMP or OFD"):
        picture_png("png", b"hello")


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _png_claiming(width: int, height: int) -> bytes:
    header = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(b"\x00" * 64))
            + _chunk(b"IEND", b""))


def _flip_in_idat(data: bytes) -> bytes:
    at = data.index(b"IDAT") + 10
    return data[:at] + bytes([data[at] ^ 0xFF]) + data[at + 1:]


@pytest.mark.parametrize("damage", ["idat crc", "truncated png", "header wiped", "truncated gif", "bare BM",
                                    "bomb", "just over max_pixels"])
@pytest.mark.parametrize("reader", ["inspect", "png"])
def test_damaged_pictures_raise(damage, reader, png_data, gif_data):
    data, max_pixels = {
        "idat crc": (_flip_in_idat(png_data), 40_000_000),
        "truncated png": (png_data[: len(png_data) // 2], 40_000_000),
        "header wiped": (png_data[:8] + bytes(40) + png_data[48:], 40_000_000),
        "truncated gif": (gif_data[: len(gif_data) // 2], 40_000_000),
        "bare BM": (b"BM" + bytes(20), 40_000_000),
        "bomb": (_png_claiming(100_000, 100_000), 40_000_000),
        "just over max_pixels": (png_data, 397 * 397 - 1),
    }[damage]
    with pytest.raises(SealPictureError):
        if reader == "inspect" and max_pixels == 40_000_000:
            inspect_picture("png", data)
        else:
            picture_png("png", data, max_pixels=max_pixels)


def test_max_pixels_must_be_positive(png_data):
    with pytest.raises(SealPictureError, match="max_pixels"):
        picture_png("png", png_data, max_pixels=0)


@settings(max_examples=150, deadline=None)
@given(magic=st.sampled_from([b"\x89PNG\r\n\x1a\n", b"GIF89a", b"GIF87a", b"BM", b"\xff\xd8\xff", b""]),
       tail=st.binary(max_size=300))
def test_arbitrary_bytes_never_escape_as_another_error(magic, tail):
    data = magic + tail
    for read in (inspect_picture, picture_png):
        try:
            read("png", data)
        except SealPictureError:
            pass
