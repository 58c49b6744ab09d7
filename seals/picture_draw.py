"""Drawing seal ink: an ink mask measured in millimetres, drawn supersampled.

Everything a seal carver does is placed in millimetres on the seal face; the mask is drawn at
``supersample`` times the output resolution and reduced with a box filter, which gives clean
anti-aliased edges and leaves pixels without ink at exactly zero (a transparent background).
Characters are drawn one at a time so each can be compressed sideways and turned to follow an
arc, as on a carved seal. Their cell is that of a reference glyph ("国" for Chinese, "0" for
the seal code): the reference glyph fills the cell, every other glyph keeps its place relative
to it, so a line of mixed characters keeps one baseline and one height.
"""

from __future__ import annotations

import math
import struct
import zlib
from bisect import bisect_left
from functools import lru_cache

from PIL import Image, ImageChops, ImageDraw, ImageFont

from pages.fonts import cjk_font_path

#: Ink added around each glyph after it is fitted to its cell, as a fraction of the cell's
#: height: WenQuanYi Zen Hei is a regular-weight face and seal lettering is heavy. Thickening
#: after compressing keeps vertical strokes as heavy as horizontal ones in narrow characters.
BOLD = 0.02
HAN_REFERENCE = "国"
DIGIT_REFERENCE = "0"
_PROBE = 1000


@lru_cache(maxsize=64)
def _font(size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(cjk_font_path()), size, index=0)


@lru_cache(maxsize=8)
def _reference_cell(reference: str) -> tuple[float, float, float, float]:
    """The reference glyph's cell (left, top, right, bottom) per unit of font size, from the baseline."""
    left, top, right, bottom = _font(_PROBE).getbbox(reference, anchor="ls")
    return left / _PROBE, top / _PROBE, right / _PROBE, bottom / _PROBE


class InkMask:
    """Seal ink on a ``width_mm`` × ``height_mm`` face; coordinates in mm from the top left."""

    def __init__(self, width_px: int, height_px: int, width_mm: float, height_mm: float, supersample: int):
        self.size_px = (width_px, height_px)
        self.supersample = supersample
        self.sx = width_px * supersample / width_mm
        self.sy = height_px * supersample / height_mm
        self.image = Image.new("L", (width_px * supersample, height_px * supersample), 0)
        self.draw = ImageDraw.Draw(self.image)

    def _xy(self, x: float, y: float) -> tuple[float, float]:
        return x * self.sx, y * self.sy

    def ellipse_ring(self, cx: float, cy: float, a: float, b: float, stroke: float) -> None:
        """A ring whose outer edge is the ellipse with semi-axes ``a``, ``b`` (a circle when equal)."""
        box = (*self._xy(cx - a, cy - b), *self._xy(cx + a, cy + b))
        self.draw.ellipse(box, outline=255, width=max(1, round(stroke * self.sx)))

    def rectangle_border(self, inset: float, stroke: float) -> None:
        """A border ``stroke`` wide whose outer edge lies ``inset`` inside the face's edge."""
        w, h = self.image.size
        x0, y0 = self._xy(inset, inset)
        self.draw.rectangle((round(x0), round(y0), w - 1 - round(x0), h - 1 - round(y0)),
                            outline=255, width=max(1, round(stroke * self.sx)))

    def star(self, cx: float, cy: float, radius: float) -> None:
        """A solid five-pointed star, one point up, its points on a circle of ``radius``."""
        inner = radius * math.sin(math.radians(18)) / math.sin(math.radians(126))
        points = []
        for k in range(10):
            r = radius if k % 2 == 0 else inner
            angle = math.radians(k * 36)
            points.append(self._xy(cx + r * math.sin(angle), cy - r * math.cos(angle)))
        self.draw.polygon(points, fill=255)

    def glyph(self, char: str, cx: float, cy: float, width: float, height: float, *,
              turn_degrees: float = 0.0, reference: str = HAN_REFERENCE) -> None:
        """``char`` with its cell ``width`` × ``height`` mm centred on (cx, cy), turned clockwise."""
        left, top, right, bottom = _reference_cell(reference)
        bold = round(BOLD * height * self.sy)
        cell_w_px, cell_h_px = max(1.0, width * self.sx - 2 * bold), max(1.0, height * self.sy - 2 * bold)
        size = max(4, round(cell_h_px / (bottom - top)))
        cw, ch = (right - left) * size, (bottom - top) * size
        margin = 0.3 * ch
        tile = Image.new("L", (round(cw + 2 * margin), round(ch + 2 * margin)), 0)
        ImageDraw.Draw(tile).text((margin - left * size, margin - top * size), char, fill=255,
                                  font=_font(size), anchor="ls")
        fitted = (max(1, round(tile.width * cell_w_px / cw)), max(1, round(tile.height * cell_h_px / ch)))
        tile = tile.resize(fitted, Image.Resampling.BICUBIC)
        tile = _thicken(tile, bold)
        if turn_degrees:
            tile = tile.rotate(-turn_degrees, resample=Image.Resampling.BICUBIC, expand=True)
        px, py = self._xy(cx, cy)
        self.image.paste(255, (round(px - tile.width / 2), round(py - tile.height / 2)), tile)

    def line(self, text: str, cx: float, cy: float, height: float, max_width: float, *,
             aspect: float = 0.85, spacing: float = 0.12, reference: str = HAN_REFERENCE) -> None:
        """Horizontal ``text`` centred on (cx, cy); characters compressed sideways when too wide."""
        n = len(text)
        if not n:
            return
        advance = min(height * (aspect + spacing), max_width / n)
        width = min(height * aspect, advance * aspect / (aspect + spacing))
        x0 = cx - advance * n / 2
        for i, char in enumerate(text):
            self.glyph(char, x0 + advance * (i + 0.5), cy, width, height, reference=reference)

    def along_ellipse(self, text: str, cx: float, cy: float, a: float, b: float, *, length: float,
                      height: float, aspect: float = 0.85, upper: bool = True,
                      reference: str = HAN_REFERENCE) -> None:
        """``text`` centred on the top (or bottom) of the ellipse, spread over ``length`` mm of arc.

        Characters stand on the curve: upright at the top, their tops towards the rim; at the
        bottom their feet point to the rim and the text still reads left to right.
        """
        n = len(text)
        if not n:
            return
        advance = length / n
        width = min(height * aspect, advance * 0.9)
        arc = _Arc(a, b)
        for i, char in enumerate(text):
            s = (i + 0.5 - n / 2) * advance            # signed arc length from the top/bottom point
            t = arc.angle_at(s if upper else -s)
            x, y = a * math.sin(t), -b * math.cos(t)
            if not upper:
                x, y = -x, -y
            turn = math.degrees(math.atan2(b * math.sin(t), a * math.cos(t)))
            self.glyph(char, cx + x, cy + y, width, height, turn_degrees=turn, reference=reference)

    def png(self, dpi: int, rgb: tuple[int, int, int]) -> bytes:
        """The ink in ``rgb`` on a fully transparent background, with the DPI in pHYs."""
        alpha = self.image.reduce(self.supersample)              # the canvas is an exact multiple
        bands = [Image.new("L", alpha.size, value) for value in rgb]
        return rgba_png(Image.merge("RGBA", (*bands, alpha)), dpi)


