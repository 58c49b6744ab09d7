"""The QR symbol built on integers (pages.qr_symbol) is the qrcode package's own: the same
penalty as ``qrcode.util.lost_point`` for any matrix, the same mask and every module the same
for payloads of every mode across the versions, and the PNG and the PDF stencil draw it."""

from __future__ import annotations

import io
import random

import pytest
import qrcode
from PIL import Image
from qrcode import util as qr_util
from qrcode.constants import ERROR_CORRECT_H, ERROR_CORRECT_L, ERROR_CORRECT_M, ERROR_CORRECT_Q

from pages.model import PageModelError
from pages.qr import QUIET_ZONE, qr_matrix, qr_png, qr_symbol
from pages.qr_symbol import encode, matrix_penalty
from pdf.writer import qr_raster

ALPHANUMERIC = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"


def reference(data: bytes, level: int = ERROR_CORRECT_M, border: int = QUIET_ZONE):
    """qrcode's own symbol and mask (None where qrcode itself fails)."""
    code = qrcode.QRCode(error_correction=level, border=border)
    code.add_data(data, optimize=0)
    try:
        code.make(fit=True)
    except ValueError:
        return None
    return code.get_matrix(), code.best_mask_pattern()  # make() keeps its choice to itself


def test_penalty_is_lost_point_on_random_matrices():
    rng = random.Random(18004)
    for trial in range(150):
        size = rng.choice([21, 25, 29, 45, 57])
        density = rng.choice([0.1, 0.3, 0.5, 0.7, 0.95])
        modules = [[rng.random() < density for _ in range(size)] for _ in range(size)]
        if trial % 5 == 0:  # plant finder-like patterns, long runs and blocks in both directions
            row = rng.randrange(size)
            at = rng.randrange(size - 10)
            modules[row][at:at + 11] = [bit == "1" for bit in rng.choice(["10111010000", "00001011101"])]
            col = rng.randrange(size)
            for r, bit in enumerate("00001011101"):
                modules[r][col] = bit == "1"
            modules[size - 1] = [True] * size
        assert matrix_penalty(modules) == qr_util.lost_point(modules), trial


def test_penalty_of_uniform_and_striped_matrices():
    for modules in ([[False] * 21 for _ in range(21)], [[True] * 21 for _ in range(21)],
                    [[(r + c) % 2 == 0 for c in range(21)] for r in range(21)],
                    [[c % 2 == 0 for c in range(25)] for _ in range(25)]):
        assert matrix_penalty(modules) == qr_util.lost_point(modules)


def test_penalty_refuses_what_is_not_a_square():
    with pytest.raises(ValueError, match="square"):
        matrix_penalty([[True, False], [True]])
    with pytest.raises(ValueError, match="square"):
        matrix_penalty([])


def payloads(count: int, seed: int):
    rng = random.Random(seed)
    for i in range(count):
        kind = i % 5
        length = rng.choice([1, 2, 9, 40, 120, 213, 400, 900, 1800])
        if kind == 0:
            yield "HTTP://LOCALHOST:8081/V/" + "".join(rng.choice(ALPHANUMERIC[10:36] + "234567")
                                                       for _ in range(min(length, 300)))
        elif kind == 1:
            yield "".join(rng.choice("0123456789") for _ in range(length))
        elif kind == 2:
            yield "".join(chr(rng.randint(0x4E00, 0x9FA5)) for _ in range(max(1, length // 6)))
        elif kind == 3:
            yield "".join(rng.choice(ALPHANUMERIC) for _ in range(length))
        else:
            yield "".join(chr(rng.randint(1, 0x7E)) for _ in range(max(1, length // 2)))


def test_every_module_and_the_mask_are_qrcodes_across_versions():
    versions, compared = set(), 0
    for payload in payloads(160, seed=5):
        expected = reference(payload.encode("utf-8"))
        if expected is None:
            continue
        matrix, mask = expected
        symbol = qr_symbol(payload)
        assert qr_matrix(payload) == matrix, payload
        assert symbol.mask == mask and symbol.side == len(matrix)
        versions.add(symbol.version)
        compared += 1
    assert compared > 140 and min(versions) <= 2 and max(versions) >= 20 and len(versions) > 12


@pytest.mark.parametrize("level", [ERROR_CORRECT_L, ERROR_CORRECT_M, ERROR_CORRECT_Q, ERROR_CORRECT_H])
@pytest.mark.parametrize("border", [1, 4])
def test_every_level_and_quiet_zone(level, border):
    for payload in payloads(15, seed=level * 10 + border):
        data = payload.encode("utf-8")[:1200]
        expected = reference(data, level, border)
        if expected is None:
            continue
        symbol = encode([qr_util.QRData(data)], level, border)
        assert [[m == "1" for m in row] for row in symbol.rows()] == expected[0]
        assert symbol.mask == expected[1]


def test_a_quiet_zone_is_needed():
    with pytest.raises(ValueError, match="quiet zone"):
        encode([qr_util.QRData(b"ABC")], ERROR_CORRECT_M, 0)


def test_too_much_data_is_a_clear_error():
    with pytest.raises(PageModelError, match="does not fit"):
        qr_symbol("x" * 3000)
    with pytest.raises(PageModelError, match="non-empty"):
        qr_symbol("")


def test_png_and_stencil_draw_the_symbol():
    payload = "HTTP://LOCALHOST:8081/V/" + "Q4" * 100
    matrix = qr_matrix(payload)
    side = len(matrix)
    image = Image.open(io.BytesIO(qr_png(payload))).convert("L")
    pixels = image.tobytes()
    assert image.size == (side * 8, side * 8)
    assert all(pixels[(8 * r + 3) * side * 8 + 8 * c + 4] == (0 if dark else 255)
               for r, row in enumerate(matrix) for c, dark in enumerate(row))
    stencil = qr_raster(payload)
    import zlib

    rows = zlib.decompress(stencil.data)
    width = (side + 7) // 8
    for r, row in enumerate(matrix):
        bits = int.from_bytes(rows[r * width:(r + 1) * width], "big")
        painted = [not (bits >> (8 * width - 1 - c)) & 1 for c in range(side)]
        assert painted == row
        assert bits & ((1 << (8 * width - side)) - 1) == (1 << (8 * width - side)) - 1  # pad: white
