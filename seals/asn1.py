"""GB/T 38540-2020 (v4) and GM/T 0031-2014 (v1) e-seal and seal-signature structures, as data.

Both standards' ASN.1 is declared here once, in the asn1crypto style: one class per
production, parse and dump symmetrical. The two versions share SES_Header, the picture and
the extension data, and differ in the property (v1 has no certListType and uses UTCTime),
in the seal (v1 nests the maker's signature in SES_SignInfo) and in the signature (v1 keeps
cert and algorithm inside TBS_Sign and writes timeInfo as a BIT STRING of text).

Which layout a blob uses is decided by :mod:`seals.layout` from its structure, never from the
version number (real files carry 1, 2 and 4 in v1 layouts). Time fields are declared as
:class:`SealTime`, which accepts both UTCTime and GeneralizedTime: real producers mix them,
and their text is read leniently by :func:`seals.layout.parse_time`, not by asn1crypto.
"""

from __future__ import annotations

from asn1crypto import core

import hsm.oids  # noqa: F401 - registers the SM OIDs
from ca import der


class SealTime(core.Choice):
    _alternatives = [
        ("generalized", core.GeneralizedTime),
        ("utc", core.UTCTime),
    ]


class ExtData(core.Sequence):
    _fields = [
        ("extn_id", core.ObjectIdentifier),
        ("critical", core.Boolean, {"default": False}),
        ("extn_value", core.OctetString),
    ]


class ExtensionDatas(core.SequenceOf):
    _child_spec = ExtData


class Header(core.Sequence):
    """SES_Header: ID "ES", version, vendor id."""

    _fields = [
        ("id", core.IA5String),
        ("version", core.Integer),
        ("vid", core.IA5String),
    ]


class CertInfoList(core.SequenceOf):
    _child_spec = core.OctetString


class AnyList(core.SequenceOf):
    """A list whose items real producers type inconsistently (dms360 puts an IA5String "1"
    where GM/T 0031 wants certificate OCTET STRINGs); each item is read as its contents."""

    _child_spec = core.Any


class CertDigestObj(core.Sequence):
    _fields = [
        ("type", core.PrintableString),
        ("value", core.OctetString),
    ]


class CertDigestList(core.SequenceOf):
    _child_spec = CertDigestObj


class PropertyInfoV4(core.Sequence):
    """SES_ESPropertyInfo (v4). certList's form follows certListType: 1 certs, 2 digests."""

    _fields = [
        ("type", core.Integer),
        ("name", core.UTF8String),
        ("cert_list_type", core.Integer),
        ("cert_list", core.Any),
        ("create_date", SealTime),
        ("valid_start", SealTime),
        ("valid_end", SealTime),
    ]


class PropertyInfoV1(core.Sequence):
    """SES_ESPropertyInfo (GM/T 0031-2014): certificates only, UTCTime dates."""

    _fields = [
        ("type", core.Integer),
        ("name", core.UTF8String),
        ("cert_list", AnyList),
        ("create_date", SealTime),
        ("valid_start", SealTime),
        ("valid_end", SealTime),
    ]


class PictureInfo(core.Sequence):
    """SES_ESPictrueInfo (sic): image type, data, and the printed size in millimetres."""

    _fields = [
        ("type", core.IA5String),
        ("data", core.OctetString),
        ("width", core.Integer),
        ("height", core.Integer),
    ]


class SealInfoV4(core.Sequence):
    _fields = [
        ("header", Header),
        ("es_id", core.IA5String),
        ("property", PropertyInfoV4),
        ("picture", PictureInfo),
        ("ext_datas", ExtensionDatas, {"optional": True}),
    ]


class SealInfoV1(core.Sequence):
    _fields = [
        ("header", Header),
        ("es_id", core.IA5String),
        ("property", PropertyInfoV1),
        ("picture", PictureInfo),
        ("ext_datas", ExtensionDatas, {"optional": True}),
    ]


