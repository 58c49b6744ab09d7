"""The HTML pages: Jinja2 templates with autoescape, one inline style sheet, no scripts.

Mobile first (one column, large type, the verdict banner at the top), no external resources
and no JavaScript, so the page opens on any phone and the Content-Security-Policy can be
``default-src 'none'``: the only thing it allows is this one style sheet, by its SHA-256.
"""

from __future__ import annotations

import base64
import hashlib
from datetime import datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup

from . import texts

TEMPLATES = Path(__file__).with_name("templates")

CSS = (
    "*{box-sizing:border-box}"
    "body{margin:0;font:17px/1.5 system-ui,-apple-system,'PingFang SC','Noto Sans CJK SC','Microsoft YaHei',"
    "sans-serif;color:#1a1a1a;background:#f4f5f7}"
    ".top{display:flex;justify-content:space-between;align-items:center;padding:.6rem 1rem;background:#fff;"
    "border-bottom:1px solid #ddd}"
    ".brand{font-weight:600}.lang{color:#0b57d0}"
    "main{max-width:40rem;margin:0 auto;padding:1rem}"
    ".banner{border-radius:.6rem;padding:1rem;color:#fff;margin:0 0 1rem}"
    ".banner h1{margin:0;font-size:1.35rem}.banner p{margin:.3rem 0 0}"
    ".good{background:#137333}.bad{background:#c5221f}.live{background:#0b57d0}"
    ".reason{font-size:1.05rem}"
    ".facts{background:#fff;border-radius:.6rem;padding:.6rem 1rem;margin:0 0 1rem}"
    ".facts dt{color:#5f6368;font-size:.85rem;margin-top:.5rem}.facts dd{margin:0;font-weight:600}"
    ".ok{color:#137333}.fail{color:#c5221f}.banner .ok,.banner .fail{color:#fff}"
    ".mono{font-family:ui-monospace,monospace;word-break:break-all}"
    ".note,.checked{color:#5f6368;font-size:.9rem}"
    "table{width:100%;border-collapse:collapse;background:#fff;font-size:.9rem}"
    "td{border-top:1px solid #eee;padding:.3rem;vertical-align:top;word-break:break-word}"
    "button{font-size:1.05rem;padding:.5rem 1.5rem}"
)

#: The CSP source allowing exactly the inline style sheet above.
STYLE_SOURCE = "'sha256-" + base64.b64encode(hashlib.sha256(CSS.encode()).digest()).decode() + "'"
CONTENT_SECURITY_POLICY = (f"default-src 'none'; style-src {STYLE_SOURCE}; img-src 'self' data:; "
                           "form-action 'self'; base-uri 'none'; frame-ancestors 'none'")

# auto_reload off: the templates ship with the code, and checking their files' times on every
# page was a measurable part of the QR page's cost.
_environment = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(default=True),
                           trim_blocks=True, lstrip_blocks=True, auto_reload=False)


def render(template: str, lang: str, *, checked_at: datetime | None = None, **context: Any) -> str:
    """A page in ``lang``; ``checked_at`` fills the one part that differs between two answers."""
    words = texts.TEXTS[lang]
    values = {
        "t": words, "lang": lang, "status_words": texts.STATUS_WORDS[lang],
        "css": Markup(CSS),  # noqa: S704 - a constant of this module, no input
        "day": lambda value: texts.day(value, lang),
        "verdict_words": {"TOTAL_PASSED": words["doc_passed"], "TOTAL_FAILED": words["doc_failed"],
                          "INDETERMINATE": words["doc_indeterminate"],
                          "NO_SIGNATURE_FOUND": words["doc_unsigned"]},
    }
    if checked_at is not None:
        values["checked"] = texts.china_time(checked_at)
        values["checked_iso"] = checked_at.astimezone(texts.CHINA_TIME).isoformat(timespec="seconds")
    values.update(context)
    return _environment.get_template(template).render(values)
