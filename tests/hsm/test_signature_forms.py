"""The SM2 signature forms found in real files, and how verification treats each.

hsm.signature accepts exactly three forms: strict DER ``SEQUENCE{r, s}``, raw 64-byte
``r || s``, and DER whose trailing zero bytes were stripped (a BIT STRING written the way a
named-bit list is, as in an ICBC file: 7 unused bits and one byte short). Everything else,
including r or s outside [1, n-1], is :class:`InvalidSignature`, and a value that cannot be
read never verifies.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from hsm.backends import available, get_backend
from hsm.curve import N
from hsm.errors import InvalidSignature
from hsm.hazmat import SM2PrivateKey
from hsm.signature import (
    SignatureForm,
    SignatureValue,
    decode_bit_string_signature,
    decode_signature,
    encode_der,
)
from hsm.sm2 import SM2PublicKey

BACKENDS = available()
scalars = st.integers(min_value=1, max_value=N - 1)


def raw(r: int, s: int) -> bytes:
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def named_bit_encode(der: bytes) -> tuple[bytes, int]:
    """(payload, unused bits) of a BIT STRING holding ``der`` with trailing zero bits removed,
    as X.690 §11.2.2 encodes a named-bit list."""
    payload = der.rstrip(b"\x00")
    if not payload:
        return b"", 0
    last = payload[-1]
    return payload, (last & -last).bit_length() - 1


@pytest.fixture(params=BACKENDS)
def backend(request, monkeypatch):
    monkeypatch.setenv("ZHENGYIN_SM2_BACKEND", request.param)
    return request.param


# ---- encoding and the three accepted forms ---------------------------------------------------

def test_encode_der_known_values():
    assert encode_der(1, 1) == bytes.fromhex("3006020101020101")
    assert encode_der(0x7F, 0x80) == bytes.fromhex("30070201 7f020200 80".replace(" ", ""))
    der = encode_der(N - 1, N - 1)
    assert der[:4] == bytes.fromhex("30460221") and der[4] == 0  # sign byte before 0xFF...
    assert len(der) == 72


@given(scalars, scalars)
def test_der_roundtrip(r, s):
    der = encode_der(r, s)
    sig = decode_signature(der)
    assert sig == SignatureValue(r, s, SignatureForm.DER)
    assert sig.to_der() == der
    assert sig.to_raw() == raw(r, s)


@given(scalars, scalars)
def test_raw_roundtrip(r, s):
    sig = decode_signature(raw(r, s))
    assert sig == SignatureValue(r, s, SignatureForm.RAW)


@given(scalars, st.integers(min_value=1, max_value=2**200), st.integers(min_value=1, max_value=8))
def test_truncated_der_roundtrip(r, s_high, zero_bytes):
    s = s_high << (8 * zero_bytes)
    assume(s < N)
    der = encode_der(r, s)
    payload = der.rstrip(b"\x00")
    assert len(der) - len(payload) >= zero_bytes
    assume(len(der) - len(payload) <= 8)
    assume(len(payload) != 64)
    sig = decode_signature(payload)
    assert sig == SignatureValue(r, s, SignatureForm.TRUNCATED_DER)
    assert sig.to_der() == der


def test_truncated_der_more_than_eight_bytes_short_is_rejected():
    s = 0x1234 << (8 * 9)
    der = encode_der(5, s)
    payload = der.rstrip(b"\x00")
    assert len(der) - len(payload) == 9
    with pytest.raises(InvalidSignature):
        decode_signature(payload)
    assert decode_signature(der[:-8]).form is SignatureForm.TRUNCATED_DER


def test_truncated_der_is_preferred_to_raw_for_64_bytes():
    # A 72-byte DER with 8 trailing zero bytes cut is 64 bytes long: it reads as truncated DER.
    r = N - 1
    s = (N - 1) >> 64 << 64
    der = encode_der(r, s)
    assert len(der) == 72 and der.endswith(bytes(8))
    sig = decode_signature(der[:64])
    assert sig == SignatureValue(r, s, SignatureForm.TRUNCATED_DER)


# ---- rejected values -------------------------------------------------------------------------

GOOD = encode_der(0x1234, 0x5678)  # 30 08 02 02 12 34 02 02 56 78

REJECTED = {
    "empty": b"",
    "one byte": b"\x30",
    "zeros": bytes(10),
    "ascii": b"not a signature at all",
    "set instead of sequence": b"\x31" + GOOD[1:],
    "bit string instead of integer": GOOD[:2] + b"\x03" + GOOD[3:],
    "octet string r": GOOD[:2] + b"\x04" + GOOD[3:],
    "missing s": bytes.fromhex("3004020212 34"),
    "three integers": bytes.fromhex("300b 0202 1234 0202 5678 0201 01".replace(" ", "")),
    "trailing junk": GOOD + b"\x01",
    "trailing zero": GOOD + b"\x00",
    "two signatures": GOOD + GOOD,
    "sequence length too long": b"\x30\x09" + GOOD[2:] + b"\x01",
    "sequence length too short": b"\x30\x07" + GOOD[2:],
    "indefinite length": b"\x30\x80" + GOOD[2:] + b"\x00\x00",
    "non-minimal sequence length 81": b"\x30\x81\x08" + GOOD[2:],
    "non-minimal sequence length 82": b"\x30\x82\x00\x08" + GOOD[2:],
    "non-minimal sequence length 82 for 200": b"\x30\x82\x00\xc8" + bytes(200),
    "three-byte length": b"\x30\x83\x00\x00\x08" + GOOD[2:],
    "non-minimal integer length": bytes.fromhex("3009 028102 1234 0202 5678".replace(" ", "")),
    "non-minimal integer (leading zero)": bytes.fromhex("3009 0203 001234 0202 5678".replace(" ", "")),
    "non-minimal integer (leading 00 00 ff)": bytes.fromhex("300a 0204 0000ff34 0202 5678".replace(" ", "")),
    "negative r": bytes.fromhex("3008 0202 f234 0202 5678".replace(" ", "")),
    "negative s": bytes.fromhex("3008 0202 1234 0202 d678".replace(" ", "")),
    "negative one": bytes.fromhex("3006 0201 ff 0201 01".replace(" ", "")),
    "empty integer": bytes.fromhex("3006 0200 0202 5678".replace(" ", "")),
    "r = 0": encode_der(0, 5),
    "s = 0": encode_der(5, 0),
    "r = n": encode_der(N, 5),
    "s = n": encode_der(5, N),
    "r = n + 1": encode_der(N + 1, 5),
    "r = 2^256 - 1": encode_der(2**256 - 1, 5),
    "r = 2^256": encode_der(2**256, 5),
    "raw r = 0": raw(0, 5),
    "raw s = 0": raw(5, 0),
    "raw r = n": raw(N, 5),
    "raw s = n": raw(5, N),
    "raw all ff": b"\xff" * 64,
    "raw all zero": bytes(64),
    "63 bytes": bytes(range(1, 64)),
    "65 bytes": bytes(range(1, 66)),
    "raw with 04 prefix": b"\x04" + raw(5, 6),
    "truncated r = 0": encode_der(0, 1 << 16).rstrip(b"\x00"),
    "truncated s > n": encode_der(3, ((N >> 8) + 1) << 8)[:-1],
}


@pytest.mark.parametrize("value", REJECTED.values(), ids=REJECTED.keys())
def test_rejected(value):
    with pytest.raises(InvalidSignature):
        decode_signature(value)


def test_minimal_integers_with_sign_byte_are_accepted():
    # 0x80 needs a leading zero; 0x7f must not have one.
    assert decode_signature(bytes.fromhex("3008 0202 0080 0202 00ff".replace(" ", ""))) == \
        SignatureValue(0x80, 0xFF, SignatureForm.DER)
    assert decode_signature(bytes.fromhex("3006 0201 7f 0201 01".replace(" ", ""))).r == 0x7F


def test_long_form_length_accepted_when_needed():
    # A SEQUENCE of 128+ bytes needs 81 xx; such a value is never a valid SM2 signature, but the
    # length rule itself must not reject it: the integers are what is wrong.
    value = b"\x30\x81\x84" + b"\x02\x41" + b"\x01" * 65 + b"\x02\x3f" + b"\x01" * 63
    assert len(value) == 3 + 0x84
    with pytest.raises(InvalidSignature, match="outside"):
        decode_signature(value)


@settings(max_examples=300)
@given(st.binary(max_size=100))
@example(b"\x30\x00")
@example(b"\x30\x02\x02\x00")
@example(b"\x30\x81")
@example(b"\x30\x82\x01")
@example(b"\x30\x45\x02\x21")
def test_arbitrary_bytes_never_crash(value):
    try:
        sig = decode_signature(value)
    except InvalidSignature:
        return
    assert 1 <= sig.r < N and 1 <= sig.s < N
    if sig.form is SignatureForm.DER:
        assert sig.to_der() == value
    elif sig.form is SignatureForm.RAW:
        assert len(value) == 64 and sig.to_raw() == value
    else:
        der = sig.to_der()
        assert der.startswith(value) and 0 < len(der) - len(value) <= 8
        assert der[len(value):] == bytes(len(der) - len(value))


@settings(max_examples=200)
@given(scalars, scalars, st.data())
def test_mutated_der_never_decodes_to_the_same_value(r, s, data):
    der = encode_der(r, s)
    i = data.draw(st.integers(0, len(der) - 1))
    delta = data.draw(st.integers(1, 255))
    mutated = der[:i] + bytes([der[i] ^ delta]) + der[i + 1:]
    try:
        sig = decode_signature(mutated)
    except InvalidSignature:
        return
    assert (sig.r, sig.s) != (r, s)


# ---- BIT STRING payloads ---------------------------------------------------------------------

def test_bit_string_icbc_case_seven_unused_bits_one_byte_short():
    s = (0xABCDEF << 16) | 0x8000  # ends 80 00: a named-bit encoder drops 00 and 7 zero bits
    der = encode_der(0x1234, s)
    payload, unused = named_bit_encode(der)
    assert (len(der) - len(payload), unused) == (1, 7)
    sig = decode_bit_string_signature(payload, unused)
    assert sig == SignatureValue(0x1234, s, SignatureForm.TRUNCATED_DER)


def test_bit_string_whole_bytes_short_no_unused_bits():
    s = 0x1235 << 24
    der = encode_der(99, s)
    payload, unused = named_bit_encode(der)
    assert (len(der) - len(payload), unused) == (3, 0)
    assert decode_bit_string_signature(payload, unused).s == s


def test_bit_string_complete_der_without_unused_bits():
    der = encode_der(3, 0x1235)
    assert decode_bit_string_signature(der) == SignatureValue(3, 0x1235, SignatureForm.DER)
    assert decode_bit_string_signature(raw(3, 5), 0).form is SignatureForm.RAW


@pytest.mark.parametrize("unused", [-1, 8, 9, 255])
def test_bit_string_unused_count_out_of_range(unused):
    with pytest.raises(InvalidSignature):
        decode_bit_string_signature(encode_der(3, 5), unused)


def test_bit_string_nonzero_unused_bits_rejected():
    der = encode_der(0x1234, (0xABCD << 16) | 0x8000)
    payload = der[:-1]  # ends 0x80: 7 zero bits
    decode_bit_string_signature(payload, 7)
    with pytest.raises(InvalidSignature, match="non-zero unused bits"):
        decode_bit_string_signature(payload[:-1] + b"\x81", 7)
    der2 = encode_der(0x1234, (0xABCD << 16) | 0x0400)
    payload2 = der2[:-1]  # ends 0x04: 2 zero bits
    decode_bit_string_signature(payload2, 2)
    with pytest.raises(InvalidSignature):
        decode_bit_string_signature(payload2, 3)


def test_bit_string_unused_bits_on_raw_must_be_zero():
    value = raw(5, 0x181)
    with pytest.raises(InvalidSignature, match="non-zero unused bits"):
        decode_bit_string_signature(value, 1)


def test_bit_string_missing_only_zero_bits_within_last_byte():
    """A named-bit encoder writes a complete DER with unused bits when it ends in an even byte."""
    s = (0xABCDEF << 8) | 0x80  # DER ends in 0x80: 7 trailing zero bits, no zero byte
    der = encode_der(0x1234, s)
    payload, unused = named_bit_encode(der)
    assert (payload, unused) == (der, 7)
    assert decode_bit_string_signature(payload, unused).s == s


@settings(max_examples=200, suppress_health_check=[HealthCheck.filter_too_much])
@given(scalars, scalars)
def test_bit_string_named_bit_encoding_of_any_signature(r, s):
    """Every signature, written as a named-bit BIT STRING, reads back as itself."""
    der = encode_der(r, s)
    payload, unused = named_bit_encode(der)
    assume(len(der) - len(payload) <= 8 and len(payload) != 64)
    sig = decode_bit_string_signature(payload, unused)
    assert (sig.r, sig.s) == (r, s)


# ---- verification of each form ---------------------------------------------------------------

@pytest.fixture(scope="module")
def signed_with_zero_tail():
    """A key, message and DER signature whose DER ends in a zero byte (found by re-signing)."""
    key = SM2PrivateKey.generate()
    msg = b"signature forms"
    for _ in range(20000):
        der = key.sign(msg)
        if der.endswith(b"\x00") and len(der.rstrip(b"\x00")) != 64:
            return key.public_key(), msg, der
    raise AssertionError("no signature ending in a zero byte after 20000 tries")


def _sig_with_s(e: bytes, s: int, k: int):
    """A key for which nonce k signs e as (r, s): d = (k - s) / (s + r) mod n (GB/T 32918.2 A5)."""
    pure = get_backend("pure")
    x1 = pure.load_private(k).public_point[0]
    r = (int.from_bytes(e, "big") + x1) % N
    d = (k - s) * pow(s + r, -1, N) % N
    assert 1 <= d <= N - 2
    ops = pure.load_private(d)
    assert ops._sign_digest_with_nonce(e, k) == (r, s)
    return SM2PublicKey(*ops.public_point), r


def test_verify_accepts_every_form(backend, signed_with_zero_tail):
    pub, msg, der = signed_with_zero_tail
    sig = decode_signature(der)
    assert pub.verify(der, msg).form is SignatureForm.DER
    assert pub.verify(sig.to_raw(), msg).form is SignatureForm.RAW
    assert pub.verify(der.rstrip(b"\x00"), msg).form is SignatureForm.TRUNCATED_DER
    payload, unused = named_bit_encode(der)
    assert pub.verify(decode_bit_string_signature(payload, unused), msg).form is SignatureForm.TRUNCATED_DER
    assert pub.verify(sig, msg) is sig


def test_verify_icbc_style_signature(backend):
    e = bytes(range(32))
    s = (0x5A5A5A << 16) | 0x8000
    pub, r = _sig_with_s(e, s, k=0xC0FFEE)
    der = encode_der(r, s)
    payload, unused = named_bit_encode(der)
    assert (len(der) - len(payload), unused) == (1, 7)
    assert pub.verify_digest(decode_bit_string_signature(payload, unused), e).form is \
        SignatureForm.TRUNCATED_DER
    assert pub.verify_digest(payload, e).form is SignatureForm.TRUNCATED_DER
    assert pub.verify_digest(raw(r, s), e).form is SignatureForm.RAW
    with pytest.raises(InvalidSignature):
        pub.verify_digest(payload, bytes(32))


def test_verify_rejects_every_single_byte_change(backend, signed_with_zero_tail):
    pub, msg, der = signed_with_zero_tail
    forms = [der, decode_signature(der).to_raw(), der.rstrip(b"\x00")]
    for value in forms:
        for i in range(len(value)):
            for bit in (0x01, 0x80):
                tampered = value[:i] + bytes([value[i] ^ bit]) + value[i + 1:]
                with pytest.raises(InvalidSignature):
                    pub.verify(tampered, msg)
        # (Cutting a final zero byte of DER gives the truncated form, which is valid.)
        cuts = [value[1:], value + b"\x01"] + ([value[:-1]] if value[-1] else [])
        for cut in cuts:
            with pytest.raises(InvalidSignature):
                pub.verify(cut, msg)


def test_verify_rejects_garbage_as_invalid_signature(backend, signed_with_zero_tail):
    pub, msg, _ = signed_with_zero_tail
    for value in REJECTED.values():
        with pytest.raises(InvalidSignature):
            pub.verify(value, msg)


def test_verify_rejects_r_plus_n(backend):
    # r and r + n are the same residue; only the value in [1, n-1] is a signature.
    e = bytes(range(32))
    pub, r = _sig_with_s(e, 0x1234567 << 100, k=777)
    s = 0x1234567 << 100
    assert pub.verify_digest(SignatureValue(r, s), e)
    for bad in ((r + N, s), (r, s + N), (N - r, N - s)):
        with pytest.raises(InvalidSignature):
            pub.verify_digest(SignatureValue(*bad), e)
    with pytest.raises(InvalidSignature):
        pub.verify_digest(raw(r, s + N), e)


@pytest.mark.parametrize("bad", [(0, 5), (5, 0), (N, 5), (5, N), (2**300, 5)])
def test_verify_out_of_range_signature_value(backend, bad):
    pub = SM2PrivateKey.generate().public_key()
    with pytest.raises(InvalidSignature):
        pub.verify(SignatureValue(*bad), b"x")


@pytest.mark.parametrize("bad", [(-1, 5), (5, -1)], ids=["r=-1", "s=-1"])
@pytest.mark.parametrize("name", BACKENDS)
def test_verify_negative_signature_value(name, bad, monkeypatch):
    monkeypatch.setenv("ZHENGYIN_SM2_BACKEND", name)
    pub = SM2PrivateKey.generate().public_key()
    with pytest.raises(InvalidSignature):
        pub.verify(SignatureValue(*bad), b"x")


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=80))
def test_verify_random_bytes_never_pass(backend, signed_with_zero_tail, value):
    pub, msg, _ = signed_with_zero_tail
    with pytest.raises(InvalidSignature):
        pub.verify(value, msg)
