"""Licence identifiers (电子证照标识) and the check characters of the codes inside them.

The form
--------
``1.2.156.3005.2.<type code>.<issuer code>.<serial>.<version>.<check>``, for example
``1.2.156.3005.2.11100000MB0143028K001.11350100MB0000000Y.42.001.7``:

* root ``1.2.156.3005.2`` — the national e-licence arc;
* type code — the defining department's 18-character unified social credit code followed by
  three digits numbering its licence types (21 characters);
* issuer code — the issuing department's unified social credit code (18 characters); both
  credit codes must carry a valid GB 32100 check character (:func:`ca.names.validate_credit_code`);
* serial — decimal, 1 to 18 digits, **no leading zeros**. Unbounded-width (rather than
  zero-padded) because it never runs out, it is the shortest form (the identifier goes into a
  QR code that must stay small), and because without padding or leading zeros every serial has
  exactly one spelling: ``…42…`` and ``…0042…`` cannot both name the same licence. 18 digits
  keep it inside a signed 64-bit database integer;
* version — three digits, ``001`` to ``999``; a change of a licence gets the next version;
* check — one ISO/IEC 7064 MOD 37,36 character (``0-9A-Z``) computed over the concatenation of
  type code, issuer code, serial (as written) and version, i.e. every part after the root with
  the dots removed. The root is constant, so covering it would detect nothing more.

Why ISO 7064 and not a hash: the check character is there to catch a clerk's typing mistakes
(every single substitution; every adjacent transposition but one pair of characters in 630
for each running state, the hybrid system's known limit), not forgery — the licence's
signature and the registry do that.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ca.errors import InvalidRequest
from ca.names import validate_credit_code

ROOT = "1.2.156.3005.2"
#: ISO/IEC 7064 MOD 37,36 character set: the value of a character is its index.
ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
MAX_SERIAL_DIGITS = 18
MAX_VERSION = 999

_TYPE_SUFFIX = re.compile(r"[0-9]{3}")
_SERIAL = re.compile(rf"[1-9][0-9]{{0,{MAX_SERIAL_DIGITS - 1}}}")
_VERSION = re.compile(r"[0-9]{3}")
_RESIDENT_ID = re.compile(r"[0-9]{17}[0-9X]")
_RESIDENT_ID_WEIGHTS = tuple(pow(2, 17 - i, 11) for i in range(17))


class IdentifierError(ValueError):
    """A licence identifier (or a code inside one) that is malformed; the message says which
    part and what is wrong with it."""


# -- ISO/IEC 7064 ------------------------------------------------------------------------------

def _hybrid_check(values: list[int], modulus: int) -> int:
    """ISO/IEC 7064 hybrid system MOD (M+1),M check value for ``values`` (each 0..M-1).

    P starts at M; for each character S = (P + a) mod M, written M when 0, then
    P = 2S mod (M+1). The check character c makes (P + c) mod M = 1.
    """
    product = modulus
    for value in values:
        total = (product + value) % modulus or modulus
        product = (total * 2) % (modulus + 1)
    return (modulus + 1 - product) % modulus


def check_character(text: str) -> str:
    """The ISO/IEC 7064 MOD 37,36 check character of ``text`` (characters ``0-9A-Z``).

    Raises IdentifierError naming the characters outside the alphabet (lower case included:
    the check is defined over upper-case letters only).
    """
    if not isinstance(text, str) or not text:
        raise IdentifierError("the text to check must be a non-empty string of 0-9 and A-Z")
    bad = "".join(dict.fromkeys(c for c in text if c not in ALPHABET))
    if bad:
        raise IdentifierError(f"{bad!r} not in the MOD 37,36 alphabet 0-9A-Z (upper case)")
    return ALPHABET[_hybrid_check([ALPHABET.index(c) for c in text], len(ALPHABET))]


def resident_id_check_character(first17: str) -> str:
    """The GB 11643 check character (ISO/IEC 7064 MOD 11-2) of a resident ID number's first
    17 digits: ``0-9`` or ``X``."""
    if not re.fullmatch(r"\d{17}", first17 or ""):
        raise IdentifierError(f"{first17!r}: a resident ID number starts with 17 digits")
    total = sum(int(d) * w for d, w in zip(first17, _RESIDENT_ID_WEIGHTS, strict=True))
    return "10X98765432"[total % 11]


def validate_resident_id(number: str) -> str:
    """Return ``number`` if it is a well-formed 18-character resident ID number (GB 11643:
    17 digits, check character by MOD 11-2); else IdentifierError saying what is wrong."""
    if not isinstance(number, str) or not _RESIDENT_ID.fullmatch(number):
        raise IdentifierError(f"resident ID number {number!r} must be 17 digits and a digit or X")
    expected = resident_id_check_character(number[:17])
    if number[17] != expected:
        raise IdentifierError(f"resident ID number {number} has check character {number[17]!r}, "
                              f"GB 11643 gives {expected!r}: the number is mistyped")
    return number


def _credit_code(code: object, what: str) -> str:
    try:
        return validate_credit_code(code)  # type: ignore[arg-type]
    except InvalidRequest as exc:
        raise IdentifierError(f"{what}: {exc}") from None


def validate_type_code(code: object) -> str:
    """Return ``code`` if it is a licence type code: a valid credit code + three digits."""
    if not isinstance(code, str) or len(code) != 21:
        raise IdentifierError(f"licence type code {code!r} must be 21 characters: the defining "
                              "department's 18-character credit code and three digits")
    if not _TYPE_SUFFIX.fullmatch(code[18:]):
        raise IdentifierError(f"licence type code {code}: the last three characters {code[18:]!r} "
                              "must be digits")
    _credit_code(code[:18], f"licence type code {code}")
    return code


# -- the identifier ----------------------------------------------------------------------------

@dataclass(frozen=True)
class LicenceIdentifier:
    """One licence version's identifier. Made directly it is validated as parse() would; the
    check character is computed, never stored."""

    type_code: str
    issuer_code: str
    serial: int
    version: int = 1

    def __post_init__(self) -> None:
        validate_type_code(self.type_code)
        _credit_code(self.issuer_code, "issuer code")
        if isinstance(self.serial, bool) or not isinstance(self.serial, int) \
                or not 1 <= self.serial < 10 ** MAX_SERIAL_DIGITS:
            raise IdentifierError(f"serial {self.serial!r} must be an integer from 1 to "
                                  f"{MAX_SERIAL_DIGITS} digits")
        if isinstance(self.version, bool) or not isinstance(self.version, int) \
                or not 1 <= self.version <= MAX_VERSION:
            raise IdentifierError(f"version {self.version!r} must be an integer from 1 to {MAX_VERSION}")

    @property
    def body(self) -> str:
        """What the check character covers: the parts after the root, without dots."""
        return f"{self.type_code}{self.issuer_code}{self.serial}{self.version:03d}"

    @property
    def check(self) -> str:
        return check_character(self.body)

    @property
    def text(self) -> str:
        """The full dotted form, check character included."""
        return f"{ROOT}.{self.type_code}.{self.issuer_code}.{self.serial}.{self.version:03d}.{self.check}"

    def __str__(self) -> str:
        return self.text

    def next_version(self) -> LicenceIdentifier:
        """The identifier of the licence's next version (same serial); a change or renewal
        links the new version to this one."""
        if self.version >= MAX_VERSION:
            raise IdentifierError(f"{self.text} is version {MAX_VERSION}, the last one: issue the "
                                  "changed licence under a new serial")
        return LicenceIdentifier(self.type_code, self.issuer_code, self.serial, self.version + 1)

    @classmethod
    def parse(cls, text: str) -> LicenceIdentifier:
        """Read the dotted form; IdentifierError names the first part that is wrong."""
        if not isinstance(text, str):
            raise IdentifierError(f"a licence identifier is a string, not {type(text).__name__}")
        shown = text if len(text) <= 100 else text[:100] + "…"
        if not text.startswith(ROOT + "."):
            raise IdentifierError(f"licence identifier {shown!r} must start with {ROOT}.")
        parts = text[len(ROOT) + 1:].split(".")
        if len(parts) != 5:
            raise IdentifierError(
                f"licence identifier {shown!r} has {len(parts)} parts after {ROOT}; it needs 5: "
                "type code, issuer code, serial, version, check character")
        type_code, issuer_code, serial, version, check = parts
        validate_type_code(type_code)
        _credit_code(issuer_code, "issuer code")
        if not _SERIAL.fullmatch(serial):
            raise IdentifierError(f"serial {serial!r} must be 1 to {MAX_SERIAL_DIGITS} digits "
                                  "without leading zeros")
        if not _VERSION.fullmatch(version) or version == "000":
            raise IdentifierError(f"version {version!r} must be three digits, 001 to 999")
        identifier = cls(type_code, issuer_code, int(serial), int(version))
        if len(check) != 1 or check not in ALPHABET:
            raise IdentifierError(f"check character {check!r} must be one of 0-9, A-Z")
        if check != identifier.check:
            raise IdentifierError(f"licence identifier {shown} has check character {check!r}, "
                                  f"ISO 7064 MOD 37,36 gives {identifier.check!r}: it is mistyped")
        return identifier
