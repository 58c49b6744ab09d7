"""Reading an electronic seal signature (SES_Signature) of any layout.

v4 (GB/T 38540): SEQUENCE{TBS_Sign, cert, signatureAlgID, signature, [0] timeStamp OPTIONAL}.
v1 (GM/T 0031-2014): SEQUENCE{TBS_Sign (with cert and algorithm inside), signature}. The
layout follows from the number and kinds of elements; real files label v1 layouts as
version 1, 2 and even 4. What the signer signed is TBS_Sign as it stands in the file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from asn1crypto import core

from .asn1 import SignatureV1, SignatureV4
from .errors import SealFormatError
from .seal import PARSE_ERRORS, BitString, Seal, ext_data_tuples, first_element, read_bit_string, read_seal
from .time import parse_time

MAX_SIGNATURE_SIZE = 32 * 1024 * 1024


@dataclass(frozen=True)
class SealSignature:
    layout: str                      # "v4" or "v1", by structure
    version: int                     # TBS_Sign.version as written
    seal: Seal
    time_info: datetime
    data_hash: BitString
    property_info: str
    signer_certificate: bytes
    algorithm: str
    signature: BitString
    signed_bytes: bytes              # TBS_Sign exactly as in the file
    time_stamp: bytes | None = None
    ext_datas: tuple[tuple[str, bool, bytes], ...] = field(default_factory=tuple)


def _layout(data: bytes) -> str:
    try:
        outer = core.Sequence.load(data, strict=True)
        count = len(outer)
    except PARSE_ERRORS as exc:
        raise SealFormatError(f"not an ASN.1 SEQUENCE: {exc}") from exc
    if count == 2:
        return "v1"
    if count in (4, 5):
        return "v4"
    raise SealFormatError(f"a seal signature has 2 (v1) or 4-5 (v4) elements, not {count}")


def read_seal_signature(data: bytes) -> SealSignature:
    """Parse SignedValue.dat of a Seal-type OFD signature. Raises SealFormatError otherwise."""
    if not data:
        raise SealFormatError("empty seal signature")
    if len(data) > MAX_SIGNATURE_SIZE:
        raise SealFormatError(f"seal signature larger than {MAX_SIGNATURE_SIZE} bytes")
    layout = _layout(data)
    try:
        return _read_v4(data) if layout == "v4" else _read_v1(data)
    except SealFormatError:
        raise
    except PARSE_ERRORS as exc:
        raise SealFormatError(f"malformed {layout} seal signature: {exc}") from exc


def _read_v4(data: bytes) -> SealSignature:
    value = SignatureV4.load(data, strict=True)
    tbs = value["to_sign"]
    exts = tbs["ext_datas"]
    stamp = value["time_stamp"]
    return SealSignature(
        layout="v4", version=tbs["version"].native, seal=read_seal(tbs["eseal"].dump()),
        time_info=parse_time(tbs["time_info"].chosen.contents.decode("ascii")),
        data_hash=read_bit_string(tbs["data_hash"]), property_info=tbs["property_info"].native,
        signer_certificate=value["cert"].native, algorithm=value["signature_alg_id"].dotted,
        signature=read_bit_string(value["signature"]), signed_bytes=first_element(data),
        time_stamp=read_bit_string(stamp).payload if stamp.contents else None,
        ext_datas=ext_data_tuples(exts),
    )


def _read_v1(data: bytes) -> SealSignature:
    value = SignatureV1.load(data, strict=True)
    tbs = value["to_sign"]
    time_text = read_bit_string(tbs["time_info"]).payload.decode("ascii", errors="strict")
    return SealSignature(
        layout="v1", version=tbs["version"].native, seal=read_seal(tbs["eseal"].dump()),
        time_info=parse_time(time_text), data_hash=read_bit_string(tbs["data_hash"]),
        property_info=tbs["property_info"].native, signer_certificate=tbs["cert"].native,
        algorithm=tbs["signature_algorithm"].dotted, signature=read_bit_string(value["signature"]),
        signed_bytes=first_element(data),
    )
