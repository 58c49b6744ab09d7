"""Making GB/T 38540-2020 (v4) seals and seal signatures — the signing side of the seals room.

We only ever write v4, in DER, with GeneralizedTime in UTC and SM2-with-SM3. The maker signs
DER(SES_SealInfo); a signer signs DER(TBS_Sign). Both are produced through a
:class:`hsm.keystore.Signer`, so private keys stay in the key store. Reading what is made
here goes through the same readers as any producer's file (:mod:`seals.seal`,
:mod:`seals.seal_signature`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from asn1crypto import core

from hsm import oids
from hsm.keystore import Signer
from hsm.sm2 import remember_message_prefix

from .asn1 import (
    CertInfoList,
    ExtensionDatas,
    Header,
    PictureInfo,
    PropertyInfoV4,
    SealInfoV4,
    SealTime,
    SealV4,
    encode_signature_v4,
    encode_tbs_sign_v4,
)
from .errors import SealError

VID = "zhengyin"
PICTURE_TYPES = ("png", "jpg", "gif", "bmp", "ofd")


@dataclass(frozen=True)
class SealContent:
    """What a seal says about itself (GB/T 38540 §7): identity, holder certificates, picture."""

    es_id: str
    seal_type: int
    name: str
    certificates: Sequence[bytes]         # DER of each certificate allowed to sign with the seal
    create_date: datetime
    valid_start: datetime
    valid_end: datetime
    picture_type: str
    picture: bytes
    width_mm: int
    height_mm: int
    vid: str = VID


def _gt(moment: datetime) -> SealTime:
    if moment.tzinfo is None:
        raise SealError("seal times must be timezone-aware")
    return SealTime(name="generalized",
                    value=core.GeneralizedTime(moment.astimezone(UTC).replace(microsecond=0)))


def _bit_string(data: bytes) -> core.OctetBitString:
    return core.OctetBitString(data)


def _ext_datas(value) -> ExtensionDatas:
    return value if isinstance(value, ExtensionDatas) else ExtensionDatas(value)


def _picture_label(kind: str) -> str:
    """As written by the producers we interoperate with: "PNG", "GIF", … but "ofd"."""
    return "ofd" if kind.lower() == "ofd" else kind.upper()


def seal_info(content: SealContent) -> SealInfoV4:
    if not content.certificates:
        raise SealError("a seal needs at least one signer certificate")
    moments = (content.create_date, content.valid_start, content.valid_end)
    if any(m.tzinfo is None for m in moments):
        raise SealError("seal times must be timezone-aware")
    if not content.valid_start < content.valid_end:
        raise SealError("a seal's validity must end after it starts")
    if content.picture_type.lower() not in PICTURE_TYPES:
        raise SealError(f"picture type must be one of {', '.join(PICTURE_TYPES)}")
    if not (0 < content.width_mm <= 1000 and 0 < content.height_mm <= 1000):
        raise SealError("picture size is given in millimetres (1..1000)")
    certs = CertInfoList([core.OctetString(c) for c in content.certificates])
    return SealInfoV4({
        "header": Header({"id": "ES", "version": 4, "vid": content.vid}),
        "es_id": content.es_id,
        "property": PropertyInfoV4({
            "type": content.seal_type, "name": content.name, "cert_list_type": 1,
            "cert_list": core.Any.load(certs.dump()),
            "create_date": _gt(content.create_date), "valid_start": _gt(content.valid_start),
            "valid_end": _gt(content.valid_end),
        }),
        "picture": PictureInfo({"type": _picture_label(content.picture_type), "data": content.picture,
                                "width": content.width_mm, "height": content.height_mm}),
    })


def make_seal(content: SealContent, *, maker_certificate: bytes, maker: Signer) -> bytes:
    """DER SESeal v4: SES_SealInfo signed by the seal maker (制章人)."""
    info = seal_info(content)
    tbs = info.dump()
    return SealV4({
        "seal_info": SealInfoV4.load(tbs),
        "cert": maker_certificate,
        "sign_alg_id": oids.SM2_WITH_SM3,
        "signed_value": _bit_string(maker.sign(tbs)),
    }).dump()


def sign_with_seal(seal: bytes, *, data_hash: bytes, property_info: str, signer: Signer,
                   signer_certificate: bytes, time: datetime,
                   ext_datas: ExtensionDatas | None = None) -> bytes:
    """DER SES_Signature v4 over TBS_Sign{4, seal, time, dataHash, propertyInfo}.

    The caller must already have checked that the seal is active and lists the signer's
    certificate; this function only encodes and signs.
    """
    # Spliced DER (seals.asn1.encode_*): the 100 kB seal goes in as its bytes, not re-encoded.
    tbs = encode_tbs_sign_v4(eseal=seal, time_info=_gt(time).dump(), data_hash=data_hash,
                             property_info=property_info,
                             ext_datas=None if ext_datas is None else _ext_datas(ext_datas).dump())
    _remember_seal_prefix(tbs, seal, signer)
    return encode_signature_v4(tbs=tbs, cert=signer_certificate, algorithm=oids.SM2_WITH_SM3,
                               signature=signer.sign(tbs))


def _remember_seal_prefix(tbs: bytes, seal: bytes, signer: Signer) -> None:
    """Tell the signing digest that this signer's TBS_Sign begins with these bytes: the header,
    the version and the whole seal, identical in every signature a seal makes (while the length
    of what follows does not change), so SM3 goes over the seal (tens of kB) once, not once a licence.
    Only speed depends on this: the prefix is compared byte for byte with what is hashed."""
    header = 2 + (tbs[1] & 0x7F if tbs[1] & 0x80 else 0)
    start = header + 3  # INTEGER 4
    if tbs.startswith(seal, start):
        remember_message_prefix(signer.public_key().point, memoryview(tbs)[:start + len(seal)])
