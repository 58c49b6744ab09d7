"""``zhengyin keys rotate --seal``: the issuer's licence seal is rotated twice between issuances,
and every licence issued before, between and after still verifies — OFD and PDF as
TOTAL_PASSED through the same engine ``zhengyin verify`` uses, the QR code offline against the
published trust list — while the later ones carry the new seal version and certificate, which
OpenSSL verifies on its own. The rotations are audited with the officer, the old and new key
versions and the certificate serials, and the old key versions no longer sign."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
from datetime import UTC, datetime

import pytest
from asn1crypto import x509

from ca.names import credit_code_check_character
from hsm.sm3 import sm3
from keys_dev.domain import DEMO_DEPARTMENT_CODE
from licences.qr_payload import verify_payload
from ofd.package import Package
from seals.seal_signature import read_seal_signature
from support.cli import run_cli
from trust.domain import TrustDomain
from trust.validation import validate_document

BUSINESS = "11100000MB0000019L001"
OFFICER = "officer:wang"


def _json(home, *args: str):
    code, out, err = run_cli(home, *args, "--json")
    assert code == 0, err + out
    return json.loads(out)


def _issue(home, out_dir, n: int) -> dict:
    example = {t["code"]: t["example"] for t in _json(home, "licence", "types")}[BUSINESS]
    first17 = f"91350102MB{n:07d}"
    data = dict(example, 统一社会信用代码=first17 + credit_code_check_character(first17))
    path = out_dir / f"data-{n}.json"
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return _json(home, "licence", "issue", "--type", BUSINESS, "--data", str(path), "--out", str(out_dir / str(n)))


def _seal_signature(ofd: bytes):
    package = Package.open(ofd)
    name = next(n for n in package.names if n.endswith("/SignedValue.dat"))
    folder = name.rsplit("/", 1)[0]
    return read_seal_signature(package.read(name)), package, folder


def _serial(der: bytes) -> str:
    return format(x509.Certificate.load(der).serial_number, "x")


@pytest.fixture(scope="module")
def story(tmp_path_factory):
    """Two licences, rotation, one licence, rotation, two licences — on one development home."""
    home = tmp_path_factory.mktemp("rotation-home")
    out = tmp_path_factory.mktemp("rotation-out")
    assert run_cli(home, "init")[0] == 0
    seal = next(s for s in _json(home, "seal", "list")
                if s["kind"] == "licence" and s["credit_code"] == DEMO_DEPARTMENT_CODE)
    groups: list[list[dict]] = [[_issue(home, out, 1), _issue(home, out, 2)]]
    rotations = []
    for n in (3, 4):
        rotations.append(_json(home, "keys", "rotate", "--seal", seal["esid"], "--reason", "yearly rotation"))
        groups.append([_issue(home, out, n * 10), *([_issue(home, out, n * 10 + 1)] if n == 4 else [])])
    published = _json(home, "publish")
    return {"home": home, "seal": seal, "groups": groups, "rotations": rotations, "published": published}


def test_every_licence_old_and_new_verifies_as_ofd_and_pdf(story):
    td = TrustDomain.open(str(story["home"]))
    try:
        context, now = td.verification_trust(), datetime.now(UTC)
    finally:
        td.close()
    licences = [licence for group in story["groups"] for licence in group]
    assert len(licences) == 5
    for licence in licences:
        for kind in ("ofd", "pdf"):
            with open(licence[kind], "rb") as fh:
                report = validate_document(fh.read(), context, now)
            assert report.indication == "TOTAL_PASSED", (licence["identifier"], kind, report.as_dict())
            if kind == "ofd":  # the registry knows the seal version each carries, old ones included
                status = [c for sig in report.signatures for c in sig.checks if c.name == "seal-status"]
                assert status and all(c.ok for c in status), report.as_dict()
    # and through the command line itself, for the first and the last
    for licence in (licences[0], licences[-1]):
        for kind in ("ofd", "pdf"):
            code, out, err = run_cli(story["home"], "verify", licence[kind], "--json")
            assert code == 0 and json.loads(out)["indication"] == "TOTAL_PASSED", out + err


def test_each_group_carries_its_own_seal_version_and_certificate(story):
    first, second = story["rotations"]
    assert (first["old_version"], first["new_version"], second["new_version"]) == (1, 2, 3)
    assert first["new_fingerprint_sm3"] == second["old_fingerprint_sm3"]
    assert first["new_certificates"] == second["old_certificates"]
    label = f"seal-{story['seal']['esid']}-signer"
    assert first["old_keys"] == [f"{label}/v1"] and second["new_keys"] == [f"{label}/v3"]
    expected = [(first["old_fingerprint_sm3"], first["old_certificates"][0]),
                (first["new_fingerprint_sm3"], first["new_certificates"][0]),
                (second["new_fingerprint_sm3"], second["new_certificates"][0])]
    for group, (fingerprint, serial) in zip(story["groups"], expected, strict=True):
        for licence in group:
            with open(licence["ofd"], "rb") as fh:
                value, _, _ = _seal_signature(fh.read())
            assert sm3(value.seal.encoded).hex() == fingerprint
            assert _serial(value.signer_certificate) == serial
            assert value.seal.es_id == story["seal"]["esid"]  # the same seal, another version
            assert value.signer_certificate in value.seal.certificates
    assert len({fp for fp, _ in expected}) == len({s for _, s in expected}) == 3


def test_qr_codes_verify_offline_against_the_published_trust_list(story):
    listed = json.loads((story["home"] / "public" / "trust-list.json").read_text(encoding="utf-8"))
    signers = [base64.b64decode(e["certificate"]) for e in listed["certificates"]
               if e["role"] == "department-signer"]
    serials = {e["serial"] for e in listed["certificates"] if e["role"] == "department-signer"}
    for rotation in story["rotations"]:  # old and new certificates both published, both valid
        assert set(rotation["old_certificates"] + rotation["new_certificates"]) <= serials
    for group in story["groups"]:
        for licence in group:
            result = verify_payload(licence["qr"], signers, at=datetime.now(UTC))
            assert result.ok, result.as_dict()
            assert result.claims.identifier == licence["identifier"]
    # the last one is signed by the newest key: the oldest certificate alone does not verify it
    oldest = [d for d in signers if _serial(d) == story["rotations"][0]["old_certificates"][0]]
    assert not verify_payload(story["groups"][-1][0]["qr"], oldest, at=datetime.now(UTC)).ok
    code, out, err = run_cli(story["home"], "verify-qr", story["groups"][0][0]["qr"], "--json")
    assert code == 0, out + err


def test_the_rotations_are_audited_and_the_old_keys_no_longer_sign(story):
    home = story["home"]
    td = TrustDomain.open(str(home))
    try:
        entries = [e for e in td.audit.entries(action="seal.rotate", limit=10)]
        versions = {v.version: v for v in td.keys.versions(f"seal-{story['seal']['esid']}-signer")}
        seal_versions = td.seals.versions(story["seal"]["esid"])
        record = td.seals.find(story["seal"]["esid"])
    finally:
        td.close()
    assert len(entries) == 2
    for entry, rotation in zip(sorted(entries, key=lambda e: e.seq), story["rotations"], strict=True):
        details = json.loads(entry.payload)["details"]
        assert entry.subject == f"seal:{story['seal']['esid']}" and entry.actor.startswith("cli:")
        assert details["old_keys"] == rotation["old_keys"] and details["new_keys"] == rotation["new_keys"]
        assert details["old_certificates"] == rotation["old_certificates"]
        assert details["new_certificates"] == rotation["new_certificates"]
        assert details["reason"] == "yearly rotation"
    assert [versions[n].state.value for n in (1, 2, 3)] == ["disabled", "disabled", "active"]
    assert [v.version for v in seal_versions] == [1, 2, 3]
    assert seal_versions[0].superseded_at and seal_versions[1].superseded_at and not seal_versions[2].superseded_at
    assert record.fingerprint == seal_versions[2].fingerprint == story["rotations"][1]["new_fingerprint_sm3"]
    assert [c.serial for c in record.certificates] == story["rotations"][1]["new_certificates"]
    assert run_cli(home, "audit", "verify")[0] == 0


def test_the_actor_is_whoever_the_domain_acts_as(story, tmp_path):
    """The function other code calls (compromise response, the HTTP service) records its caller."""
    from seals.rotation import rotate_seal

    td = TrustDomain.open(str(story["home"]), actor=OFFICER)
    try:
        rotation = rotate_seal(td.seals, story["seal"]["esid"])
        entry = td.audit.entries(action="seal.rotate", limit=1)[0]
        later = td.licence_desk.issue(BUSINESS, dict(td.catalogue.get(BUSINESS).example,
                                                     统一社会信用代码=_code(99)), issuer_code=DEMO_DEPARTMENT_CODE)
        report = validate_document(later.ofd, td.verification_trust(), datetime.now(UTC))
    finally:
        td.close()
    assert entry.actor == OFFICER and json.loads(entry.payload)["details"]["new_keys"] == list(rotation.new_keys)
    assert report.indication == "TOTAL_PASSED"
    value, _, _ = _seal_signature(later.ofd)
    assert sm3(value.seal.encoded).hex() == rotation.new_fingerprint


def _code(n: int) -> str:
    first17 = f"91350102MC{n:07d}"
    return first17 + credit_code_check_character(first17)


def _openssl_verify(work, cert: bytes, data: bytes, signature: bytes) -> subprocess.CompletedProcess:
    (work / "c.der").write_bytes(cert)
    subprocess.run(["openssl", "x509", "-inform", "DER", "-in", str(work / "c.der"), "-pubkey", "-noout",
                    "-out", str(work / "p.pem")], check=True, capture_output=True, timeout=30)
    (work / "m").write_bytes(data)
    (work / "s").write_bytes(signature)
    return subprocess.run(["openssl", "pkeyutl", "-verify", "-pubin", "-inkey", str(work / "p.pem"), "-rawin",
                           "-in", str(work / "m"), "-sigfile", str(work / "s"), "-digest", "sm3",
                           "-pkeyopt", "distid:1234567812345678"], capture_output=True, timeout=30)


@pytest.mark.interop
def test_openssl_verifies_a_post_rotation_seal_signature_and_its_new_seal(story, tmp_path):
    if shutil.which("openssl") is None:
        pytest.skip("openssl CLI not found")
    with open(story["groups"][-1][-1]["ofd"], "rb") as fh:
        value, package, folder = _seal_signature(fh.read())
    assert value.data_hash.payload == sm3(package.read(f"{folder}/Signature.xml"))
    assert _serial(value.signer_certificate) == story["rotations"][-1]["new_certificates"][0]
    signed = _openssl_verify(tmp_path, value.signer_certificate, value.signed_bytes, value.signature.payload)
    assert signed.returncode == 0 and b"Verified Successfully" in signed.stdout, signed.stderr
    seal = value.seal
    made = _openssl_verify(tmp_path, seal.maker_certificate, seal.maker_signed_bytes, seal.maker_signature.payload)
    assert made.returncode == 0 and b"Verified Successfully" in made.stdout, made.stderr
    bad = _openssl_verify(tmp_path, value.signer_certificate, value.signed_bytes[:-1] + b"\x00",
                          value.signature.payload)
    assert bad.returncode != 0


def test_a_superseded_version_is_in_use_only_until_its_rotation(story):
    """What the registry tells a verifier: each version is active from its making to the rotation
    that superseded it; a signature claiming a later time with the old version is not ours."""
    from trust.validation import seal_status_check

    td = TrustDomain.open(str(story["home"]))
    try:
        versions = td.seals.versions(story["seal"]["esid"])
        context = td.verification_trust()
    finally:
        td.close()
    first, last = versions[0], versions[-1]
    history = context.seal_histories[first.der]
    assert (first.superseded_at, "superseded") in history and history[-1][1] == "superseded"
    with open(story["groups"][0][0]["ofd"], "rb") as fh:
        before = _seal_signature(fh.read())[0].time_info  # when the first licence was sealed
    assert before < first.superseded_at
    assert seal_status_check(first.der, before, context).ok
    assert not seal_status_check(first.der, first.superseded_at, context).ok
    assert not seal_status_check(first.der, datetime.now(UTC), context).ok
    assert last.superseded_at is None and seal_status_check(last.der, datetime.now(UTC), context).ok
    assert not seal_status_check(last.der, first.made_at, context).ok  # before the version existed


def test_revoke_old_files_the_revocation_for_a_second_officer(tmp_path):
    """Revoking a seal certificate is under dual control even as part of a rotation: the rotation
    happens, the old certificate stays valid until another officer approves its revocation."""
    home = tmp_path / "home"
    assert run_cli(home, "init")[0] == 0
    seals = _json(home, "seal", "list")
    es_id = next(s["esid"] for s in seals if s["kind"] == "licence")
    code, out, err = run_cli(home, "keys", "rotate", "--seal", es_id, "--revoke-old", "--json",
                             env={"ZHENGYIN_ACTOR": "officer-a"})
    assert code == 0, err + out
    rotation = json.loads(out)
    [request] = rotation["revocation_requests"]
    old_serial = rotation["old_certificates"][0]
    assert request["serial"] == old_serial and not request["executed"]
    assert _json(home, "ca", "show", old_serial)["status"] == "valid"
    code, _, err = run_cli(home, "approvals", "approve", request["request_id"], env={"ZHENGYIN_ACTOR": "officer-a"})
    assert code != 0  # the requester cannot approve their own request
    code, _, err = run_cli(home, "approvals", "approve", request["request_id"], env={"ZHENGYIN_ACTOR": "officer-b"})
    assert code == 0, err
    shown = _json(home, "ca", "show", old_serial)
    assert shown["status"] == "revoked" and shown["revocation_reason"] == "superseded"
    assert _json(home, "ca", "show", rotation["new_certificates"][0])["status"] == "valid"
