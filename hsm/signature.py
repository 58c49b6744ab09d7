"""SM2 signature values as they are written in real files.

GM/T 0009 says DER ``SEQUENCE { r INTEGER, s INTEGER }``. Producers in the wild also write
the raw 64-byte ``r || s``, and some strip the trailing zero bits of the BIT STRING that
carries the DER value (the way a named-bit list is encoded), leaving it bytes short. Every
reader in this project decodes through :func:`decode_signature`, which says which form it
saw so a report can state it; it never accepts a value it had to guess beyond those rules.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from .curve import N
from .errors import InvalidSignature


class SignatureForm(enum.Enum):
    DER = "der"
    """DER SEQUENCE{r, s}, as GM/T 0009 requires."""
    RAW = "raw"
    """64 bytes r || s, each 32 bytes big-endian."""
    TRUNCATED_DER = "truncated-der"
    """DER whose trailing zero bytes were cut off (BIT STRING with unused bits)."""


@dataclass(frozen=True)
class SignatureValue:
    r: int
    s: int
    form: SignatureForm = SignatureForm.DER

    def to_der(self) -> bytes:
        return encode_der(self.r, self.s)

    def to_raw(self) -> bytes:
        return self.r.to_bytes(32, "big") + self.s.to_bytes(32, "big")


def _der_len(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def _der_int(v: int) -> bytes:
    body = v.to_bytes(v.bit_length() // 8 + 1, "big")  # keeps a leading 0 when the top bit is set
    return b"\x02" + _der_len(len(body)) + body


def encode_der(r: int, s: int) -> bytes:
    """DER SEQUENCE{r, s}."""
    body = _der_int(r) + _der_int(s)
    return b"\x30" + _der_len(len(body)) + body


def _read_len(data: bytes, i: int) -> tuple[int, int]:
    if i >= len(data):
        raise ValueError("length missing")
    first = data[i]
    i += 1
    if first < 0x80:
        return first, i
    count = first & 0x7F
    if count == 0 or count > 2 or i + count > len(data):
        raise ValueError("unsupported length")
    n = int.from_bytes(data[i:i + count], "big")
    if n < 0x80 or (count == 2 and n < 0x100):
        raise ValueError("non-minimal length")
    return n, i + count


def _read_int(data: bytes, i: int) -> tuple[int, int]:
    if i >= len(data) or data[i] != 0x02:
        raise ValueError("INTEGER expected")
    n, i = _read_len(data, i + 1)
    if n == 0 or i + n > len(data):
        raise ValueError("bad INTEGER length")
    body = data[i:i + n]
    if body[0] & 0x80:
        raise ValueError("negative INTEGER")
    if n > 1 and body[0] == 0 and not body[1] & 0x80:
        raise ValueError("non-minimal INTEGER")
    return int.from_bytes(body, "big"), i + n


def _parse_der(data: bytes) -> tuple[int, int]:
    if not data or data[0] != 0x30:
        raise ValueError("SEQUENCE expected")
    n, i = _read_len(data, 1)
    if i + n != len(data):
        raise ValueError("SEQUENCE length does not match the data")
    r, i = _read_int(data, i)
    s, i = _read_int(data, i)
    if i != len(data):
        raise ValueError("trailing data after s")
    return r, s


def _declared_der_size(data: bytes) -> int | None:
    """Total size a DER SEQUENCE header promises, or None if there is no usable header."""
    if len(data) < 2 or data[0] != 0x30:
        return None
    try:
        n, i = _read_len(data, 1)
    except ValueError:
        return None
    return i + n


def decode_signature(value: bytes) -> SignatureValue:
    """Decode an SM2 signature value in any accepted form; r and s must lie in [1, n-1].

    Raises :class:`InvalidSignature` when the value fits none of the forms.
    """
    r = s = None
    form = SignatureForm.DER
    try:
        r, s = _parse_der(value)
    except ValueError:
        declared = _declared_der_size(value)
        if declared is not None and len(value) < declared <= len(value) + 8:
            # Trailing zero bytes stripped: restore them and require a strict parse.
            try:
                r, s = _parse_der(value + b"\x00" * (declared - len(value)))
                form = SignatureForm.TRUNCATED_DER
            except ValueError:
                r = s = None
        if r is None and len(value) == 64:
            r, s = int.from_bytes(value[:32], "big"), int.from_bytes(value[32:], "big")
            form = SignatureForm.RAW
    if r is None or s is None:
        raise InvalidSignature("signature value is neither DER SEQUENCE{r,s} nor raw 64-byte r||s")
    if not (1 <= r < N and 1 <= s < N):
        raise InvalidSignature("signature r or s is outside [1, n-1]")
    return SignatureValue(r, s, form)


def decode_bit_string_signature(payload: bytes, unused_bits: int = 0) -> SignatureValue:
    """Decode a signature carried as the payload of a BIT STRING.

    ``unused_bits`` is the BIT STRING's first content octet. A named-bit style encoder cuts
    trailing zero bits: when fewer than eight were cut the value is complete and merely
    declares unused bits (about half of all signatures end in an even byte); when whole zero
    bytes were cut :func:`decode_signature` completes them. Either way the unused bits
    themselves must be zero.
    """
    if not 0 <= unused_bits <= 7:
        raise InvalidSignature("BIT STRING unused-bit count out of range")
    if unused_bits and payload and payload[-1] & ((1 << unused_bits) - 1):
        raise InvalidSignature("BIT STRING has non-zero unused bits")
    return decode_signature(payload)
