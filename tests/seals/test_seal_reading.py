"""Reading real seals of every layout; maker signatures over exactly what each maker signed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from asn1crypto import x509
from hypothesis import given, settings
from hypothesis import strategies as st

from hsm.errors import InvalidSignature
from hsm.signature import decode_bit_string_signature
from hsm.sm2 import SM2PublicKey
from seals.errors import SealFormatError
from seals.seal import read_seal
from seals.time import parse_time
from support.paths import INTEROP

SEALS = INTEROP / "seals"

# file: (layout, header version, BER?, maker signature verifies?) — as SOURCES.md records
EXPECTED = {
    "ofdrw_UserV1.esl": ("v1", 1, False, True),
    "ofdrw_UserV4.esl": ("v4", 4, False, True),
    "ofdrw_UserV5.esl": ("v4", 5, False, True),
    "ofdrw_UserV5_ts.esl": ("v4", 5, False, True),
    "ofdrw_hist_UserV1_BER.esl": ("v1", 1, True, True),
    "ofdrw_hist_UserV4_BER.esl": ("v4", 4, True, True),
    "ofdrw_SESealData_hebeigede_v4.der": ("v4", 4, False, False),
}


def _maker_verifies(seal) -> bool:
    key = SM2PublicKey.from_spki(x509.Certificate.load(seal.maker_certificate).public_key)
    sig = decode_bit_string_signature(seal.maker_signature.payload, seal.maker_signature.unused_bits)
    try:
        key.verify(sig, seal.maker_signed_bytes)
    except InvalidSignature:
        return False
    return True


@pytest.mark.interop
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_real_seals(name):
    layout, version, ber, verifies = EXPECTED[name]
    seal = read_seal((SEALS / name).read_bytes())
    assert (seal.layout, seal.header_version, seal.ber) == (layout, version, ber)
    assert _maker_verifies(seal) is verifies
    assert seal.valid_start <= seal.valid_end and seal.valid_end.tzinfo is UTC
    assert seal.picture.data and seal.picture.width_mm > 0
    assert seal.certificates  # all of these list certificates (certListType 1)
    for der in seal.certificates:
        x509.Certificate.load(der).public_key  # noqa: B018 - each listed certificate parses


@pytest.mark.interop
def test_v5_timestamp_and_v4_details():
    seal = read_seal((SEALS / "ofdrw_UserV5_ts.esl").read_bytes())
    assert seal.time_stamp == b"\x01\x02\x03"
    v4 = read_seal((SEALS / "ofdrw_UserV4.esl").read_bytes())
    assert (v4.name, v4.seal_type, v4.cert_list_type, v4.vid) == ("OFD R&W 测试用印章", 3, 1, "OFDR&WTest")
    assert v4.picture.type == "PNG" and (v4.picture.width_mm, v4.picture.height_mm) == (40, 40)
    assert v4.picture.data.startswith(b"\x89PNG")
    assert v4.valid_end == datetime(2022, 4, 22, 2, 9, tzinfo=UTC)
    hebei = read_seal((SEALS / "ofdrw_SESealData_hebeigede_v4.der").read_bytes())
    assert len(hebei.certificates) == 2 and hebei.picture.type == "GIF"


@pytest.mark.interop
def test_a_changed_seal_no_longer_verifies():
    data = bytearray((SEALS / "ofdrw_UserV4.esl").read_bytes())
    i = data.find("测试".encode())
    data[i:i + 6] = "伪造".encode()
    seal = read_seal(bytes(data))
    assert "伪造" in seal.name and not _maker_verifies(seal)


@pytest.mark.parametrize("text, expected", [
    ("20200422020900Z", datetime(2020, 4, 22, 2, 9, tzinfo=UTC)),
    ("200422021807Z", datetime(2020, 4, 22, 2, 18, 7, tzinfo=UTC)),
    ("220725214639Z", datetime(2022, 7, 25, 21, 46, 39, tzinfo=UTC)),
    ("20220318213217", datetime(2022, 3, 18, 21, 32, 17, tzinfo=UTC)),
    ("20211014033404Z", datetime(2021, 10, 14, 3, 34, 4, tzinfo=UTC)),
    ("2020-01-25T07:31:56.377Z", datetime(2020, 1, 25, 7, 31, 56, 377000, tzinfo=UTC)),
    ("2022-03-24 08:54:12", datetime(2022, 3, 24, 8, 54, 12, tzinfo=UTC)),
    ("20221031141634+0800", datetime(2022, 10, 31, 14, 16, 34, tzinfo=timezone(timedelta(hours=8)))),
    ("991231235959Z", datetime(1999, 12, 31, 23, 59, 59, tzinfo=UTC)),
])
def test_time_spellings(text, expected):
    assert parse_time(text) == expected


@pytest.mark.parametrize("text", ["", "yesterday", "20221345000000Z", "2022-02-30 00:00:00", "2022"])
def test_bad_times_are_errors(text):
    with pytest.raises(SealFormatError):
        parse_time(text)


@pytest.mark.parametrize("data", [b"", b"\x30\x00", b"\x30\x03\x02\x01\x04", b"PK\x03\x04", bytes(100)])
def test_garbage_is_a_format_error(data):
    with pytest.raises(SealFormatError):
        read_seal(data)


_V4 = (SEALS / "ofdrw_UserV4.esl").read_bytes() if (SEALS / "ofdrw_UserV4.esl").exists() else b""


@pytest.mark.interop
@settings(max_examples=200, deadline=None)
@given(cut=st.integers(min_value=0, max_value=17000), flip=st.integers(min_value=0), bit=st.integers(0, 7))
def test_damage_is_a_format_error_or_a_failed_signature(cut, flip, bit):
    data = bytearray(_V4[: len(_V4) - cut])
    data[flip % len(data)] ^= 1 << bit
    try:
        seal = read_seal(bytes(data))
    except SealFormatError:
        return
    if seal.maker_signed_bytes != read_seal(_V4).maker_signed_bytes:
        assert not _maker_verifies(seal)
