"""``zhengyin ca rotate issuing|root``: a CA gets a new key and certificate while everything the
old one signed keeps verifying — licences issued before and after, the old key's CRL still
published (and still the one that revokes what it signed), both CA certificates in the trust
list, OpenSSL's own chain verification for the new paths, and a failed rotation leaves no key
that signs without a certificate."""

from __future__ import annotations

import json

import pytest
from asn1crypto import pem, x509
from fastapi.testclient import TestClient

from ca.crl import load_crl
from support.cli import run_cli
from trust.domain import TrustDomain
from trust.independent import verify_chain

CRL_BASE = "https://verify.example/crl"
ENV = {"ZHENGYIN_CRL_BASE_URL": CRL_BASE}
BUSINESS = "11100000MB0000019L001"


def _json(home, *args: str):
    code, out, err = run_cli(home, *args, "--json", env=ENV)
    assert code == 0, err + out
    return json.loads(out)


def _home(tmp_path_factory, name: str):
    path = tmp_path_factory.mktemp(name)
    _json(path, "init")
    return path


def _issue_licence(home, tmp_path, n: int) -> dict:
    example = {t["code"]: t["example"] for t in _json(home, "licence", "types")}[BUSINESS]
    from ca.names import credit_code_check_character

    first17 = f"91350102MA{n:07d}"
    data = dict(example, 统一社会信用代码=first17 + credit_code_check_character(first17))
    path = tmp_path / f"data-{n}.json"
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return _json(home, "licence", "issue", "--type", BUSINESS, "--data", str(path), "--out",
                 str(tmp_path / f"out-{n}"))


def _assert_licence_verifies(home, licence: dict) -> None:
    for kind in ("ofd", "pdf"):
        code, out, err = run_cli(home, "verify", licence[kind], "--json", env=ENV)
        assert code == 0 and json.loads(out)["indication"] == "TOTAL_PASSED", out + err
    code, out, err = run_cli(home, "verify-qr", licence["qr"], "--json", env=ENV)
    assert code == 0, out + err


def _leaf(home, tmp_path, name: str) -> tuple[dict, bytes]:
    out = tmp_path / f"{name}.pem"
    record = _json(home, "ca", "issue", "--profile", "department-signer", "--key", "dev-dept-signer",
                   "--cn", name, "--out", str(out))
    return record, pem.unarmor(out.read_bytes())[2]


def _ca_verify(home, der: bytes, tmp_path) -> str:
    path = tmp_path / "check.der"
    path.write_bytes(der)
    code, out, err = run_cli(home, "ca", "verify", str(path), "--json", env=ENV)
    assert code in (0, 1), err
    return json.loads(out)["code"]


def _issuer_key_id(der: bytes) -> bytes:
    return x509.Certificate.load(der).authority_key_identifier


def _crl_url(der: bytes) -> str:
    points = x509.Certificate.load(der).crl_distribution_points_value.native
    return points[0]["distribution_point"][0]


