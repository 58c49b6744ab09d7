"""The URL around a licence QR payload: the verification base it is printed under, reading the
payload out of a scanned text, and the check that a code opens the public verification service.

A licence QR code is ``<base><base32 payload>`` with the base in the QR alphanumeric set
(``0-9 A-Z $%*+-./:`` and space): scheme and host upper case (they are case-insensitive), the
path already upper case (it is not). The signature covers the claims, not the URL, so the base
is checked separately (:func:`base_check`).

Only ASCII case folding is ever applied. ``str.upper()`` maps non-ASCII letters onto ASCII
ones (``'ı'.upper() == 'I'``, ``'ſ'.upper() == 'S'``), which would let ``http://localhoſt/``
— a different host to any browser, its IDNA form is ``xn--…`` — compare equal to
``HTTP://LOCALHOST/``. So a text must be ASCII before it is folded, and the folded base must
lie entirely in the QR alphanumeric set before it is compared.
"""

from __future__ import annotations

import re

from ca.verdict import SIG_CONSTRAINTS_FAILURE, Check, failed, passed

#: The characters of the QR alphanumeric mode (ISO/IEC 18004 §7.4.4).
QR_ALPHANUMERIC = frozenset("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:")
BASE_CHECK = "verification-base"

_BASE_URL = re.compile(r"^(HTTPS?)://([A-Z0-9.-]+(?::[0-9]{1,5})?)((?:/[A-Z0-9.-]+)*)/?$")
_LOOPBACK = ("LOCALHOST", "127.0.0.1")
_ASCII_UPPER = str.maketrans("abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOPQRSTUVWXYZ")


class QrPayloadError(ValueError):
    """A QR payload that cannot be made or read; the message says which part and why."""


def ascii_upper(text: str) -> str:
    """``text`` with a-z upper-cased and every other character left as it is."""
    return text.translate(_ASCII_UPPER)


def _non_ascii(text: str) -> str:
    return " ".join(f"U+{ord(c):04X}" for c in dict.fromkeys(c for c in text if not c.isascii()))


def verification_base(base_url: str) -> str:
    """``base_url`` as it goes into a QR code: scheme and host upper-cased (they are
    case-insensitive), ending in ``/``; HTTPS unless the host is loopback (development).

    The path is case-sensitive on the server, so it must already be upper case (serve the
    verification page at e.g. ``/V/``): anything else would leave the QR alphanumeric mode.
    """
    if not isinstance(base_url, str):
        raise QrPayloadError(f"base_url must be a string, not {type(base_url).__name__}")
    if not base_url.isascii():
        raise QrPayloadError(f"base URL {base_url!r} holds non-ASCII characters ({_non_ascii(base_url)}); "
                             "write an internationalised host name in its xn-- (IDNA) form")
    scheme, sep, rest = base_url.strip().partition("://")
    host, slash, path = rest.partition("/")
    candidate = f"{ascii_upper(scheme)}{sep}{ascii_upper(host)}{slash}{path}"
    match = _BASE_URL.match(candidate)
    if not sep or match is None:
        raise QrPayloadError(
            f"base URL {base_url!r} must be http(s)://HOST[:PORT]/PATH/ with the path in upper-case "
            "letters, digits, '.' and '-' only (so the whole URL stays in QR alphanumeric mode), "
            "without query or fragment")
    if match[1] == "HTTP" and match[2].split(":")[0] not in _LOOPBACK:
        raise QrPayloadError(f"base URL {base_url!r} must use https: a phone must not be shown a "
                             "verdict a network could forge (http only for localhost)")
    return candidate.rstrip("/") + "/"


def payload_text(text: str) -> str:
    """The base32 part of a QR text: the last path segment of an http(s) URL, or the text.
    The text must be ASCII: a scanned licence code is, and a non-ASCII letter could otherwise
    be case-mapped into the payload or the base."""
    if not text.isascii():
        raise QrPayloadError(f"QR text holds non-ASCII characters ({_non_ascii(text)[:80]}); a licence QR "
                             "code is an ASCII URL")
    if "://" in text:
        scheme, _, rest = text.partition("://")
        if scheme.lower() not in ("http", "https"):
            raise QrPayloadError(f"QR text is a {scheme!r} URL; a licence QR code is an http(s) URL")
        if "?" in rest or "#" in rest:
            raise QrPayloadError("QR URL has a query or fragment; a licence QR URL has neither")
        host, slash, path = rest.partition("/")
        if not host or not slash:
            raise QrPayloadError("QR URL has no path: the payload is its last path segment")
        return path.rsplit("/", 1)[-1]
    if "/" in text:
        raise QrPayloadError("QR text is neither an http(s) URL nor a bare payload (it contains '/')")
    return text


def text_base(text: str) -> str | None:
    """The URL's base as :func:`verification_base` spells it (scheme and host ASCII
    upper-cased, path as written, ending in ``/``); None for a bare payload."""
    text = text.strip()
    if "://" not in text:
        return None
    scheme, _, rest = text.partition("://")
    host, _, path = rest.partition("/")
    folder = path.rsplit("/", 1)[0] + "/" if "/" in path else ""
    return f"{ascii_upper(scheme)}://{ascii_upper(host)}/{folder}"


def base_check(text: str, expected_base: str) -> Check:
    """The QR code must open the public verification service: the signature covers the claims,
    not the URL, so a valid payload re-hosted under another base (a look-alike site that shows
    "genuine" for anything) must not pass as the issuer's QR code. The base is compared only
    once it is ASCII and, folded, entirely QR alphanumeric: no Unicode case mapping can make a
    look-alike host equal the service's."""
    expected = verification_base(expected_base)
    if not text.isascii():
        return failed(BASE_CHECK, f"the code's text holds non-ASCII characters ({_non_ascii(text)[:80]}): "
                      f"it does not open the public verification service {expected}",
                      SIG_CONSTRAINTS_FAILURE)
    found = text_base(text)
    if found is None:
        return passed(BASE_CHECK, f"a bare payload (no URL to open); the service is {expected}")
    outside = "".join(dict.fromkeys(c for c in found if c not in QR_ALPHANUMERIC))
    if outside:
        return failed(BASE_CHECK, f"the code's address {found} holds {outside!r}, outside the QR "
                      f"alphanumeric set a licence code is printed in: it does not open the public "
                      f"verification service {expected}", SIG_CONSTRAINTS_FAILURE)
    if found == expected:
        return passed(BASE_CHECK, f"the code opens the public verification service {expected}")
    return failed(BASE_CHECK, f"the code opens {found}, not the public verification service "
                  f"{expected}: the signed claims were put behind another address (a re-hosted or "
                  "phishing QR code); check the licence at the public service instead",
                  SIG_CONSTRAINTS_FAILURE)
