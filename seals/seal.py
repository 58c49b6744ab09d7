"""Reading an e-seal (SESeal) of any layout into one domain object.

The layout is decided by structure: a v4 seal's second element is the maker certificate (an
OCTET STRING); a v1 seal's second element is SES_SignInfo (a SEQUENCE). The header's version
number is reported, not trusted. What the maker signed is kept exactly:

* v4 (and "v5"): the bytes of SES_SealInfo as they stand in the file — for the old BER
  indefinite-length ofdrw seals that is the BER, which is what their maker signed;
* v1: DER of SEQUENCE{sealInfo, cert, algorithm} — the v1 makers sign the DER form even when
  they write BER (SOURCES.md: ofdrw_hist_UserV1_BER.esl verifies only that way).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from asn1crypto import core, parser

from hsm.errors import ASN1_PARSE_ERRORS

from .asn1 import CertDigestList, CertInfoList, MakerSignedV1, SealV1, SealV4
from .errors import SealFormatError
from .time import parse_time

PARSE_ERRORS = ASN1_PARSE_ERRORS
MAX_SEAL_SIZE = 16 * 1024 * 1024


@dataclass(frozen=True)
class Picture:
    type: str
    data: bytes
    width_mm: int
    height_mm: int


@dataclass(frozen=True)
class CertDigest:
    algorithm: str
    value: bytes


@dataclass(frozen=True)
class BitString:
    """A BIT STRING's payload and its unused-bit count, exactly as found."""

    payload: bytes
    unused_bits: int


@dataclass(frozen=True)
class Seal:
    layout: str                      # "v4" or "v1", by structure
    header_version: int              # as written (1, 2, 4, 5 …)
    vid: str
    es_id: str
    seal_type: int
    name: str
    cert_list_type: int              # 1 certificates, 2 digests (v1 seals: always 1)
    certificates: tuple[bytes, ...]  # DER of each listed certificate
    cert_digests: tuple[CertDigest, ...]
    create_date: datetime
    valid_start: datetime
    valid_end: datetime
    picture: Picture
    maker_certificate: bytes
    maker_algorithm: str
    maker_signature: BitString
    maker_signed_bytes: bytes
    ber: bool                        # the file used BER (indefinite lengths), not DER
    time_stamp: bytes | None = None  # "v5" [0] timeStamp payload
    ext_datas: tuple[tuple[str, bool, bytes], ...] = field(default_factory=tuple)
    encoded: bytes = b""             # the seal's bytes as received


def read_bit_string(value: core.OctetBitString) -> BitString:
    contents = value.contents or b""
    if not contents or contents[0] > 7:
        raise SealFormatError("malformed BIT STRING")
    return BitString(contents[1:], contents[0])


def ext_data_tuples(exts) -> tuple[tuple[str, bool, bytes], ...]:
    """ExtensionDatas as (OID, critical, value) tuples; absent gives ()."""
    if not exts.contents:
        return ()
    return tuple((e["extn_id"].dotted, bool(e["critical"].native), e["extn_value"].native) for e in exts)


def _time(value) -> datetime:
    return parse_time(value.chosen.contents.decode("ascii", errors="strict"))


MAX_DEPTH = 32


def uses_indefinite_length(data: bytes, depth: int = 0) -> bool:
    """True when any constructed value in ``data`` has a BER indefinite length (0x80)."""
    if depth > MAX_DEPTH:
        raise SealFormatError("ASN.1 nested too deeply")
    offset = 0
    while offset < len(data):
        try:
            _cls, method, _tag, header, contents, trailer = parser.parse(data[offset:])
        except ValueError as exc:
            raise SealFormatError(f"malformed ASN.1: {exc}") from exc
        if method == 1:
            if header[-1:] == b"\x80" or uses_indefinite_length(contents, depth + 1):
                return True
        offset += len(header) + len(contents) + len(trailer)
    return False


def first_element(data: bytes) -> bytes:
    """The outer SEQUENCE's first element as it stands in ``data`` (BER lengths and all)."""
    _c, _m, _t, _h, contents, _tr = parser.parse(data)
    _c, _m, _t, header, inner, trailer = parser.parse(contents)
    return header + inner + trailer


