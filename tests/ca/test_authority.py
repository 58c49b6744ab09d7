"""The CA service: issuance, renewal, revocation, CRLs and OCSP over the registry, on both databases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from asn1crypto import x509
from sqlalchemy import select

from ca.authority import AuthorityPolicy, CertificateAuthority, certificate_of, parse_serial, utc_now
from ca.crl import load_crl
from ca.csr import build_csr
from ca.errors import CaError, CertificateNotFound, InvalidRequest
from ca.names import credit_code_of, subject_name
from ca.ocsp import build_request, read_response
from ca.registry import CertificateRecord
from ca.validation import SEAL_SIGNING, validate_path
from hsm.hazmat import SM2PrivateKey
from hsm.soft import SoftKeyStore
from ledger.audit import AuditLog

CODE = "11350100MB0000000Y"


@pytest.fixture
def authority(db, tmp_path) -> CertificateAuthority:
    keys = SoftKeyStore(tmp_path / "keys", b"test passphrase", iterations=1000)
    for label in ("root", "issuing", "signer", "ocsp"):
        keys.generate(label)
    ca = CertificateAuthority(db, keys, AuditLog(db), actor="tester", policy=AuthorityPolicy(
        crl_base_url="http://crl.example", ocsp_url="http://ocsp.example/"))
    ca.create_root("root", subject_name("Test Root CA", organisation="证印测试"))
    ca.create_issuing("issuing", subject_name("Test Issuing CA", organisation="证印测试"))
    return ca


def _validate(ca: CertificateAuthority, record: CertificateRecord, *, at: datetime | None = None,
              with_crl: bool = True):
    issuing, root = ca.chain()
    crls = [load_crl(c.der) for c in ca.current_crls()] if with_crl else []
    return validate_path(certificate_of(record), trust_anchors=[root], intermediates=[issuing],
                         at=at or utc_now(), crls=crls, purpose=SEAL_SIGNING,
                         revocation="require" if with_crl else "off")


def test_issue_from_store_key_records_and_audits(authority):
    subject = subject_name("示例市市场监督管理局 签章人", organisation="示例市市场监督管理局",
                           credit_code=CODE)
    record = authority.issue("department-signer", subject, key_label="signer")
    cert = certificate_of(record)
    assert record.key_label == "signer" and record.key_version == 1
    assert record.credit_code == CODE == credit_code_of(cert.subject)
    assert cert.public_key.dump() == authority.keys.public_key("signer").to_spki().dump()
    assert format(cert.serial_number, "x") == record.serial
    assert _validate(authority, record).ok
    entries = authority.audit.entries(action="ca.issue", subject=f"cert:{record.serial}")
    assert len(entries) == 1 and entries[0].details["key"] == "signer/v1"
    assert authority.audit.verify().ok


def test_issue_from_csr_uses_csr_subject_and_checks_possession(authority):
    key = SM2PrivateKey.generate()
    csr = build_csr(key, subject_name("External signer", organisation="某局", credit_code=CODE))
    record = authority.issue("department-signer", csr=csr)
    assert record.key_label is None
    assert certificate_of(record).public_key.dump() == key.public_key().to_spki().dump()
    assert "External signer" in record.subject
    forged = bytearray(csr)
    forged[-5] ^= 0x01
    with pytest.raises(InvalidRequest):
        authority.issue("department-signer", csr=bytes(forged))


@pytest.mark.parametrize("kwargs, message", [
    ({"profile": "root-ca", "key_label": "signer"}, "CA profile"),
    ({"profile": "no-such-profile", "key_label": "signer"}, "no-such-profile"),
    ({"profile": "department-signer"}, "exactly one"),
    ({"profile": "department-signer", "key_label": "signer", "csr": b"x"}, "exactly one"),
])
def test_bad_requests_change_nothing(authority, kwargs, message):
    before = len(authority.certificates())
    with pytest.raises(InvalidRequest, match=message):
        authority.issue(subject=subject_name("x"), **kwargs)
    assert len(authority.certificates()) == before


def test_renew_after_rotation_certifies_the_new_key(authority):
    old = authority.issue("department-signer", subject_name("Signer"), key_label="signer")
    authority.keys.rotate("signer")
    new = authority.renew(old.serial)
    assert (new.key_version, new.renews_id, new.profile) == (2, old.id, old.profile)
    assert certificate_of(new).subject.dump() == certificate_of(old).subject.dump()
    assert new.serial != old.serial
    assert not authority.find(old.serial).revoked  # the old one lives on until it expires
    assert authority.audit.entries(action="ca.renew")[0].details["renews"] == old.serial


def test_revoke_publish_and_validate(authority):
    record = authority.issue("department-signer", subject_name("Signer"), key_label="signer")
    first = authority.current_crl()
    assert _validate(authority, record).ok
    compromised = utc_now() - timedelta(days=1)
    authority.revoke(record.serial, "key_compromise", invalidity_date=compromised)
    crl = authority.current_crl()  # a revocation after the last CRL forces a new one
    assert crl.number == first.number + 1
    listed = load_crl(crl.der)["tbs_cert_list"]["revoked_certificates"]
    assert [e["user_certificate"].native for e in listed] == [record.serial_number]
    result = _validate(authority, record)
    assert not result.ok and result.code == "REVOKED"
    assert authority.audit.entries(action="ca.revoke")[0].details["reason"] == "key_compromise"


def test_revocation_rules(authority):
    record = authority.issue("department-signer", subject_name("Signer"), key_label="signer")
    with pytest.raises(InvalidRequest, match="reason"):
        authority.revoke(record.serial, "because")
    with pytest.raises(InvalidRequest, match="reason"):
        authority.revoke(record.serial, "certificate_hold")
    with pytest.raises(InvalidRequest, match="future"):
        authority.revoke(record.serial, invalidity_date=utc_now() + timedelta(days=1))
    with pytest.raises(InvalidRequest, match="time zone"):
        authority.revoke(record.serial, invalidity_date=datetime(2026, 1, 1))
    assert not authority.find(record.serial).revoked
    authority.revoke(record.serial, "superseded")
    with pytest.raises(InvalidRequest, match="already revoked"):
        authority.revoke(record.serial, "superseded")
    with pytest.raises(InvalidRequest, match="root"):
        authority.revoke(authority.root().serial, "ca_compromise")


def test_serial_lookup(authority):
    record = authority.issue("department-signer", subject_name("Signer"), key_label="signer")
    spaced = ":".join(record.serial.zfill(len(record.serial) + len(record.serial) % 2)[i:i + 2]
                      for i in range(0, len(record.serial) + len(record.serial) % 2, 2))
    assert authority.find(spaced.upper()).id == record.id
    assert authority.find("0x" + record.serial).id == record.id
    with pytest.raises(CertificateNotFound):
        authority.find("abcdef")
    for bad in ("zz", "", "-5", 0):
        with pytest.raises(InvalidRequest):
            parse_serial(bad)


def test_ocsp_good_revoked_unknown(authority):
    responder = authority.issue("ocsp-responder", subject_name("OCSP"), key_label="ocsp")
    leaf = authority.issue("department-signer", subject_name("Signer"), key_label="signer")
    issuing = certificate_of(authority.issuing())

    def ask(cert: x509.Certificate) -> str:
        response = authority.respond_ocsp(build_request(cert, issuing))
        return read_response(response, issuer=issuing, serial=cert.serial_number).state

    assert ask(certificate_of(leaf)) == "good"
    assert ask(certificate_of(responder)) == "good"
    authority.revoke(leaf.serial, "key_compromise")
    assert ask(certificate_of(leaf)) == "revoked"
    stranger = authority.issue("department-signer", subject_name("Other"), key_label="signer")
    with authority.db.transaction() as s:  # make it look like another CA's certificate
        s.get(CertificateRecord, stranger.id).issuer_id = authority.root().id
    assert ask(certificate_of(stranger)) == "unknown"


def test_audit_failure_rolls_back_the_issuance(authority, monkeypatch):
    before = len(authority.certificates())

    def broken(*args, **kwargs):
        raise RuntimeError("audit store unavailable")

    monkeypatch.setattr(authority.audit, "record", broken)
    with pytest.raises(RuntimeError):
        authority.issue("department-signer", subject_name("Signer"), key_label="signer")
    assert len(authority.certificates()) == before


def test_no_ca_yet(db, tmp_path):
    keys = SoftKeyStore(tmp_path / "keys", b"test passphrase", iterations=1000)
    keys.generate("signer")
    ca = CertificateAuthority(db, keys, AuditLog(db), actor="t")
    with pytest.raises(CaError, match="issuing CA"):
        ca.issue("department-signer", subject_name("x"), key_label="signer")
    with pytest.raises(CaError, match="root"):
        ca.create_issuing("signer", subject_name("x"))
    with db.transaction() as s:
        assert s.scalars(select(CertificateRecord)).all() == []


def test_times_are_utc_on_both_databases(authority):
    issued = authority.issue("department-signer", subject_name("S"), key_label="signer")
    record = authority.find(issued.serial)
    assert record.not_before.tzinfo is not None and record.not_before.utcoffset() == timedelta(0)
    assert record.not_after > datetime.now(UTC)
