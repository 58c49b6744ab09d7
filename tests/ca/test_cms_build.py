"""The spliced SignedData (ca.cms_build) is byte for byte what asn1crypto writes for the same
structure: the reference below is how ca.cms built it before the constant parts were cached."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from asn1crypto import cms, core, tsp, x509

from ca import cms as cms_module
from ca import der
from ca.certificates import load_certificate
from ca.cms import FLAVOURS, read_signed_data, sign_signed_data, verify_signed_data
from ca.cms_build import signer_pieces
from ca.errors import InvalidRequest
from ca.signatures import sm2_with_sm3
from ca.verdict import TOTAL_PASSED
from hsm.sm3 import sm3

CONTENT = "证照签名内容".encode() * 11
SIGNATURE = b"\x30\x45\x02\x20" + b"\x11" * 32 + b"\x02\x21\x00" + b"\x99" * 32


def _reference(sign, certificate, chain, content, digest, detached, flavour, signed_attributes, when,
               extras, with_time):
    """The asn1crypto build (ca.cms before ca.cms_build), for comparison."""
    signed_data_type, data_type = FLAVOURS[flavour]
    cert = load_certificate(certificate)
    certificates = [cert, *(load_certificate(c) for c in chain)]
    signed_attrs = None
    if signed_attributes:
        time = cms.Time(name="utc_time" if 1950 <= when.year < 2050 else "generalized_time", value=when)
        ess = tsp.SigningCertificateV2({"certs": [{
            "hash_algorithm": {"algorithm": "sm3"}, "cert_hash": sm3(cert.dump()),
            "issuer_serial": {"issuer": [x509.GeneralName(name="directory_name", value=cert.issuer)],
                              "serial_number": cert.serial_number}}]})
        attributes = [
            cms.CMSAttribute({"type": "content_type", "values": [data_type]}),
            cms.CMSAttribute({"type": "message_digest", "values": [digest or sm3(content)]}),
            cms.CMSAttribute({"type": "signing_time", "values": [time]}),
            cms.CMSAttribute({"type": "signing_certificate_v2", "values": [ess]}),
        ]
        if not with_time:
            attributes = [a for a in attributes if a["type"].native != "signing_time"]
        set_der = cms.CMSAttributes(attributes + list(extras)).dump()
        signature = sign(set_der)
        signed_attrs = cms.CMSAttributes.load(set_der)
    else:
        signature = sign(bytes(content))
    signer_info = {
        "version": "v1",
        "sid": cms.SignerIdentifier(name="issuer_and_serial_number", value={
            "issuer": cert.issuer, "serial_number": cert.serial_number}),
        "digest_algorithm": {"algorithm": "sm3"}, "signature_algorithm": sm2_with_sm3(),
        "signature": signature,
    }
    if signed_attrs is not None:
        signer_info["signed_attrs"] = signed_attrs
    encap = {"content_type": data_type}
    if not detached:
        encap["content"] = core.OctetString(bytes(content))
    signed_data = cms_module.SignedData({
        "version": "v1", "digest_algorithms": [{"algorithm": "sm3"}],
        "encap_content_info": cms_module.ContentInfo(encap),
        "certificates": [cms.CertificateChoices(name="certificate", value=c) for c in certificates],
        "signer_infos": [cms.SignerInfo(signer_info)],
    })
    return cms_module.ContentInfo({"content_type": signed_data_type, "content": signed_data}).dump()


@pytest.fixture(scope="module")
def leaf(pki):
    return pki.leaves["department-signer"]


@pytest.fixture(scope="module")
def chain(pki):
    return (pki.issuing.cert.dump(), pki.root.cert.dump())


EXTRA = cms.CMSAttribute({"type": "1.2.3.4.5", "values": [core.UTF8String("额外")]})
CASES = [
    # flavour, detached, signed attributes, when, with_time, extras, with digest
    ("gbt35275", True, True, datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC), True, (), False),
    ("rfc5652", True, True, datetime(2026, 12, 2, 13, 0, 0, tzinfo=UTC), True, (), True),
    ("rfc5652", True, True, datetime(2026, 12, 2, 13, 0, 0, tzinfo=UTC), False, (), True),
    ("rfc5652", False, True, datetime(2051, 1, 1, tzinfo=UTC), True, (EXTRA,), False),
    ("gbt35275", False, False, None, True, (), False),
    ("gbt35275", True, False, None, True, (), False),
]


@pytest.mark.parametrize(("flavour", "detached", "signed_attributes", "when", "with_time", "extras", "by_digest"),
                         CASES)
def test_spliced_signed_data_is_the_asn1crypto_encoding(leaf, chain, flavour, detached, signed_attributes, when,
                                                        with_time, extras, by_digest):
    seen: dict[str, bytes] = {}

    def sign_as(name):
        def sign(tbs: bytes) -> bytes:
            seen[name] = tbs
            return SIGNATURE
        return sign

    certificate = leaf.cert.dump()
    digest = sm3(CONTENT) if by_digest else None
    content = None if by_digest else CONTENT
    expected = _reference(sign_as("reference"), certificate, chain, content, digest, detached, flavour,
                          signed_attributes, when, extras, with_time)
    pieces = cms_module._pieces(certificate, chain)
    got = cms_module._build(sign_as("spliced"), pieces, content, digest, detached, flavour, signed_attributes,
                            when, extras, with_time)
    assert got == expected
    assert seen["spliced"] == seen["reference"]  # the signature covers the same bytes
    # and it is DER as asn1crypto understands it: re-encoding from the parsed values changes nothing
    assert cms_module.ContentInfo.load(got).dump(force=True) == got


def test_signed_data_verifies_and_the_signer_pieces_are_kept(leaf, chain):
    signer_pieces.cache_clear()
    certificate = leaf.cert.dump()
    outputs = [sign_signed_data(signer=leaf.key, certificate=certificate, chain=list(chain), content=CONTENT,
                                flavour="rfc5652") for _ in range(3)]
    assert signer_pieces.cache_info().misses == 1 and signer_pieces.cache_info().hits >= 2
    for out in outputs:
        result = verify_signed_data(read_signed_data(out), content=CONTENT)
        assert result.ok and result.verdict() == (TOTAL_PASSED, None), result
    assert len(set(outputs)) == 3  # fresh signatures: nothing but the constant parts is reused


def test_a_wrong_key_or_bad_certificate_is_refused_and_not_kept(leaf, pki, chain):
    other = pki.leaves["department-signer"]
    wrong = next(v for k, v in pki.leaves.items() if v.cert.dump() != leaf.cert.dump())
    with pytest.raises(InvalidRequest, match="not the certificate's key"):
        sign_signed_data(signer=wrong.key, certificate=other.cert.dump(), content=CONTENT)
    before = signer_pieces.cache_info().currsize
    with pytest.raises(InvalidRequest):
        sign_signed_data(signer=leaf.key, certificate=b"\x30\x03\x02\x01\x01", content=CONTENT)
    with pytest.raises(InvalidRequest):
        sign_signed_data(signer=leaf.key, certificate="not bytes", content=CONTENT)  # type: ignore[arg-type]
    assert signer_pieces.cache_info().currsize == before


@pytest.mark.parametrize("size", [0, 1, 127, 128, 255, 256, 65535, 65536, 1 << 24])
def test_der_lengths_are_minimal(size):
    encoded = der.tlv(0x04, b"\x00" * size)
    assert core.OctetString.load(encoded, strict=True).native == b"\x00" * size
    assert encoded == core.OctetString(b"\x00" * size).dump()


def test_set_of_sorts_like_asn1crypto():
    parts = [core.Integer(v).dump() for v in (300, 2, 1 << 70, 17)]
    reference = core.SetOf(spec=core.Integer)
    for v in (300, 2, 1 << 70, 17):
        reference.append(v)
    assert der.set_of(parts) == reference.dump()
