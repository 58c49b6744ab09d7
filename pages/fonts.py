"""Where the CJK font comes from.

Every document we write embeds its glyphs, so a licence looks the same in every reader and
seal images look the same on every machine. The font must allow embedding: WenQuanYi Zen Hei
(GPLv2 with the font-embedding exception, TrueType outlines, so it works as a PDF
CIDFontType2 and as an OFD embedded font). The project's set-up installs it from Debian
(``fonts-wqy-zenhei``); ``ZHENGYIN_CJK_FONT`` points elsewhere (a .ttf, .otf or .ttc).
"""

from __future__ import annotations

import os
from pathlib import Path

FONT_ENV = "ZHENGYIN_CJK_FONT"

#: Looked for in this order when ZHENGYIN_CJK_FONT is not set.
CANDIDATES = (
    Path("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc"),
    Path("/usr/share/fonts/wqy-zenhei/wqy-zenhei.ttc"),
)


class FontNotFound(RuntimeError):
    """No usable CJK font: say how to get one."""


def cjk_font_path() -> Path:
    """The CJK font file to embed; raises FontNotFound with the remedy when there is none."""
    configured = os.environ.get(FONT_ENV)
    if configured:
        path = Path(configured)
        if not path.is_file():
            raise FontNotFound(f"{FONT_ENV}={configured} is not a file")
        return path
    for path in CANDIDATES:
        if path.is_file():
            return path
    raise FontNotFound("no CJK font found: install Debian's fonts-wqy-zenhei "
                       f"(`make install` does) or set {FONT_ENV} to a .ttf/.ttc file")
