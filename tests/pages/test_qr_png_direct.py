"""The QR PNG written directly (pages.qr) shows exactly the modules of the matrix, as a PNG
every decoder reads: Pillow decodes it pixel for pixel, at 8 pixels a module and at others."""

from __future__ import annotations

import io
import zlib

import pytest
from PIL import Image

from pages.qr import QUIET_ZONE, qr_matrix, qr_png

PAYLOAD = "HTTP://LOCALHOST:8081/V/" + "K7Q2" * 40


@pytest.mark.parametrize("pixels", [8, 16, 3])
def test_every_pixel_is_its_module(pixels):
    matrix = qr_matrix(PAYLOAD)
    image = Image.open(io.BytesIO(qr_png(PAYLOAD, pixels))).convert("L")
    assert image.size == (len(matrix) * pixels,) * 2
    data = image.tobytes()
    side = image.width
    for r, row in enumerate(matrix):
        for c, dark in enumerate(row):
            for dy, dx in ((0, 0), (pixels - 1, pixels - 1), (pixels // 2, 0)):
                assert data[(r * pixels + dy) * side + c * pixels + dx] == (0 if dark else 255), (r, c)
    assert not any(matrix[0]) and len(matrix) > 2 * QUIET_ZONE


def test_the_chunks_are_well_formed():
    data = qr_png(PAYLOAD)
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, kinds = 8, []
    while pos < len(data):
        size = int.from_bytes(data[pos:pos + 4], "big")
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + size]
        assert int.from_bytes(data[pos + 8 + size:pos + 12 + size], "big") == zlib.crc32(kind + body)
        kinds.append(kind)
        pos += 12 + size
    assert kinds == [b"IHDR", b"IDAT", b"IEND"] and pos == len(data)
