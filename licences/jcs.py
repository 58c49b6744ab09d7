"""RFC 8785 JSON Canonicalization Scheme (JCS): one spelling for every JSON value.

The licence QR code carries SM3 of the licence data in this form
(:func:`licences.qr_payload.licence_data_hash`), so any JCS implementation — a verifier in
another language included — recomputes the hash from the data: keys sorted by UTF-16 code
units, numbers as ECMAScript prints them, strings with the minimal escapes.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from .qr_url import QrPayloadError

MAX_SAFE_INTEGER = 2**53 - 1  # RFC 8785 numbers are IEEE 754 doubles (I-JSON)


def canonical_json(value: Any) -> bytes:
    """RFC 8785 JSON Canonicalization Scheme, UTF-8. QrPayloadError for values JSON lacks."""
    out: list[str] = []
    _canonical(value, out, "data", 0)
    try:
        return "".join(out).encode("utf-8")
    except UnicodeEncodeError as exc:
        raise QrPayloadError(f"licence data holds a lone surrogate (U+{ord(exc.object[exc.start]):04X})") \
            from None


_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


_ESCAPED = re.compile(r'["\\\x00-\x1f]')


def _escape(match: re.Match[str]) -> str:
    c = match.group()
    return _ESCAPES.get(c) or f"\\u{ord(c):04x}"


def _string(text: str) -> str:
    """The minimal escapes of RFC 8785 §3.2.2.2: quote, backslash and the C0 controls only."""
    return '"' + _ESCAPED.sub(_escape, text) + '"'


def _canonical(value: Any, out: list[str], where: str, depth: int) -> None:
    if depth > 64:
        raise QrPayloadError(f"licence data nests deeper than 64 levels at {where}")
    if value is None or isinstance(value, bool):
        out.append({None: "null", True: "true", False: "false"}[value])
    elif isinstance(value, str):
        out.append(_string(value))
    elif isinstance(value, int):
        if abs(value) > MAX_SAFE_INTEGER:
            raise QrPayloadError(f"licence data at {where} is an integer beyond ±2^53, which JSON readers "
                                 "round: write it as a string")
        out.append(str(value))
    elif isinstance(value, float):
        out.append(_number(value, where))
    elif isinstance(value, Mapping):
        keys = list(value)
        if not all(isinstance(k, str) for k in keys):
            raise QrPayloadError(f"licence data at {where} has a key that is not a string")
        out.append("{")
        for i, key in enumerate(sorted(keys, key=lambda k: k.encode("utf-16-be", "surrogatepass"))):
            out.append("," if i else "")
            out.append(_string(key) + ":")
            _canonical(value[key], out, f"{where}.{key}", depth + 1)
        out.append("}")
    elif isinstance(value, list | tuple):
        out.append("[")
        for i, item in enumerate(value):
            out.append("," if i else "")
            _canonical(item, out, f"{where}[{i}]", depth + 1)
        out.append("]")
    else:
        raise QrPayloadError(f"licence data at {where} is a {type(value).__name__}, which JSON has not; "
                             "write dates as ISO 8601 strings")


def _number(value: float, where: str) -> str:
    """ECMAScript Number::toString, as RFC 8785 §3.2.2.3 requires."""
    if not math.isfinite(value):
        raise QrPayloadError(f"licence data at {where} is {value}, which JSON cannot carry")
    if value == 0:
        return "0"
    sign, text = ("-" if value < 0 else ""), repr(abs(value))  # repr: the shortest round trip
    mantissa, _, exponent = text.partition("e")
    whole, _, fraction = mantissa.partition(".")
    significant = (whole + fraction).lstrip("0")
    # value = 0.<digits> x 10^n
    n = len(whole) + int(exponent or 0) - (len(whole + fraction) - len(significant))
    digits = significant.rstrip("0")
    k = len(digits)
    if k <= n <= 21:
        body = digits + "0" * (n - k)
    elif 0 < n <= 21:
        body = f"{digits[:n]}.{digits[n:]}"
    elif -6 < n <= 0:
        body = "0." + "0" * -n + digits
    else:
        body = digits[0] + ("." + digits[1:] if k > 1 else "") + f"e{'+' if n > 0 else '-'}{abs(n - 1)}"
    return sign + body
