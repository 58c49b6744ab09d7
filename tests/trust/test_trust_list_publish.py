"""``zhengyin publish``: the signed trust list and the CRLs written for the public service, and a
relying party checking the list offline with nothing but the root certificate and the published
CRLs (our verifier, and OpenSSL on the signature over the signed attributes); the signer rotated
after a revocation, certified from the publish's own time; rollback, future and unchecked-
revocation lists."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
from datetime import UTC, datetime, timedelta

import pytest
from asn1crypto import cms

from ca.cms import sign_signed_data
from ca.crl import load_crl
from ca.validation import validate_path
from hsm.sm3 import sm3
from licences.qr_payload import key_id_of
from support.cli import run_cli
from support.pki import make_pki
from trust.domain import TrustDomain
from trust.trust_list import (
    SIGNER_KEY_LABEL,
    SIGNER_PROFILE,
    TrustListError,
    encode,
    publish,
    verify_trust_list,
)


def published_crls(home) -> list:
    """The CRLs ``publish`` wrote beside the list: what a relying party fetches with it."""
    return [load_crl((home / "public" / "crl" / f"{which}.crl").read_bytes()) for which in ("root", "issuing")]


def published_pair(home) -> tuple[bytes, bytes]:
    public = home / "public"
    return (public / "trust-list.json").read_bytes(), (public / "trust-list.p7s").read_bytes()


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    path = tmp_path_factory.mktemp("publish-home")
    code, _, err = run_cli(path, "init")
    assert code == 0, err
    return path


@pytest.fixture(scope="module")
def published(home) -> dict:
    code, out, err = run_cli(home, "publish", "--json")
    assert code == 0, err
    report = json.loads(out)
    public = home / "public"
    return {"report": report, "content": (public / "trust-list.json").read_bytes(),
            "signature": (public / "trust-list.p7s").read_bytes()}


@pytest.fixture(scope="module")
def chain(home):
    td = TrustDomain.open(str(home))
    try:
        issuing, root = td.ca.chain()
    finally:
        td.close()
    return root, issuing


def test_publish_writes_the_list_its_signature_and_the_crls(home, published):
    report = published["report"]
    version = report["version"]
    assert version >= 1 and set(report["files"]) == {
        "crl/root.crl", "crl/issuing.crl", "trust-list.json", "trust-list.p7s",
        f"trust-list-{version}.json", f"trust-list-{version}.p7s"}
    public = home / "public"
    assert (public / f"trust-list-{version}.json").read_bytes() == published["content"]
    assert (public / f"trust-list-{version}.p7s").read_bytes() == published["signature"]
    assert report["trust_list_sm3"] == sm3(published["content"]).hex()
    document = json.loads(published["content"])
    assert published["content"] == encode(document)  # the bytes served are the canonical bytes signed
    issued, next_update = (datetime.fromisoformat(document[k].replace("Z", "+00:00"))
                           for k in ("issued_at", "next_update"))
    assert next_update - issued == timedelta(hours=24)
    for which in ("root", "issuing"):
        assert (home / "public" / "crl" / f"{which}.crl").read_bytes()[:1] == b"\x30"


def test_trust_list_verifies_offline_with_the_root_and_the_crls(home, published, chain):
    root, issuing = chain
    result = verify_trust_list(published["content"], published["signature"], [root.dump()],
                               crls=published_crls(home))
    assert result.ok, [c for c in result.checks if not c.ok]
    assert result.revocation_checked and result.warnings == ()
    assert any(c.name == "signer-revocation" and c.ok for c in result.checks)
    entries = result.document["certificates"]
    roles = [e["role"] for e in entries]
    assert roles.count("root") == 1 and roles.count("issuing-ca") == 1 and "seal-maker" in roles
    assert "department-signer" in roles and roles.count("trust-list-signer") == 1
    now = datetime.now(UTC)
    for entry in entries:
        der = base64.b64decode(entry["certificate"])
        assert entry["sm3_fingerprint"] == sm3(der).hex() and entry["status"] == "valid"
        assert entry["subject"] and entry["not_before"] < entry["not_after"]
        if entry["role"] == "department-signer":
            assert entry["qr_key_id"] == key_id_of(der).hex()
    for cert in result.certificates():
        assert validate_path(cert, trust_anchors=[root], intermediates=[issuing], at=now, revocation="off").ok


def test_a_changed_list_or_another_anchor_fails(published, chain):
    root, _ = chain
    changed = published["content"].replace(b'"valid"', b'"revoked"', 1)
    result = verify_trust_list(changed, published["signature"], [root])
    assert not result.ok and result.indication == "TOTAL_FAILED" and result.certificates() == []
    assert any(c.name == "message-digest" and not c.ok for c in result.checks)
    stranger = make_pki().root
    other = verify_trust_list(published["content"], published["signature"], [stranger])
    assert not other.ok and any(c.name == "signer-chain" and not c.ok for c in other.checks)


def test_only_the_trust_list_signer_can_sign_a_list(home, published, chain):
    """A department signer chains to the same root but lacks the trust-list-signing EKU."""
    root, issuing = chain
    td = TrustDomain.open(str(home))
    try:
        (record,) = [r for r in td.ca.certificates(profile="department-signer")
                     if r.key_label == "dev-dept-signer"]
        forged = sign_signed_data(signer=td.keys.signer("dev-dept-signer"), certificate=record.der,
                                  chain=[issuing.dump(), root.dump()], content=published["content"],
                                  flavour="rfc5652")
    finally:
        td.close()
    result = verify_trust_list(published["content"], forged, [root])
    failed = [c for c in result.checks if not c.ok]
    assert [c.name for c in failed] == ["signer-chain"]


def test_a_stale_list_is_not_current(published, chain):
    later = datetime.now(UTC) + timedelta(days=2)
    result = verify_trust_list(published["content"], published["signature"], [chain[0]], at=later,
                               revocation="off")
    assert not result.ok and [c.name for c in result.checks if not c.ok] == ["freshness"]


def test_without_crls_the_list_does_not_verify_unless_revocation_is_waived_loudly(published, chain):
    root, _ = chain
    strict = verify_trust_list(published["content"], published["signature"], [root])
    assert not strict.ok and strict.indication == "INDETERMINATE"
    assert [c.name for c in strict.checks if not c.ok] == ["signer-revocation"]
    assert strict.sub_indication == "TRY_LATER" and strict.certificates() == []
    waived = verify_trust_list(published["content"], published["signature"], [root], revocation="off")
    assert waived.ok and not waived.revocation_checked
    assert waived.warnings and "NOT checked" in waived.warnings[0]
    with pytest.raises(ValueError):
        verify_trust_list(published["content"], published["signature"], [root], revocation="if_available")


def test_an_older_version_than_one_seen_is_a_rollback(home, published, chain):
    root, _ = chain
    version = json.loads(published["content"])["version"]
    crls = published_crls(home)
    same = verify_trust_list(published["content"], published["signature"], [root], crls=crls,
                             min_version=version)
    assert same.ok
    newer_seen = verify_trust_list(published["content"], published["signature"], [root], crls=crls,
                                   min_version=version + 1)
    assert not newer_seen.ok and [c.name for c in newer_seen.checks if not c.ok] == ["version"]
    assert newer_seen.indication == "TOTAL_FAILED"


def test_a_list_issued_in_the_future_is_refused(home, published, chain):
    """Signed by the genuine trust-list signer, but dated a day ahead: a list from the future
    could outlive every revocation published before that day."""
    root, issuing = chain
    document = json.loads(published["content"])
    now = datetime.now(UTC).replace(microsecond=0)
    for name, moment in (("issued_at", now + timedelta(days=1)), ("next_update", now + timedelta(days=2))):
        document[name] = moment.isoformat().replace("+00:00", "Z")
    content = encode(document)
    td = TrustDomain.open(str(home))
    try:
        (signer,) = td.ca.certificates(profile=SIGNER_PROFILE)
        signature = sign_signed_data(signer=td.keys.signer(SIGNER_KEY_LABEL, signer.key_version),
                                     certificate=signer.der, chain=[issuing.dump(), root.dump()],
                                     content=content, detached=True, flavour="rfc5652")
    finally:
        td.close()
    crls = published_crls(home)
    result = verify_trust_list(content, signature, [root], crls=crls, at=now)
    assert [c.name for c in result.checks if not c.ok] == ["issued-at"]
    assert result.sub_indication == "NOT_YET_VALID"
    skewed = verify_trust_list(content, signature, [root], crls=crls, at=now + timedelta(days=1, minutes=-4))
    assert skewed.ok  # within the allowed clock skew of five minutes


def test_versions_grow_and_the_signer_is_made_once(home, published):
    td = TrustDomain.open(str(home))
    try:
        first = published["report"]
        again = publish(td, validity=timedelta(hours=1))
        assert again.version == first["version"] + 1 and again.signer_serial == first["signer_serial"]
        (td.settings.home / "public" / "trust-list.json").unlink()  # a lost file does not reset the count
        third = publish(td)
        assert third.version == again.version + 1
        signers = td.ca.certificates(profile="trust-list-signer")
        assert len(signers) == 1 and signers[0].key_label == SIGNER_KEY_LABEL
        actions = [e.action for e in td.audit.entries(limit=500)]
        assert actions.count("trust.publish") == 3 and "ca.issue" in actions
        with pytest.raises(TrustListError, match="validity"):
            publish(td, validity=timedelta(days=30))
    finally:
        td.close()


def test_a_revoked_signer_is_listed_as_revoked(tmp_path):
    code, _, err = run_cli(tmp_path, "init")
    assert code == 0, err
    td = TrustDomain.open(str(tmp_path))
    try:
        (record,) = [r for r in td.ca.certificates(profile="department-signer")
                     if r.key_label == "dev-dept-signer"]
        td.ca.revoke(record.serial, "key_compromise")
        report = publish(td)
        document = json.loads((tmp_path / "public" / "trust-list.json").read_bytes())
        (entry,) = [e for e in document["certificates"] if e["serial"] == record.serial]
        assert entry["status"] == "revoked" and entry["revocation_reason"] == "key_compromise"
        root = td.ca.chain()[1]
        result = verify_trust_list(*published_pair(tmp_path), [root], crls=published_crls(tmp_path))
        assert result.ok and record.der not in [c.dump() for c in result.certificates("department-signer")]
        assert report.crl_numbers["issuing"] >= 2  # the revocation made a fresh CRL
    finally:
        td.close()


@pytest.mark.parametrize("reason", ["key_compromise", "superseded"])
def test_a_revoked_trust_list_signer_gets_a_new_key(tmp_path, reason):
    """Any revocation condemns the key: the next publish rotates it and certifies the new one,
    and the old signer's lists stop verifying against the new CRLs."""
    code, _, err = run_cli(tmp_path, "init")
    assert code == 0, err
    td = TrustDomain.open(str(tmp_path))
    try:
        first = publish(td)
        old_content, old_signature = published_pair(tmp_path)
        (old,) = td.ca.certificates(profile=SIGNER_PROFILE)
        td.ca.revoke(old.serial, reason)
        second = publish(td)
        signers = td.ca.certificates(profile=SIGNER_PROFILE)
        assert [s.serial for s in signers] == [old.serial, second.signer_serial] != [first.signer_serial] * 2
        new = signers[-1]
        assert new.key_label == SIGNER_KEY_LABEL and new.key_version == old.key_version + 1
        assert new.key_id != old.key_id and not new.revoked
        assert [v.version for v in td.keys.versions(SIGNER_KEY_LABEL)] == [1, 2]
        third = publish(td)  # the new certificate is used from now on: no rotation every time
        assert third.signer_serial == new.serial and len(td.keys.versions(SIGNER_KEY_LABEL)) == 2
        root = td.ca.chain()[1]
        crls = published_crls(tmp_path)
        current = verify_trust_list(*published_pair(tmp_path), [root], crls=crls)
        assert current.ok, [c for c in current.checks if not c.ok]
        assert current.signer.dump() == new.der
        replayed = verify_trust_list(old_content, old_signature, [root], crls=crls)
        assert not replayed.ok and replayed.sub_indication == "REVOKED"
        assert [c.name for c in replayed.checks if not c.ok] == ["signer-revocation"]
    finally:
        td.close()


