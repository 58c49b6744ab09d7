"""ASN.1 of GB/T 35275 / GM/T 0010 SignedData, where asn1crypto's CMS specs fall short.

GB/T 35275 is PKCS#7 with SM OIDs: its ContentInfo types ``1.2.156.10197.6.1.4.2.1`` (data)
and ``.2`` (signedData) are unknown to asn1crypto, which would leave the content as an opaque
ANY. These subclasses give both content types the spec of their PKCS#7 counterparts, without
touching asn1crypto's own classes (OIDs are registered only by :mod:`hsm.oids`).

:func:`scan_value` checks the whole TLV structure of untrusted input before asn1crypto
parses it lazily, and says how it departs from DER, for a reader's layout notes:
BouncyCastle, for one, writes CMS with BER indefinite lengths by default.
"""

from __future__ import annotations

from typing import ClassVar

from asn1crypto import cms, core

import hsm.oids  # noqa: F401  (registers the GB/T 35275 content types with asn1crypto)
from hsm import oids

ID_DATA = "1.2.840.113549.1.7.1"
ID_SIGNED_DATA = "1.2.840.113549.1.7.2"
DATA_TYPES = frozenset({ID_DATA, oids.GBT35275_DATA})
"""Content types that mean "arbitrary octets" (PKCS#7 / RFC 5652 data, GB/T 35275 data)."""
SIGNED_DATA_TYPES = frozenset({ID_SIGNED_DATA, oids.GBT35275_SIGNED_DATA})

MAX_DEPTH = 64


class SignedData(cms.SignedData):
    """CMS / PKCS#7 SignedData whose v1 content may be GB/T 35275 data."""

    def _encap_content_info_spec(self):
        # v1 is PKCS#7 (content [0] EXPLICIT ANY, an OCTET STRING for data); later versions
        # are CMS EncapsulatedContentInfo (always an OCTET STRING).
        if self["version"].native != "v1":
            return cms.EncapsulatedContentInfo
        return ContentInfo

    _spec_callbacks: ClassVar[dict] = {"encap_content_info": _encap_content_info_spec}


class ContentInfo(cms.ContentInfo):
    """ContentInfo that knows the GB/T 35275 data and signedData types."""

    _oid_specs: ClassVar[dict] = {
        "data": core.OctetString,
        "gbt35275_data": core.OctetString,
        "signed_data": SignedData,
        "gbt35275_signed_data": SignedData,
    }


def scan_value(data: bytes) -> tuple[int, frozenset[str]]:
    """Walk every TLV of the first BER/DER value in ``data``: its size, and how it departs
    from DER — indefinite lengths, long-form lengths that are not minimal, constructed
    (chunked) strings; no notes means DER (SET ordering aside).

    The walk works on offsets, never on copies, so hostile input costs time linear in its
    size. Raises ValueError when the value is truncated, a child overruns its parent, or the
    nesting is deeper than ``MAX_DEPTH``.
    """
    notes: set[str] = set()
    return _walk(data, 0, len(data), 0, notes), frozenset(notes)


_STRING_TAGS = frozenset({3, 4, 12, 18, 19, 20, 22, 26, 28, 30})


def _walk(data: bytes, pos: int, limit: int, depth: int, notes: set[str]) -> int:
    """The end offset of the TLV at ``pos``, which must lie within ``limit``."""
    if depth > MAX_DEPTH:
        raise ValueError(f"ASN.1 nested deeper than {MAX_DEPTH} levels")
    if pos + 2 > limit:
        raise ValueError(f"truncated ASN.1 header at offset {pos}")
    first = data[pos]
    constructed, universal, tag = bool(first & 0x20), first >> 6 == 0, first & 0x1F
    pos += 1
    if tag == 0x1F:  # high tag number: base-128 octets, the last without the top bit
        start = pos
        while pos < limit and data[pos] & 0x80:
            pos += 1
        if pos >= limit or pos - start > 3:
            raise ValueError("malformed or oversized ASN.1 tag number")
        pos += 1
        tag = -1
    if pos >= limit:
        raise ValueError("truncated ASN.1 length")
    length = data[pos]
    pos += 1
    if constructed and universal and tag in _STRING_TAGS:
        notes.add("constructed-string")
    if length == 0x80:
        if not constructed:
            raise ValueError("indefinite length on a primitive value")
        notes.add("indefinite-length")
        while True:
            if pos + 2 > limit:
                raise ValueError("indefinite-length value without end-of-contents")
            if data[pos] == 0 and data[pos + 1] == 0:
                return pos + 2
            pos = _walk(data, pos, limit, depth + 1, notes)
    if length & 0x80:
        count = length & 0x7F
        if count > 4 or pos + count > limit:
            raise ValueError("truncated or oversized ASN.1 length")
        size = int.from_bytes(data[pos:pos + count], "big")
        if data[pos] == 0 or size < 0x80:
            notes.add("non-minimal-length")
        pos += count
    else:
        size = length
    end = pos + size
    if end > limit:
        raise ValueError(f"ASN.1 value at offset {pos} runs {end - limit} bytes past its container")
    if constructed:
        while pos < end:
            pos = _walk(data, pos, end, depth + 1, notes)
    return end