def rgba_png(image: Image.Image, dpi: int) -> bytes:
    """``image`` (RGBA) as a PNG file made small for a seal face, with the DPI in pHYs.

    A seal's picture is copied into every document it seals — twice into an OFD (Seal.esl and
    the seal inside SignedValue.dat), once into each seal signature's signed bytes — and hashed
    and archived with it each time, so its size is paid on every licence. Ink of one colour
    over transparency has constant colour channels and an alpha channel that is mostly runs of
    0 and 255: written unfiltered (PNG filter type 0 on every row) and deflated at level 9, a
    round seal's face is a quarter smaller than with Pillow's adaptive filters (78 kB instead
    of 102 kB for a 40 mm face at 600 dpi), pixel for pixel the same image and still 8-bit
    RGBA as a reader of seal pictures expects. Level 9 takes a third of a second, once per seal.
    """
    if image.mode != "RGBA":
        raise ValueError(f"a seal face is RGBA, not {image.mode}")
    width, height = image.size
    pixels = image.tobytes()
    stride = 4 * width
    rows = b"".join(b"\x00" + pixels[start:start + stride] for start in range(0, len(pixels), stride))
    per_metre = int(dpi / 0.0254 + 0.5)
    return b"".join((
        b"\x89PNG\r\n\x1a\n",
        _chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)),  # 8-bit RGBA
        _chunk(b"pHYs", struct.pack(">IIB", per_metre, per_metre, 1)),           # pixels per metre
        _chunk(b"IDAT", zlib.compress(rows, 9)),
        _chunk(b"IEND", b""),
    ))


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _thicken(tile: Image.Image, radius: int) -> Image.Image:
    """Grow the ink by ``radius`` pixels on every side (a square dilation, in O(log radius) passes).

    ``offset`` wraps around; the tile's empty margin is wider than ``radius``, so nothing does.
    """
    grown, step = 0, 1
    while grown < radius:
        shift = min(step, radius - grown)
        for dx, dy in ((shift, 0), (0, shift)):
            tile = ImageChops.lighter(tile, ImageChops.lighter(ImageChops.offset(tile, dx, dy),
                                                               ImageChops.offset(tile, -dx, -dy)))
        grown += shift
        step *= 2
    return tile


class _Arc:
    """Arc length along the ellipse (a·sin t, −b·cos t), t measured clockwise from the top."""

    STEPS = 2048

    def __init__(self, a: float, b: float):
        self.t = [math.pi * k / self.STEPS for k in range(self.STEPS + 1)]
        self.s = [0.0]
        for k in range(1, self.STEPS + 1):
            t0, t1 = self.t[k - 1], self.t[k]
            self.s.append(self.s[-1] + math.hypot(a * (math.sin(t1) - math.sin(t0)),
                                                  b * (math.cos(t1) - math.cos(t0))))

    def angle_at(self, s: float) -> float:
        """The parameter t whose arc length from the top is ``s`` (negative: anticlockwise)."""
        magnitude = min(abs(s), self.s[-1])
        k = max(1, bisect_left(self.s, magnitude))
        s0, s1 = self.s[k - 1], self.s[k]
        t = self.t[k - 1] + (self.t[k] - self.t[k - 1]) * ((magnitude - s0) / (s1 - s0) if s1 > s0 else 0)
        return math.copysign(t, s)
