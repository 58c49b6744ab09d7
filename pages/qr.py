"""QR codes as PNG images, the way both writers embed them.

Level M (15 % of the code can be lost: a smudged print or a phone held at an angle still
reads), a quiet zone of 4 modules (ISO/IEC 18004's minimum, so scanners find the code next to
other ink), black on white. The PNG is 1 bit deep and an exact number of pixels per module,
so no reader has to resample a module edge; the writers scale the image to the size asked.
"""

from __future__ import annotations

import functools
import io
import struct
import zlib

import qrcode
from qrcode.constants import ERROR_CORRECT_M
from qrcode.exceptions import DataOverflowError

from .model import PageModelError
from .qr_symbol import make

QUIET_ZONE = 4
PIXELS_PER_MODULE = 8


def qr_matrix(payload: str) -> list[list[bool]]:
    """The modules of ``payload``'s QR code, quiet zone included (True = dark).

    A licence's OFD and PDF carry the same code, and encoding it (eight trial masks) is the
    costliest step of writing either: the last few matrices are kept by payload, and each
    caller gets its own copy to do with as it likes.
    """
    if not isinstance(payload, str) or not payload:
        raise PageModelError("a QR code needs a non-empty payload")
    return [list(row) for row in _matrix(payload)]


@functools.lru_cache(maxsize=16)
def _matrix(payload: str) -> tuple[tuple[bool, ...], ...]:
    code = qrcode.QRCode(error_correction=ERROR_CORRECT_M, border=QUIET_ZONE)
    try:
        code.add_data(payload.encode("utf-8"), optimize=0)
        make(code)  # what code.make(fit=True) does, faster
    except (DataOverflowError, ValueError) as exc:
        raise PageModelError(f"QR payload of {len(payload)} characters does not fit a QR code "
                             f"at level M: {exc}") from exc
    return tuple(tuple(row) for row in code.get_matrix())


def qr_png(payload: str, pixels_per_module: int = PIXELS_PER_MODULE) -> bytes:
    """A 1-bit greyscale PNG of ``payload``'s QR code; the same payload always gives the same bytes.

    At a multiple of 8 pixels a module (the default), every module is whole bytes of a row, so
    the PNG is written here directly — the rows (filter type 0) deflated, in IHDR, IDAT and IEND
    chunks — four times faster than through Pillow, and smaller; other sizes go through Pillow.
    """
    if pixels_per_module < 1:
        raise PageModelError("pixels_per_module must be at least 1")
    matrix = qr_matrix(payload)
    side = len(matrix) * pixels_per_module
    if pixels_per_module % 8 == 0:
        width = pixels_per_module // 8
        dark, light = b"\x00" * width, b"\xff" * width  # 1 bit a pixel: 0 black, 1 white
        rows = [b"\x00" + b"".join(dark if module else light for module in row) for row in matrix]
        header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)  # 1-bit greyscale, no interlace
        pixels = zlib.compress(b"".join(row * pixels_per_module for row in rows), 6)
        return _PNG_SIGNATURE + _chunk(b"IHDR", header) + _chunk(b"IDAT", pixels) + _chunk(b"IEND", b"")
    from PIL import Image

    image = Image.new("1", (len(matrix),) * 2, 1)
    image.putdata([0 if dark else 1 for row in matrix for dark in row])
    image = image.resize((side, side), Image.Resampling.NEAREST)
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