def test_issuing_ca_rotation_keeps_old_licences_valid_and_the_old_crl_alive(tmp_path_factory, tmp_path):
    home = _home(tmp_path_factory, "issuing-rotation")
    before = _issue_licence(home, tmp_path, 101)
    old_leaf, old_der = _leaf(home, tmp_path, "before rotation")

    rotation = _json(home, "ca", "rotate", "issuing")
    assert rotation["ca"] == "issuing" and rotation["old"]["serial"] != rotation["new"]["serial"]
    assert rotation["old"]["key"] == "dev-issuing-ca/v1" and rotation["new"]["key"] == "dev-issuing-ca/v2"

    after = _issue_licence(home, tmp_path, 102)
    _, new_der = _leaf(home, tmp_path, "after rotation")
    assert _issuer_key_id(new_der) != _issuer_key_id(old_der)  # signed by the new key
    assert _crl_url(old_der) == f"{CRL_BASE}/issuing.crl"
    assert _crl_url(new_der) == f"{CRL_BASE}/issuing-v2.crl"
    for licence in (before, after):
        _assert_licence_verifies(home, licence)
    assert _ca_verify(home, old_der, tmp_path) == _ca_verify(home, new_der, tmp_path) == "VALID"

    # The old key still revokes what it signed: its CRL lists the old leaf, the new key's does not.
    td = TrustDomain.open(str(home))
    try:
        td.ca.revoke(old_leaf["serial"], "superseded")
    finally:
        td.close()
    assert _ca_verify(home, old_der, tmp_path) == "REVOKED"
    assert _ca_verify(home, new_der, tmp_path) == "VALID"

    report = _json(home, "publish")
    assert {"crl/issuing.crl", "crl/issuing-v2.crl", "crl/root.crl"} <= set(report["files"])
    public = home / "public"
    listed = {int(e["user_certificate"].native) for e in
              load_crl((public / "crl" / "issuing.crl").read_bytes())["tbs_cert_list"]["revoked_certificates"]}
    assert int(old_leaf["serial"], 16) in listed
    assert not load_crl((public / "crl" / "issuing-v2.crl").read_bytes())["tbs_cert_list"]["revoked_certificates"]
    trust_list = json.loads((public / "trust-list.json").read_text(encoding="utf-8"))
    issuing = [e for e in trust_list["certificates"] if e["role"] == "issuing-ca"]
    assert {e["serial"] for e in issuing} == {rotation["old"]["serial"], rotation["new"]["serial"]}
    assert {e["status"] for e in issuing} == {"valid"}  # the overlap: both vouched for

    # OpenSSL's chain verification, each path with its own CA key's CRL.
    def der_of(serial: str) -> bytes:
        return pem.unarmor(_cert_pem(home, serial))[2]

    root = der_of(_json(home, "ca", "list", "--profile", "root-ca")[0]["serial"])
    crls = {name: (public / "crl" / name).read_bytes() for name in ("issuing.crl", "issuing-v2.crl", "root.crl")}
    fresh = verify_chain(new_der, anchor=root, intermediates=[der_of(rotation["new"]["serial"])],
                         crls=[crls["issuing-v2.crl"], crls["root.crl"]])
    assert fresh.available and fresh.ok, fresh.detail
    stale = verify_chain(old_der, anchor=root, intermediates=[der_of(rotation["old"]["serial"])],
                         crls=[crls["issuing.crl"], crls["root.crl"]])
    assert stale.available and not stale.ok and "revoked" in stale.detail.lower()

    # What `ca export` hands a relying party without the home is enough for both generations.
    exported = tmp_path / "export"
    files = set(_json(home, "ca", "export", "--out", str(exported))["files"])
    assert {"trust-anchors.pem", "intermediates.pem", "crl.pem", "crl-v1.pem", "crl-v2.pem"} <= files
    for licence in (before, after):
        code, out, err = run_cli(
            home, "verify", licence["ofd"], "--no-home", "--trust-anchor", str(exported / "trust-anchors.pem"),
            "--cert", str(exported / "intermediates.pem"), "--crl", str(exported / "crl-v1.pem"),
            "--crl", str(exported / "crl-v2.pem"), "--crl", str(exported / "root-crl.pem"),
            "--seal-maker", str(exported / "seal-makers.pem"), "--json", env=ENV)
        assert code == 0 and json.loads(out)["indication"] == "TOTAL_PASSED", out + err

    # The public service serves the rotated key's CRL at the URL its certificates name.
    from verify_api.app import create_app

    client = TestClient(create_app(home))
    answer = client.get("/crl/issuing-v2.crl")
    assert answer.status_code == 200 and answer.content == crls["issuing-v2.crl"]
    assert answer.headers["content-type"] == "application/pkix-crl"
    for missing in ("/crl/issuing-v3.crl", "/crl/other-v2.crl", "/crl/issuing-v1.crl"):
        answer = client.get(missing)
        assert answer.status_code == 404 and answer.json()["error"]["code"] == "not_published"


