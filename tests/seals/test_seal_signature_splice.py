"""The seal signature written by splicing DER (seals.asn1.encode_*) is what asn1crypto writes
for the same TBS_Sign and SES_Signature, byte for byte, and reads back with its seal intact."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from asn1crypto import core

from ca import der
from hsm import oids
from seals.asn1 import (
    ExtensionDatas,
    SealTime,
    SignatureV4,
    TbsSignV4,
    encode_signature_v4,
    encode_tbs_sign_v4,
)

SEAL = der.sequence(der.tlv(0x16, b"ES"), der.octet_string(b"\x89PNG" + bytes(range(256)) * 600))
WHEN = datetime(2026, 12, 2, 6, 30, 15, tzinfo=UTC)
HASH = bytes(range(32))
SIGNATURE = b"\x30\x44\x02\x20" + b"\x01" * 32 + b"\x02\x20" + b"\x02" * 32
CERT = der.sequence(der.tlv(0x02, b"\x05")) * 3


def _time() -> SealTime:
    return SealTime(name="generalized", value=core.GeneralizedTime(WHEN))


@pytest.mark.parametrize("ext", [None, ExtensionDatas([{"extn_id": "1.2.3.4", "critical": True,
                                                         "extn_value": b"value"}])])
def test_spliced_signature_is_asn1cryptos_encoding(ext):
    fields = {"version": 4, "eseal": core.Any.load(SEAL), "time_info": _time(),
              "data_hash": core.OctetBitString(HASH), "property_info": "/Doc_0/Signs/Sign_0/Signature.xml"}
    if ext is not None:
        fields["ext_datas"] = ext
    reference_tbs = TbsSignV4(fields).dump()
    tbs = encode_tbs_sign_v4(eseal=SEAL, time_info=_time().dump(), data_hash=HASH,
                             property_info=fields["property_info"],
                             ext_datas=None if ext is None else ext.dump())
    assert tbs == reference_tbs
    reference = SignatureV4({"to_sign": TbsSignV4.load(tbs), "cert": CERT, "signature_alg_id": oids.SM2_WITH_SM3,
                             "signature": core.OctetBitString(SIGNATURE)}).dump()
    value = encode_signature_v4(tbs=tbs, cert=CERT, algorithm=oids.SM2_WITH_SM3, signature=SIGNATURE)
    assert value == reference
    parsed = SignatureV4.load(value, strict=True)
    assert parsed["to_sign"]["eseal"].dump() == SEAL and parsed["to_sign"].dump() == tbs


def test_a_seal_with_bytes_after_it_is_refused():
    with pytest.raises(ValueError, match="bytes follow it"):
        encode_tbs_sign_v4(eseal=SEAL + b"\x00", time_info=_time().dump(), data_hash=HASH, property_info="/x")
    with pytest.raises(ValueError):
        encode_tbs_sign_v4(eseal=SEAL[:-1], time_info=_time().dump(), data_hash=HASH, property_info="/x")
