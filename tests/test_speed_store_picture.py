"""The seal face's PNG is made small — it is copied into every document a seal stamps — without
changing a pixel: the same RGBA image, the same resolution, a quarter fewer bytes for a round seal."""

from __future__ import annotations

import io
import zlib

import pytest
from PIL import Image

from seals import picture_draw
from seals.picture import SEAL_RED, SealShape, seal_image
from seals.picture_draw import rgba_png

DEPARTMENT = "示例市市场监督管理局"


def _pillow_png(image: Image.Image, dpi: int) -> bytes:
    out = io.BytesIO()
    image.save(out, "PNG", dpi=(dpi, dpi))
    return out.getvalue()


@pytest.mark.parametrize(("purpose", "shape", "dpi"), [
    ("电子证照专用章", SealShape.ROUND, 600), ("", SealShape.ROUND, 300), ("财务专用章", SealShape.OVAL, 600),
    ("", SealShape.RECTANGLE, 600)])
def test_the_seal_face_is_written_pixel_for_pixel_as_drawn(purpose, shape, dpi, monkeypatch):
    drawn = []

    def keep(image, dpi):
        drawn.append(image.copy())
        return rgba_png(image, dpi)

    monkeypatch.setattr(picture_draw, "rgba_png", keep)
    name = DEPARTMENT if shape is not SealShape.RECTANGLE else "王小明"
    face = Image.open(io.BytesIO(seal_image(name, purpose, shape=shape, code="1101080012345", dpi=dpi).png))
    assert (face.format, face.mode) == ("PNG", "RGBA")
    assert tuple(round(v) for v in face.info["dpi"]) == (dpi, dpi)
    (image,) = drawn
    assert face.size == image.size and face.tobytes() == image.tobytes()  # lossless: ink and anti-aliasing
    assert [face.getchannel(band).getextrema() for band in "RGB"] == [(value, value) for value in SEAL_RED]
    assert face.getchannel("A").getextrema() == (0, 255)  # transparent background, solid ink


def test_a_round_seal_face_is_a_quarter_smaller_than_pillows_png():
    png = seal_image(DEPARTMENT, "电子证照专用章", code="1101080012345").png
    face = Image.open(io.BytesIO(png))
    face.load()
    assert len(png) < 0.8 * len(_pillow_png(face, 600))
    assert len(png) < 90_000  # what every OFD carries twice


def test_the_png_is_well_formed_chunk_by_chunk():
    image = Image.new("RGBA", (3, 2), (*SEAL_RED, 0))
    image.putpixel((1, 0), (*SEAL_RED, 128))
    image.putpixel((2, 1), (*SEAL_RED, 255))
    png = rgba_png(image, 600)
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    chunks, at = [], 8
    while at < len(png):
        length = int.from_bytes(png[at:at + 4], "big")
        kind, body = png[at + 4:at + 8], png[at + 8:at + 8 + length]
        assert int.from_bytes(png[at + 8 + length:at + 12 + length], "big") == zlib.crc32(kind + body)
        chunks.append((kind, body))
        at += 12 + length
    assert [kind for kind, _ in chunks] == [b"IHDR", b"pHYs", b"IDAT", b"IEND"]
    assert chunks[0][1] == (3).to_bytes(4, "big") + (2).to_bytes(4, "big") + bytes([8, 6, 0, 0, 0])
    assert chunks[1][1] == (23622).to_bytes(4, "big") * 2 + b"\x01"  # 600 dpi in pixels per metre
    rows = zlib.decompress(chunks[2][1])
    assert rows == b"".join(b"\x00" + image.tobytes()[y * 12:(y + 1) * 12] for y in range(2))  # unfiltered
    assert Image.open(io.BytesIO(png)).tobytes() == image.tobytes()


@pytest.mark.parametrize("mode", ["RGB", "L", "P", "LA"])
def test_only_an_rgba_face_is_written(mode):
    with pytest.raises(ValueError, match=f"RGBA, not {mode}"):
        rgba_png(Image.new(mode, (2, 2)), 600)