def test_the_signer_is_certified_from_the_publish_time_whatever_the_ca_clock(tmp_path, monkeypatch):
    """The CA's clock a second ahead of publish's (the second ticked in between) must not make
    the list name its own signer not-yet-valid, nor fail to verify at its issue time."""
    import ca.authority

    code, _, err = run_cli(tmp_path, "init")
    assert code == 0, err
    real = ca.authority.utc_now
    monkeypatch.setattr(ca.authority, "utc_now", lambda: real() + timedelta(seconds=1))
    td = TrustDomain.open(str(tmp_path))
    try:
        report = publish(td, now=real())
        (signer,) = td.ca.certificates(profile=SIGNER_PROFILE)
        assert signer.not_before == report.issued_at
        document = json.loads(published_pair(tmp_path)[0])
        (entry,) = [e for e in document["certificates"] if e["role"] == "trust-list-signer"]
        assert entry["status"] == "valid"
        result = verify_trust_list(*published_pair(tmp_path), [td.ca.chain()[1]], at=report.issued_at,
                                   crls=published_crls(tmp_path))
        assert result.ok, [c for c in result.checks if not c.ok]
    finally:
        td.close()


def test_publish_on_a_home_without_a_ca_changes_nothing(tmp_path):
    code, _, err = run_cli(tmp_path, "publish")
    assert code != 0 and "Traceback" not in err
    assert not (tmp_path / "public" / "trust-list.json").exists()