def _cert_pem(home, serial: str) -> bytes:
    td = TrustDomain.open(str(home))
    try:
        return pem.armor("CERTIFICATE", td.ca.find(serial).der)
    finally:
        td.close()


def test_root_rotation_recertifies_the_issuing_ca_and_both_roots_anchor(tmp_path_factory, tmp_path):
    home = _home(tmp_path_factory, "root-rotation")
    before = _issue_licence(home, tmp_path, 201)
    _, old_der = _leaf(home, tmp_path, "under the old root")
    old_root = _json(home, "ca", "list", "--profile", "root-ca")[0]

    rotation = _json(home, "ca", "rotate", "root")
    assert rotation["old"]["serial"] == old_root["serial"] and rotation["new"]["key"] == "dev-root-ca/v2"
    recertified = rotation["recertified_issuing"]
    assert recertified["key"] == "dev-issuing-ca/v1"  # the same issuing key, a new certificate

    _, new_der = _leaf(home, tmp_path, "under the new root")
    after = _issue_licence(home, tmp_path, 202)
    for licence in (before, after):
        _assert_licence_verifies(home, licence)
    assert _ca_verify(home, old_der, tmp_path) == _ca_verify(home, new_der, tmp_path) == "VALID"

    report = _json(home, "publish")
    assert {"crl/root.crl", "crl/root-v2.crl", "crl/issuing.crl"} <= set(report["files"])
    public = home / "public"
    new_root = pem.unarmor(_cert_pem(home, rotation["new"]["serial"]))[2]
    opinion = verify_chain(new_der, anchor=new_root,
                           intermediates=[pem.unarmor(_cert_pem(home, recertified["serial"]))[2]],
                           crls=[(public / "crl" / "issuing.crl").read_bytes(),
                                 (public / "crl" / "root-v2.crl").read_bytes()])
    assert opinion.available and opinion.ok, opinion.detail
    roots = [e for e in json.loads((public / "trust-list.json").read_text(encoding="utf-8"))["certificates"]
             if e["role"] == "root"]
    assert {e["serial"] for e in roots} == {rotation["old"]["serial"], rotation["new"]["serial"]}


def test_a_failed_rotation_disables_the_new_key_and_changes_no_certificate(tmp_path_factory, monkeypatch):
    home = _home(tmp_path_factory, "failed-rotation")
    td = TrustDomain.open(str(home))
    try:
        current = td.ca.issuing()
        count = len(td.ca.certificates())

        def refuse(*args, **kwargs):
            raise RuntimeError("the root's key store is unreachable")

        monkeypatch.setattr(type(td.ca), "create_issuing", refuse)
        with pytest.raises(RuntimeError, match="unreachable"):
            td.ca.rotate_ca("issuing")
        assert td.ca.issuing().serial == current.serial and len(td.ca.certificates()) == count
        versions = {v.version: v for v in td.keys.versions(current.key_label)}
        assert versions[2].state.value == "disabled"  # nothing signs with a key no certificate vouches for
        assert td.ca.issue("department-signer", _subject(),
                           key_label="dev-dept-signer").issuer_id == current.id
        assert not [e for e in td.audit.entries() if e.action == "ca.rotate"]
    finally:
        td.close()


def _subject():
    from ca.names import subject_name

    return subject_name("after a failed rotation")


def test_rotation_is_audited_with_the_officer_and_refuses_unknown_cas(tmp_path_factory):
    home = _home(tmp_path_factory, "audited-rotation")
    code, _, err = run_cli(home, "ca", "rotate", "intermediate", "--json", env=ENV)
    assert code != 0 and "root or the issuing CA" in err
    td = TrustDomain.open(str(home), actor="officer-wang")
    try:
        rotation = td.ca.rotate_ca("issuing")
        entries = [e for e in td.audit.entries() if e.action == "ca.rotate"]
        assert len(entries) == 1 and entries[0].actor == "officer-wang"
        assert entries[0].details["new"]["serial"] == rotation.new.serial
        assert td.audit.verify().ok
    finally:
        td.close()
