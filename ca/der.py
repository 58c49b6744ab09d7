"""A few DER encodings written by hand, for structures built thousands of times a minute.

asn1crypto is the spec of every structure we read and the reference of every one we write,
but building a value through it costs a tree of Python objects per field (a CMS SignedData
~12 ms). Signers that make the same structure again and again encode its constant parts
once with asn1crypto and splice them with the few fields that change, using these helpers;
their tests compare the result byte for byte with the asn1crypto build.
"""

from __future__ import annotations

from collections.abc import Iterable


def length(size: int) -> bytes:
    """The DER length octets of a value of ``size`` bytes (short form below 128, else minimal long form)."""
    if size < 0x80:
        return bytes((size,))
    octets = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes((0x80 | len(octets),)) + octets


def tlv(tag: int, content: bytes) -> bytes:
    """One DER value: a one-octet ``tag`` (class, constructed bit, number < 31), length, ``content``."""
    return bytes((tag,)) + length(len(content)) + content


def sequence(*parts: bytes) -> bytes:
    """SEQUENCE of the already-encoded ``parts``, in the order given."""
    return tlv(0x30, b"".join(parts))


def set_of(parts: Iterable[bytes], tag: int = 0x31) -> bytes:
    """SET OF the already-encoded ``parts``, sorted by their encodings as DER requires (X.690
    §11.6); ``tag`` 0xA0 gives the [0] IMPLICIT form CMS uses for signed attributes and certificates."""
    return tlv(tag, b"".join(sorted(parts)))


def octet_string(value: bytes) -> bytes:
    return tlv(0x04, bytes(value))


def value_size(data: bytes) -> int:
    """The size of the DER value (tag, length, content) at the start of ``data``: ValueError when
    its header is not DER-shaped (a one-octet tag, a definite length) or it runs past ``data``."""
    if len(data) < 2 or data[0] & 0x1F == 0x1F:
        raise ValueError("not a DER value with a one-octet tag")
    first = data[1]
    if first < 0x80:
        size, header = first, 2
    elif first == 0x80 or first - 0x80 > 4:
        raise ValueError("an indefinite or oversized length is not DER")
    else:
        count = first - 0x80
        size, header = int.from_bytes(data[2:2 + count], "big"), 2 + count
    if header + size > len(data):
        raise ValueError("the value runs past the end of the data")
    return header + size