def _layout(data: bytes) -> str:
    try:
        outer = core.Sequence.load(data, strict=True)
        second = outer[1] if len(outer) >= 2 else None
    except PARSE_ERRORS as exc:
        raise SealFormatError(f"not an ASN.1 SEQUENCE: {exc}") from exc
    if second is None:
        raise SealFormatError("too few elements for a seal")
    tag = (second.class_, second.method, second.tag)
    if tag == (0, 0, 4):
        return "v4"
    if tag == (0, 1, 16):
        return "v1"
    raise SealFormatError("neither a v4 seal (maker certificate second) nor a v1 seal (SES_SignInfo second)")


def _certificates(cert_list_type: int, cert_list: core.Asn1Value
                  ) -> tuple[tuple[bytes, ...], tuple[CertDigest, ...]]:
    raw = cert_list.dump()
    forms = [CertInfoList, CertDigestList] if cert_list_type != 2 else [CertDigestList]
    for spec in forms:
        try:
            parsed = spec.load(raw, strict=True)
            if spec is CertInfoList:
                return tuple(item.native for item in parsed), ()
            return (), tuple(CertDigest(item["type"].native, item["value"].native) for item in parsed)
        except PARSE_ERRORS:
            continue
    raise SealFormatError(f"certList does not match certListType {cert_list_type}")


def read_seal(data: bytes) -> Seal:
    """Parse an SESeal (v4, "v5" or v1; DER or BER). Raises SealFormatError on anything else."""
    if not data:
        raise SealFormatError("empty seal data")
    if len(data) > MAX_SEAL_SIZE:
        raise SealFormatError(f"seal larger than {MAX_SEAL_SIZE} bytes")
    layout = _layout(data)
    try:
        if layout == "v4":
            return _read_v4(data)
        return _read_v1(data)
    except SealFormatError:
        raise
    except PARSE_ERRORS as exc:
        raise SealFormatError(f"malformed {layout} seal: {exc}") from exc


def _common(info) -> dict:
    header, prop, picture = info["header"], info["property"], info["picture"]
    if header["id"].native != "ES":
        raise SealFormatError(f"seal header ID is {header['id'].native!r}, not 'ES'")
    exts = info["ext_datas"]
    return {
        "header_version": header["version"].native, "vid": header["vid"].native,
        "es_id": info["es_id"].native, "seal_type": prop["type"].native, "name": prop["name"].native,
        "create_date": _time(prop["create_date"]), "valid_start": _time(prop["valid_start"]),
        "valid_end": _time(prop["valid_end"]),
        "picture": Picture(picture["type"].native, picture["data"].native, picture["width"].native,
                           picture["height"].native),
        "ext_datas": ext_data_tuples(exts),
    }


def _read_v4(data: bytes) -> Seal:
    seal = SealV4.load(data, strict=True)
    info = seal["seal_info"]
    prop = info["property"]
    list_type = prop["cert_list_type"].native
    certs, digests = _certificates(list_type, prop["cert_list"])
    stamp = seal["time_stamp"]
    return Seal(layout="v4", cert_list_type=list_type, certificates=certs, cert_digests=digests,
                maker_certificate=seal["cert"].native, maker_algorithm=seal["sign_alg_id"].dotted,
                maker_signature=read_bit_string(seal["signed_value"]), maker_signed_bytes=first_element(data),
                ber=uses_indefinite_length(data),
                time_stamp=read_bit_string(stamp).payload
                if stamp.contents else None,
                encoded=data, **_common(info))


def _read_v1(data: bytes) -> Seal:
    seal = SealV1.load(data, strict=True)
    info, sign_info = seal["seal_info"], seal["sign_info"]
    certs = tuple(item.contents for item in info["property"]["cert_list"])
    signed = MakerSignedV1({
        "seal_info": info.copy(), "cert": sign_info["cert"].copy(),
        "signature_algorithm": sign_info["signature_algorithm"].copy(),
    })
    return Seal(layout="v1", cert_list_type=1, certificates=certs, cert_digests=(),
                maker_certificate=sign_info["cert"].native,
                maker_algorithm=sign_info["signature_algorithm"].dotted,
                maker_signature=read_bit_string(sign_info["sign_data"]),
                maker_signed_bytes=signed.dump(force=True), ber=uses_indefinite_length(data),
                encoded=data, **_common(info))
