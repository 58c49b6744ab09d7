"""SM2 CMS SignedData (ca.cms): what we write, what we read back, what verification refuses.

Real third-party SignedData files and OpenSSL/BouncyCastle are in
tests/interop/test_cms_interop.py; here the signatures are our own, from the session PKI of
tests/ca/conftest.py.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from asn1crypto import cms, core, tsp, x509
from hypothesis import given, settings
from hypothesis import strategies as st

from ca.certificates import build_certificate
from ca.cms import (
    MAX_SM2_SIGNATURE_DER,
    CmsFormatError,
    estimated_size,
    read_signed_data,
    sign_signed_data,
    verify_signed_data,
)
from ca.cms_asn1 import ContentInfo, scan_value
from ca.errors import InvalidRequest
from ca.names import subject_name
from ca.profiles import DEPARTMENT_SIGNER
from ca.verdict import (
    CRYPTO_CONSTRAINTS_FAILURE,
    FORMAT_FAILURE,
    HASH_FAILURE,
    INDETERMINATE,
    NO_SIGNING_CERTIFICATE_FOUND,
    SIG_CRYPTO_FAILURE,
    SIGNED_DATA_NOT_FOUND,
    TOTAL_FAILED,
    TOTAL_PASSED,
)
from hsm import oids
from hsm.hazmat import SM2PrivateKey
from hsm.signature import SignatureForm, decode_signature
from hsm.sm2 import SM2PublicKey
from hsm.sm3 import sm3

CONTENT = "证照签名内容 Signature.xml bytes".encode() * 7
WHEN = datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)
FLAVOURS = {"gbt35275": (oids.GBT35275_SIGNED_DATA, oids.GBT35275_DATA),
            "rfc5652": ("1.2.840.113549.1.7.2", "1.2.840.113549.1.7.1")}
SM2_SIGN = "1.2.156.10197.1.301.1"


@pytest.fixture(scope="module")
def signer(pki):
    return pki.leaves["department-signer"]


@pytest.fixture(scope="module")
def chain(pki):
    return [pki.issuing.cert.dump(), pki.root.cert.dump()]


def make(signer, chain=(), **kwargs) -> bytes:
    kwargs.setdefault("content", CONTENT)
    kwargs.setdefault("signing_time", WHEN)
    return sign_signed_data(signer=signer.key, certificate=signer.cert.dump(), chain=chain, **kwargs)


def edit(der: bytes, change) -> bytes:
    """The SignedData with ``change(signed_data)`` applied; untouched parts keep their bytes."""
    info = ContentInfo.load(der)
    change(info["content"])
    return info.dump()


def failed_names(result) -> list[str]:
    return [c.name for c in result.checks if not c.ok]


def flip(data: bytes, i: int, mask: int = 0x01) -> bytes:
    return data[:i] + bytes([data[i] ^ mask]) + data[i + 1:]


# ---- what we write, read back ---------------------------------------------------------------

@pytest.mark.parametrize("flavour", FLAVOURS)
@pytest.mark.parametrize("detached", [True, False])
def test_signed_attributes_layout_and_verification(signer, chain, flavour, detached):
    der = make(signer, chain, flavour=flavour, detached=detached)
    info = read_signed_data(der)
    outer, data_type = FLAVOURS[flavour]
    assert (info.content_type, info.encap_content_type, info.version) == (outer, data_type, 1)
    assert info.content == (None if detached else CONTENT) and info.detached is detached
    # a SET OF, so DER puts the certificates in encoding order, not signer first
    assert sorted(info.certificates) == sorted([signer.cert.dump(), *chain])
    assert info.signer_certificate == signer.cert.dump()
    assert info.layout == ("DER",) and info.encoded == der
    s = info.signer
    assert s.version == 1 and s.sid.serial_number == signer.cert.serial_number
    assert x509.Name.load(s.sid.issuer) == signer.cert.issuer
    assert (s.digest_algorithm, s.digest_algorithm_parameters) == (oids.SM3, None)
    assert (s.signature_algorithm, s.signature_algorithm_parameters) == (oids.SM2_WITH_SM3, None)
    assert info.digest_algorithms == (oids.SM3,)
    assert set(s.attribute_types) == {"1.2.840.113549.1.9.3", "1.2.840.113549.1.9.4", "1.2.840.113549.1.9.5",
                                      "1.2.840.113549.1.9.16.2.47"}
    assert s.content_type_attr == data_type and s.message_digest == sm3(CONTENT) and s.signing_time == WHEN
    (ess,) = s.signing_certificate_v2
    assert (ess.hash_algorithm, ess.cert_hash) == (oids.SM3, sm3(signer.cert.dump()))
    assert ess.serial_number == signer.cert.serial_number
    assert [x509.Name.load(n) for n in ess.issuer_names] == [signer.cert.issuer]

    result = verify_signed_data(info, content=CONTENT if detached else None)
    assert result.ok, result.checks
    assert [c.name for c in result.checks] == ["format", "algorithm", "signer-certificate-present",
                                               "signing-certificate", "content-type", "message-digest",
                                               "signature"]
    assert result.signature_form is SignatureForm.DER and result.verdict() == (TOTAL_PASSED, None)


def test_signature_is_over_the_der_set_of_signed_attributes(signer):
    der = make(signer)
    s = read_signed_data(der).signer
    attrs = s.signed_attrs_bytes
    assert attrs[0] == 0x31 and b"\xa0" + attrs[1:] in der
    assert cms.CMSAttributes.load(attrs).dump(force=True) == attrs  # we write DER (sorted SET)
    # The GM/T 0009 rule, checked without ca.cms: SM3(Z_A || DER(SET OF attributes)), default ID.
    key = SM2PublicKey.from_spki(signer.cert.public_key)
    assert key.verify(s.signature, attrs).form is SignatureForm.DER
    assert len(s.signature) <= MAX_SM2_SIGNATURE_DER


@pytest.mark.parametrize("flavour", FLAVOURS)
@pytest.mark.parametrize("detached", [True, False])
def test_without_signed_attributes_the_signature_covers_the_content(signer, flavour, detached):
    der = make(signer, flavour=flavour, detached=detached, signed_attributes=False, signing_time=None)
    info = read_signed_data(der)
    assert info.signer.signed_attrs_bytes is None and info.signer.attribute_types == ()
    assert info.signer.message_digest is None and info.signer.signing_time is None
    SM2PublicKey.from_spki(signer.cert.public_key).verify(info.signer.signature, CONTENT)
    result = verify_signed_data(info, content=CONTENT if detached else None)
    assert result.ok, result.checks
    assert "content-type" not in [c.name for c in result.checks]
    assert not verify_signed_data(info, content=CONTENT + b"x").ok
    if detached:  # the signature is over the content, so its digest is not enough
        only_digest = verify_signed_data(info, digest=sm3(CONTENT))
        assert failed_names(only_digest) == ["message-digest", "signature"]
        assert only_digest.check("message-digest").code == SIGNED_DATA_NOT_FOUND


def test_signing_a_digest_equals_signing_the_content(signer):
    der = make(signer, content=None, digest=sm3(CONTENT))
    assert verify_signed_data(der, content=CONTENT).ok
    assert verify_signed_data(der, digest=sm3(CONTENT)).ok
    assert not verify_signed_data(der, digest=sm3(CONTENT + b"!")).ok


def test_signing_time_defaults_to_now_and_uses_generalized_time_from_2050(signer):
    before = datetime.now(UTC).replace(microsecond=0)
    info = read_signed_data(make(signer, signing_time=None))
    assert before <= info.signer.signing_time <= datetime.now(UTC)
    late = datetime(2051, 2, 3, 4, 5, 6, tzinfo=UTC)
    der = make(signer, signing_time=late)
    assert b"\x18\x0f20510203040506Z" in der
    assert read_signed_data(der).signer.signing_time == late


def test_extra_signed_attributes_are_signed_and_read(signer):
    extra = cms.CMSAttribute({"type": "1.2.156.112559.1.9.1", "values": [core.UTF8String("用证事由")]})
    der = make(signer, extra_attributes=[extra])
    info = read_signed_data(der)
    assert "1.2.156.112559.1.9.1" in info.signer.attribute_types
    assert verify_signed_data(info, content=CONTENT).ok
    changed = der.replace("用证事由".encode(), "用证事田".encode())
    assert failed_names(verify_signed_data(changed, content=CONTENT)) == ["signature"]


def test_estimated_size_is_a_tight_upper_bound(signer, chain):
    for flavour in FLAVOURS:
        for detached in (True, False):
            bound = estimated_size(certificate=signer.cert.dump(), chain=chain, flavour=flavour,
                                   detached=detached, content=None if detached else CONTENT)
            sizes = [len(make(signer, chain, flavour=flavour, detached=detached, signing_time=None))
                     for _ in range(12)]
            assert max(sizes) <= bound <= min(sizes) + 8, (flavour, detached, sizes, bound)
    no_attrs = estimated_size(certificate=signer.cert.dump(), content=CONTENT, detached=False,
                              signed_attributes=False)
    assert len(make(signer, detached=False, signed_attributes=False, signing_time=None)) <= no_attrs


# ---- what making refuses ----------------------------------------------------------------------

@pytest.mark.parametrize("kwargs, message", [
    ({"content": None}, "content to sign, or its SM3 digest"),
    ({"content": None, "digest": b"\x00" * 31}, "32-byte SM3"),
    ({"digest": b"\x00" * 32}, "not the SM3 digest of content"),
    ({"content": None, "digest": b"\x00" * 32, "detached": False}, "needs the content itself"),
    ({"content": None, "digest": b"\x00" * 32, "signed_attributes": False, "signing_time": None},
     "over the content itself"),
    ({"signed_attributes": False}, "need signed attributes"),
    ({"flavour": "pkcs7"}, "unknown flavour"),
    ({"signing_time": datetime(2024, 1, 1)}, "timezone-aware"),
    ({"extra_attributes": [cms.CMSAttribute({"type": "signing_time",
                                             "values": [cms.Time(name="utc_time", value=WHEN)]})]},
     "written here"),
])
def test_bad_signing_requests_are_refused(signer, kwargs, message):
    with pytest.raises(InvalidRequest, match=message):
        make(signer, **kwargs)


def test_a_signer_whose_key_is_not_the_certificates_is_refused(signer):
    with pytest.raises(InvalidRequest, match="not the certificate's key"):
        sign_signed_data(signer=SM2PrivateKey.generate(), certificate=signer.cert.dump(), content=CONTENT)
    with pytest.raises(InvalidRequest, match=r"not a readable X\.509 certificate"):
        sign_signed_data(signer=signer.key, certificate=b"\x30\x03\x02\x01\x01", content=CONTENT)


# ---- tampering --------------------------------------------------------------------------------

def test_changed_content_fails_the_message_digest(signer):
    der = make(signer)
    result = verify_signed_data(der, content=flip(CONTENT, 5))
    assert failed_names(result) == ["message-digest"]
    assert result.check("message-digest").code == HASH_FAILURE
    assert result.verdict() == (TOTAL_FAILED, HASH_FAILURE)

    attached = make(signer, detached=False)
    i = attached.index(CONTENT)
    assert failed_names(verify_signed_data(flip(attached, i + 3))) == ["message-digest"]
    assert failed_names(verify_signed_data(attached, content=CONTENT + b"!")) == ["message-digest"]


def test_changed_signed_attribute_fails_the_signature(signer):
    der = make(signer)
    i = der.index(b"\x17\x0d240506070809Z") + 13  # the last digit of signingTime
    changed = der[:i] + b"8" + der[i + 1:]
    assert read_signed_data(changed).signer.signing_time == WHEN - timedelta(seconds=1)
    result = verify_signed_data(changed, content=CONTENT)
    assert failed_names(result) == ["signature"]
    assert result.check("signature").code == SIG_CRYPTO_FAILURE


def test_changed_signature_fails(signer):
    der = make(signer)
    sig = read_signed_data(der).signer.signature
    i = der.index(sig) + len(sig) // 2
    assert failed_names(verify_signed_data(flip(der, i), content=CONTENT)) == ["signature"]
    value = decode_signature(sig)
    raw = edit(der, lambda sd: sd["signer_infos"][0].__setitem__("signature", value.to_raw()))
    raw_result = verify_signed_data(raw, content=CONTENT)  # raw r||s is read as real producers write it
    assert raw_result.ok and raw_result.signature_form is SignatureForm.RAW


def test_every_single_bit_flip_is_refused_or_rejected(signer):
    """No flip anywhere raises anything but CmsFormatError; a flip in what is signed never passes."""
    der = make(signer, detached=False)
    info = read_signed_data(der)
    attrs = info.signer.signed_attrs_bytes
    covered = [(der.index(b"\xa0" + attrs[1:]), len(attrs)), (der.index(info.signer.signature), 72),
               (der.index(CONTENT), len(CONTENT))]
    for i in range(len(der)):
        changed = flip(der, i, 0x10)
        result = verify_signed_data(changed)
        if any(start <= i < start + n for start, n in covered):
            assert not result.ok, i


# ---- what reading refuses ---------------------------------------------------------------------

def test_truncated_der_is_a_format_error(signer):
    der = make(signer)
    for n in (0, 1, 2, 10, len(der) // 2, len(der) - 1):
        with pytest.raises(CmsFormatError):
            read_signed_data(der[:n])
        result = verify_signed_data(der[:n], content=CONTENT)
        assert not result.ok and failed_names(result) == ["format"]
        assert result.verdict() == (TOTAL_FAILED, FORMAT_FAILURE)


def test_trailing_data_is_refused_and_zero_padding_only_when_allowed(signer):
    der = make(signer)
    with pytest.raises(CmsFormatError, match="3 bytes of trailing data"):
        read_signed_data(der + b"abc")
    with pytest.raises(CmsFormatError, match="trailing data"):
        read_signed_data(der + b"\x00" * 100)
    padded = read_signed_data(der + b"\x00" * 100, allow_zero_padding=True)
    assert padded.encoded == der and "zero padding: 100 bytes" in padded.layout
    assert verify_signed_data(der + b"\x00" * 100, content=CONTENT, allow_zero_padding=True).ok
    with pytest.raises(CmsFormatError, match="not zero padding"):
        read_signed_data(der + b"\x00" * 10 + b"\x01" + b"\x00" * 10, allow_zero_padding=True)


def test_zero_or_two_signer_infos_are_refused(signer):
    der = make(signer)
    none = edit(der, lambda sd: sd.__setitem__("signer_infos", []))
    with pytest.raises(CmsFormatError, match="exactly one SignerInfo, found 0"):
        read_signed_data(none)
    two = edit(der, lambda sd: sd.__setitem__("signer_infos", [sd["signer_infos"][0], sd["signer_infos"][0]]))
    with pytest.raises(CmsFormatError, match="exactly one SignerInfo, found 2"):
        read_signed_data(two)


def test_other_content_info_types_and_garbage_are_refused(signer):
    data = cms.ContentInfo({"content_type": "data", "content": core.OctetString(b"x")}).dump()
    with pytest.raises(CmsFormatError, match="is not signedData"):
        read_signed_data(data)
    deep = b"\x05\x00"
    for _ in range(200):
        length = bytes([len(deep)]) if len(deep) < 128 else b"\x82" + len(deep).to_bytes(2, "big")
        deep = b"\x30" + length + deep
    hostile = (b"", b"\x00", b"\x30\x80", b"\x30\x03\x02\x01\x01", bytes(range(256)),
               b"\x30\x80" * 5000 + b"\x00\x00" * 5000,  # indefinite lengths nested 5000 deep
               deep,                                        # definite lengths nested 200 deep
               b"\x30\x84\xff\xff\xff\xff",                   # 4 GiB promised, none there
               b"\x30\x89" + b"\xff" * 9,                      # a 9-octet length
               b"\x04\x80\x04\x01x\x00\x00")                   # indefinite primitive
    for bad in hostile:
        with pytest.raises(CmsFormatError):
            read_signed_data(bad)
    with pytest.raises(CmsFormatError, match="expected the SignedData bytes"):
        read_signed_data("MII...")  # type: ignore[arg-type]
    with pytest.raises(CmsFormatError, match="exceeds"):
        read_signed_data(b"\x30" + b"\x00" * (16 * 1024 * 1024 + 1))


def test_duplicate_or_multi_valued_standard_attributes_are_refused(signer):
    der = make(signer)

    def duplicate(sd):
        attrs = sd["signer_infos"][0]["signed_attrs"]
        sd["signer_infos"][0]["signed_attrs"] = [*attrs, cms.CMSAttribute(
            {"type": "message_digest", "values": [b"\x00" * 32]})]

    with pytest.raises(CmsFormatError, match="message_digest attribute appears more than once"):
        read_signed_data(edit(der, duplicate))

    def two_values(sd):
        attrs = [a for a in sd["signer_infos"][0]["signed_attrs"] if a["type"].native != "message_digest"]
        sd["signer_infos"][0]["signed_attrs"] = [*attrs, cms.CMSAttribute(
            {"type": "message_digest", "values": [b"\x00" * 32, b"\x01" * 32]})]

    with pytest.raises(CmsFormatError, match="exactly one value, it has 2"):
        read_signed_data(edit(der, two_values))


def resign(der: bytes, key: SM2PrivateKey, change) -> bytes:
    """The SignedData with its signed attributes changed by ``change(list)`` and signed again."""
    info = ContentInfo.load(der)
    signer_info = info["content"]["signer_infos"][0]
    attrs = cms.CMSAttributes(change(list(signer_info["signed_attrs"]))).dump()
    signer_info["signed_attrs"] = cms.CMSAttributes.load(attrs)
    signer_info["signature"] = key.sign(attrs)
    return info.dump()


def without(name):
    return lambda attrs: [a for a in attrs if a["type"].native != name]


def replaced(name, attribute):
    return lambda attrs: [*without(name)(attrs), cms.CMSAttribute(attribute)]


def ess(hash_algorithm: str, cert_hash: bytes):
    return {"type": "signing_certificate_v2", "values": [tsp.SigningCertificateV2(
        {"certs": [{"hash_algorithm": {"algorithm": hash_algorithm}, "cert_hash": cert_hash}]})]}


def test_resigned_attributes_are_judged_by_their_content(signer):
    """Signatures valid, attributes wrong: each rule of RFC 5652 §5.3 / RFC 5035 on its own."""
    import hashlib

    der, cert = make(signer), signer.cert.dump()
    assert verify_signed_data(resign(der, signer.key, lambda a: a), content=CONTENT).ok  # control
    cases = [
        (replaced("signing_certificate_v2", ess("sha256", hashlib.sha256(cert).digest())), [], None),
        (without("signing_certificate_v2"), [], None),
        (replaced("signing_certificate_v2", ess("sha1", hashlib.sha1(cert).digest())),
         ["signing-certificate"], CRYPTO_CONSTRAINTS_FAILURE),
        (replaced("signing_certificate_v2", ess("sm3", sm3(cert + b"x"))),
         ["signing-certificate"], NO_SIGNING_CERTIFICATE_FOUND),
        (without("content_type"), ["content-type"], FORMAT_FAILURE),
        (replaced("content_type", {"type": "content_type", "values": ["signed_data"]}),
         ["content-type"], FORMAT_FAILURE),
        (without("message_digest"), ["message-digest"], FORMAT_FAILURE),
        (replaced("message_digest", {"type": "message_digest", "values": [sm3(b"other")]}),
         ["message-digest"], HASH_FAILURE),
    ]
    for change, failing, code in cases:
        result = verify_signed_data(resign(der, signer.key, change), content=CONTENT)
        assert failed_names(result) == failing, (failing, result.checks)
        if code:
            assert result.check(failing[0]).code == code


def test_scan_value_walks_every_tlv_and_names_ber():
    assert scan_value(b"\x30\x03\x02\x01\x01trailing") == (5, frozenset())
    assert scan_value(b"\x30\x81\x03\x02\x01\x01") == (6, {"non-minimal-length"})
    chunked = b"\x24\x80\x04\x01a\x04\x01b\x00\x00"  # BER OCTET STRING "ab" in two chunks
    assert scan_value(chunked) == (10, {"indefinite-length", "constructed-string"})
    for bad in (b"\x30\x03\x02\x05\x01", b"\x30\x80\x02\x01\x01", b"\x1f\x80\x80\x80\x80\x01\x00", b"\x30"):
        with pytest.raises(ValueError):
            scan_value(bad)


# ---- algorithms, certificates -----------------------------------------------------------------

@pytest.mark.parametrize("oid", [SM2_SIGN, oids.EC_PUBLIC_KEY])
def test_signature_algorithm_names_real_producers_use_are_accepted(signer, oid):
    der = edit(make(signer), lambda sd: sd["signer_infos"][0].__setitem__(
        "signature_algorithm", {"algorithm": oid}))
    result = verify_signed_data(der, content=CONTENT)
    assert result.ok and oid in result.check("algorithm").detail


@pytest.mark.parametrize("field, value", [
    ("signature_algorithm", {"algorithm": "1.2.840.10045.4.3.2"}),   # ecdsa-with-SHA256
    ("signature_algorithm", {"algorithm": "1.2.840.113549.1.1.11"}),  # sha256WithRSAEncryption
    ("signature_algorithm", {"algorithm": "1.2.156.10197.1.301"}),   # the SM2 curve, not a signature
    ("signature_algorithm", {"algorithm": oids.SM2_WITH_SM3, "parameters": core.Integer(1)}),
    ("digest_algorithm", {"algorithm": "sha256"}),
    ("digest_algorithm", {"algorithm": "1.2.156.10197.1.401.2"}),
])
def test_other_algorithms_are_refused(signer, field, value):
    der = edit(make(signer), lambda sd: sd["signer_infos"][0].__setitem__(field, value))
    result = verify_signed_data(der, content=CONTENT)
    assert not result.ok
    assert result.check("algorithm").code == CRYPTO_CONSTRAINTS_FAILURE
    assert result.check("signature").detail == "not checked: the algorithm is refused"


def test_missing_signer_certificate_is_indeterminate(signer, chain):
    der = edit(make(signer, chain), lambda sd: sd.__setitem__("certificates", [
        cms.CertificateChoices(name="certificate", value=x509.Certificate.load(c)) for c in chain]))
    info = read_signed_data(der)
    assert info.signer_certificate is None and len(info.certificates) == 2
    result = verify_signed_data(info, content=CONTENT)
    assert failed_names(result) == ["signer-certificate-present", "signing-certificate", "signature"]
    assert result.verdict() == (INDETERMINATE, NO_SIGNING_CERTIFICATE_FOUND)


def test_subject_key_identifier_sid_finds_the_certificate(signer):
    ski = signer.cert.key_identifier
    der = edit(make(signer), lambda sd: sd["signer_infos"][0].__setitem__(
        "sid", cms.SignerIdentifier(name="subject_key_identifier", value=ski)))
    info = read_signed_data(der)
    assert info.signer.sid.key_identifier == ski and info.signer_certificate == signer.cert.dump()
    assert verify_signed_data(info, content=CONTENT).ok


def test_substituted_certificate_fails_signing_certificate_v2(pki, signer):
    """Same key, issuer and serial, different certificate: only signingCertificateV2 notices."""
    twin = build_certificate(
        profile=DEPARTMENT_SIGNER, subject=subject_name("冒名顶替"), subject_key=signer.key.public_key(),
        signer=pki.issuing.key, issuer=pki.issuing.cert, serial=signer.cert.serial_number, not_before=pki.now)
    der = edit(make(signer), lambda sd: sd.__setitem__(
        "certificates", [cms.CertificateChoices(name="certificate", value=twin)]))
    result = verify_signed_data(der, content=CONTENT)
    assert failed_names(result) == ["signing-certificate"]
    assert result.check("signing-certificate").code == NO_SIGNING_CERTIFICATE_FOUND


def test_verification_needs_the_detached_content_or_its_digest(signer):
    der = make(signer)
    result = verify_signed_data(der)
    assert failed_names(result) == ["message-digest"]
    assert result.verdict() == (INDETERMINATE, SIGNED_DATA_NOT_FOUND)
    with pytest.raises(ValueError, match="not both"):
        verify_signed_data(der, content=CONTENT, digest=sm3(CONTENT))
    with pytest.raises(ValueError, match="32-byte"):
        verify_signed_data(der, digest=b"\x00" * 20)


# ---- hostile input ----------------------------------------------------------------------------

@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=400))
def test_random_bytes_never_escape_as_another_error(data):
    try:
        read_signed_data(data, allow_zero_padding=True)
    except CmsFormatError:
        pass
    assert not verify_signed_data(data, content=b"x").ok


@pytest.fixture(scope="module")
def attached(signer) -> bytes:
    return make(signer, detached=False)


@settings(max_examples=200, deadline=None)
@given(edits=st.lists(st.tuples(st.integers(min_value=0), st.integers(0, 255)), min_size=1, max_size=6),
       cut=st.integers(min_value=0, max_value=40))
def test_mutated_signed_data_never_escapes_as_another_error(attached, edits, cut):
    der = bytearray(attached)
    for position, value in edits:
        der[position % len(der)] = value
    mutated = bytes(der[:len(der) - cut])
    try:
        read_signed_data(mutated)
    except CmsFormatError:
        pass
    result = verify_signed_data(mutated)
    assert isinstance(result.ok, bool)