class SealV4(core.Sequence):
    """SESeal (GB/T 38540): the maker signs DER(SES_SealInfo). "v5" adds [0] timeStamp."""

    _fields = [
        ("seal_info", SealInfoV4),
        ("cert", core.OctetString),
        ("sign_alg_id", core.ObjectIdentifier),
        ("signed_value", core.OctetBitString),
        ("time_stamp", core.OctetBitString, {"explicit": 0, "optional": True}),
    ]


class SignInfoV1(core.Sequence):
    _fields = [
        ("cert", core.OctetString),
        ("signature_algorithm", core.ObjectIdentifier),
        ("sign_data", core.OctetBitString),
    ]


class SealV1(core.Sequence):
    """SESeal (GM/T 0031-2014): the maker signs SEQUENCE{sealInfo, cert, algorithm}."""

    _fields = [
        ("seal_info", SealInfoV1),
        ("sign_info", SignInfoV1),
    ]


class MakerSignedV1(core.Sequence):
    """What a v1 seal maker signs."""

    _fields = [
        ("seal_info", SealInfoV1),
        ("cert", core.OctetString),
        ("signature_algorithm", core.ObjectIdentifier),
    ]


class TbsSignV4(core.Sequence):
    _fields = [
        ("version", core.Integer),
        ("eseal", core.Any),  # a seal of either layout, kept as its bytes
        ("time_info", SealTime),
        ("data_hash", core.OctetBitString),
        ("property_info", core.IA5String),
        ("ext_datas", ExtensionDatas, {"explicit": 0, "optional": True}),
    ]


class SignatureV4(core.Sequence):
    """SES_Signature (GB/T 38540): the signer signs TBS_Sign as its bytes stand."""

    _fields = [
        ("to_sign", TbsSignV4),
        ("cert", core.OctetString),
        ("signature_alg_id", core.ObjectIdentifier),
        ("signature", core.OctetBitString),
        ("time_stamp", core.OctetBitString, {"explicit": 0, "optional": True}),
    ]


class TbsSignV1(core.Sequence):
    _fields = [
        ("version", core.Integer),
        ("eseal", core.Any),
        ("time_info", core.OctetBitString),  # ASCII text, e.g. "20211014033404Z"
        ("data_hash", core.OctetBitString),
        ("property_info", core.IA5String),
        ("cert", core.OctetString),
        ("signature_algorithm", core.ObjectIdentifier),
    ]


class SignatureV1(core.Sequence):
    _fields = [
        ("to_sign", TbsSignV1),
        ("signature", core.OctetBitString),
    ]


# -- writing a seal signature by splicing ---------------------------------------------------------

def encode_tbs_sign_v4(*, eseal: bytes, time_info: bytes, data_hash: bytes, property_info: str,
                       ext_datas: bytes | None = None) -> bytes:
    """DER TBS_Sign (v4) around the seal's own bytes, as :class:`TbsSignV4` dumps it.

    Every OFD seal signature embeds the whole seal — 100 kB with its picture — and building
    the structure with asn1crypto parsed and re-serialised it each time (~1 ms a licence):
    here the seal and the DER ``time_info`` (a GeneralizedTime) are spliced in as given.
    ``ext_datas`` is the DER ExtensionDatas, written [0] EXPLICIT. ValueError when ``eseal``
    is not exactly one value (trailing bytes would make the signature unreadable).
    """
    size = der.value_size(eseal)
    if size != len(eseal):
        raise ValueError(f"the seal is not one ASN.1 value: {len(eseal) - size} bytes follow it")
    parts = [der.tlv(0x02, b"\x04"), bytes(eseal), bytes(time_info), _bit_string(data_hash),
             core.IA5String(property_info).dump()]
    if ext_datas is not None:
        parts.append(der.tlv(0xA0, bytes(ext_datas)))
    return der.sequence(*parts)


def encode_signature_v4(*, tbs: bytes, cert: bytes, algorithm: str, signature: bytes) -> bytes:
    """DER SES_Signature (v4) of the signed ``tbs`` bytes, as :class:`SignatureV4` dumps it."""
    return der.sequence(bytes(tbs), der.octet_string(cert), core.ObjectIdentifier(algorithm).dump(),
                        _bit_string(signature))


def _bit_string(data: bytes) -> bytes:
    return der.tlv(0x03, b"\x00" + bytes(data))