@pytest.mark.interop
def test_openssl_reads_the_signature_and_verifies_it_over_the_signed_attributes(published, tmp_path):
    """OpenSSL 3.0's ``cms -verify`` checks SM2 with an empty user ID (README), so it cannot
    verify our GM/T 0009 default-ID signatures; it parses the SignedData, computes the SM3 that
    the messageDigest attribute must hold, and verifies the signature over the DER signed
    attributes with ``pkeyutl -pkeyopt distid:1234567812345678``."""
    if shutil.which("openssl") is None:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail("openssl CLI not found (CI=true: interop tests must run)")
        pytest.skip("openssl CLI not found")

    def openssl(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["openssl", *args], cwd=tmp_path, capture_output=True, text=True, timeout=60,
                              check=False)

    (tmp_path / "list.json").write_bytes(published["content"])
    (tmp_path / "list.p7s").write_bytes(published["signature"])
    printed = openssl("cms", "-cmsout", "-print", "-inform", "DER", "-in", "list.p7s")
    assert printed.returncode == 0 and "eContent: <ABSENT>" in printed.stdout, printed.stderr
    digest = openssl("dgst", "-sm3", "-r", "list.json")
    assert digest.returncode == 0, digest.stderr
    info = cms.ContentInfo.load(published["signature"])["content"]
    signer = info["signer_infos"][0]
    attrs = signer["signed_attrs"]
    (message_digest,) = [a["values"][0].native for a in attrs if a["type"].native == "message_digest"]
    assert digest.stdout.split()[0] == message_digest.hex()
    certificate = next(c.chosen for c in info["certificates"]
                       if c.chosen.serial_number == signer["sid"].chosen["serial_number"].native)
    (tmp_path / "signer.der").write_bytes(certificate.dump())
    (tmp_path / "attrs.der").write_bytes(b"\x31" + attrs.dump()[1:])
    (tmp_path / "sig.der").write_bytes(signer["signature"].native)
    key = openssl("x509", "-inform", "DER", "-in", "signer.der", "-pubkey", "-noout", "-out", "pub.pem")
    assert key.returncode == 0, key.stderr
    verified = openssl("pkeyutl", "-verify", "-pubin", "-inkey", "pub.pem", "-rawin", "-in", "attrs.der",
                       "-sigfile", "sig.der", "-digest", "sm3", "-pkeyopt", "distid:1234567812345678")
    assert "Signature Verified Successfully" in verified.stdout, verified.stdout + verified.stderr
    (tmp_path / "other.der").write_bytes(b"\x31" + attrs.dump()[1:-1] + bytes([attrs.dump()[-1] ^ 1]))
    refused = openssl("pkeyutl", "-verify", "-pubin", "-inkey", "pub.pem", "-rawin", "-in", "other.der",
                      "-sigfile", "sig.der", "-digest", "sm3", "-pkeyopt", "distid:1234567812345678")
    assert "Signature Verified Successfully" not in refused.stdout
