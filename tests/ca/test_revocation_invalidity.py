"""A key-compromise revocation with an invalidity date: in the CRL and the OCSP answer; effective
whatever a signature claims, and from its invalidity date only for a time that is proven."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest

from ca.authority import AuthorityPolicy, CertificateAuthority, certificate_of, utc_now
from ca.crl import load_crl
from ca.names import subject_name
from ca.ocsp import build_request, read_response
from ca.validation import SEAL_SIGNING, validate_path
from hsm.soft import SoftKeyStore
from ledger.audit import AuditLog


@pytest.fixture
def authority(db, tmp_path) -> CertificateAuthority:
    keys = SoftKeyStore(tmp_path / "keys", b"test passphrase", iterations=1000)
    for label in ("root", "issuing", "signer"):
        keys.generate(label)
    ca = CertificateAuthority(db, keys, AuditLog(db), actor="tester", policy=AuthorityPolicy(
        crl_base_url="http://crl.example", ocsp_url="http://ocsp.example/"))
    ca.create_root("root", subject_name("Test Root CA", organisation="证印测试"))
    ca.create_issuing("issuing", subject_name("Test Issuing CA", organisation="证印测试"))
    return ca


@pytest.fixture
def compromised(authority):
    """A certificate whose key leaked two seconds after it was issued, revoked a second later."""
    leaf = authority.issue("department-signer", subject_name("Signer"), key_label="signer")
    since = leaf.not_before + timedelta(seconds=2)
    time.sleep(max(0.0, (since - utc_now()).total_seconds()) + 1.1)
    authority.revoke(leaf.serial, "key_compromise", invalidity_date=since)
    authority.publish_crl("issuing")
    return leaf, since


def _at(authority, leaf, when, *, proven: bool):
    issuing, root = authority.chain()
    return validate_path(certificate_of(leaf), trust_anchors=[root], intermediates=[issuing], at=when,
                         crls=[load_crl(c.der) for c in authority.current_crls()], purpose=SEAL_SIGNING,
                         revocation="require", crl_time=utc_now(), at_proven=proven)


def test_the_crl_entry_carries_reason_and_invalidity_date(authority, compromised):
    leaf, since = compromised
    entries = load_crl(authority.latest_crl("issuing").der)["tbs_cert_list"]["revoked_certificates"]
    entry = next(e for e in entries if format(e["user_certificate"].native, "x") == leaf.serial)
    exts = {x["extn_id"].native: x["extn_value"].native for x in entry["crl_entry_extensions"]}
    assert exts == {"crl_reason": "key_compromise", "invalidity_date": since}


def test_ocsp_says_when_the_key_became_invalid(authority, compromised):
    leaf, since = compromised
    issuing = certificate_of(authority.issuing())
    cert = certificate_of(leaf)
    status = read_response(authority.respond_ocsp(build_request(cert, issuing)), issuer=issuing,
                           serial=cert.serial_number)
    assert status.state == "revoked" and status.reason == "key_compromise" and status.invalidity_date == since


def test_a_claimed_time_before_the_compromise_does_not_help(authority, compromised):
    leaf, since = compromised
    result = _at(authority, leaf, since - timedelta(seconds=1), proven=False)
    assert not result.ok and result.code == "REVOKED"


def test_a_proven_time_before_the_compromise_passes_and_after_it_fails(authority, compromised):
    leaf, since = compromised
    before = _at(authority, leaf, since - timedelta(seconds=1), proven=True)
    assert before.ok, before.as_dict()
    assert any("proven time of existence" in c.detail for c in before.checks if c.name == "revocation")
    for when in (since, since + timedelta(seconds=1)):
        after = _at(authority, leaf, when, proven=True)
        assert not after.ok and after.code == "REVOKED"
