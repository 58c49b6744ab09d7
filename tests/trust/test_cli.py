"""The command line end to end on a real home: init, keys, ca, audit, demo; exit codes; no tracebacks."""

from __future__ import annotations

import json
import subprocess

import pytest
from asn1crypto import pem, x509

from support.cli import run_cli
from support.paths import INTEROP
from trust.independent import verify_chain


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    path = tmp_path_factory.mktemp("home")
    code, out, _ = _run_in(path, "init", "--json")
    assert code == 0, out
    return path


_run_in = run_cli


def _json(home, *args: str, env: dict[str, str] | None = None) -> object:
    code, out, err = _run_in(home, *args, "--json", env=env)
    assert code == 0, err
    return json.loads(out)


def test_init_is_idempotent_and_says_what_exists(home):
    report = _json(home, "init")
    assert report["created"] == []
    assert any("root CA certificate" in item for item in report["existing"])
    assert any("department-signer" in item for item in report["existing"])


def test_keys_list_and_rotate(home):
    keys = _json(home, "keys", "list")
    labels = {k["label"] for k in keys}
    assert {"dev-root-ca", "dev-issuing-ca", "dev-seal-maker", "dev-dept-signer"} <= labels
    assert all("private" not in json.dumps(k).lower() for k in keys)
    rotated = _json(home, "keys", "rotate", "dev-dept-signer")
    assert rotated["version"] == 2 and rotated["current"]


def _der(path) -> bytes:
    return pem.unarmor(path.read_bytes())[2]


@pytest.mark.interop
def test_export_gives_a_chain_openssl_accepts(home, tmp_path):
    result = _json(home, "ca", "export", "--out", str(tmp_path))
    assert set(result["files"]) >= {"root.pem", "issuing.pem", "crl.pem", "root-crl.pem"}
    leaf = _json(home, "ca", "issue", "--profile", "department-signer", "--key", "dev-dept-signer",
                 "--cn", "测试签章人", "--org", "示例市市场监督管理局", "--credit-code", "11350100MB0000000Y",
                 "--out", str(tmp_path / "leaf.pem"))
    assert leaf["credit_code"] == "11350100MB0000000Y" and leaf["key"] == "dev-dept-signer/v2"
    # OpenSSL's X509_verify_cert, CRLs of both CAs required (trust.independent says why not the 3.0 CLI)
    opinion = verify_chain(_der(tmp_path / "leaf.pem"), anchor=_der(tmp_path / "root.pem"),
                           intermediates=[_der(tmp_path / "issuing.pem")],
                           crls=[_der(tmp_path / "crl.pem"), _der(tmp_path / "root-crl.pem")])
    assert opinion.available and opinion.ok, opinion.detail
    # the 3.0 CLI, one link at a time (its -vfyopt reaches only the certificate it is given)
    links = (("root.pem", "issuing.pem", []), ("issuing.pem", "leaf.pem", ["-partial_chain"]))
    for anchor, cert, extra in links:
        verify = subprocess.run(["openssl", "verify", "-vfyopt", "distid:1234567812345678", *extra, "-CAfile",
                                 str(tmp_path / anchor), str(tmp_path / cert)],
                                capture_output=True, text=True, timeout=30)
        assert verify.stdout.strip().endswith("OK"), verify.stdout + verify.stderr


def test_issue_revoke_crl_verify(home, tmp_path):
    leaf = _json(home, "ca", "issue", "--profile", "department-signer", "--key", "dev-dept-signer",
                 "--cn", "Revoke me", "--out", str(tmp_path / "leaf.pem"))
    code, out, _ = _run_in(home, "ca", "verify", str(tmp_path / "leaf.pem"), "--json")
    assert code == 0 and json.loads(out)["code"] == "VALID"
    # dual control: one officer files the revocation, a second approves it, and only then it counts
    filed = _json(home, "ca", "revoke", leaf["serial"], "--reason", "key_compromise",
                  "--invalidity-date", "2026-01-01T00:00:00Z", env={"ZHENGYIN_ACTOR": "officer-a"})
    assert filed["pending_approval"] and _json(home, "ca", "show", leaf["serial"])["status"] == "valid"
    approved = _json(home, "approvals", "approve", filed["id"], env={"ZHENGYIN_ACTOR": "officer-b"})
    revoked = approved["result"]
    assert revoked["status"] == "revoked" and revoked["invalidity_date"].startswith("2026-01-01")
    crl = _json(home, "ca", "crl", "--out", str(tmp_path / "crl.pem"))
    assert crl["entries"] >= 1
    code, out, _ = _run_in(home, "ca", "verify", str(tmp_path / "leaf.pem"), "--json")
    assert code == 1 and json.loads(out)["code"] == "REVOKED"
    shown = _json(home, "ca", "show", leaf["serial"])
    assert shown["status"] == "revoked" and shown["revocation_reason"] == "key_compromise"
    listed = _json(home, "ca", "list", "--profile", "department-signer")
    assert leaf["serial"] in {r["serial"] for r in listed}


def test_audit_records_every_act_and_verifies(home):
    code, out, _ = _run_in(home, "audit", "verify", "--json")
    assert code == 0 and json.loads(out)["ok"]
    actions = {e["action"] for e in _json(home, "audit", "list", "--limit", "500")}
    assert {"key.generate", "ca.issue", "ca.crl"} <= actions


@pytest.mark.parametrize("args, code, text", [
    (("ca", "show", "abcdef"), 4, "no certificate"),
    (("ca", "revoke", "abcdef", "--reason", "whim"), 6, "reason"),
    (("ca", "issue", "--profile", "nonsense", "--key", "dev-dept-signer", "--cn", "x"), 6, "profile"),
    (("ca", "issue", "--profile", "department-signer", "--key", "no-such-key", "--cn", "x"), 4,
     "no-such-key"),
    (("ca", "verify", "/nonexistent.pem"), 6, "does not exist"),
    (("keys", "rotate", "no-such-key"), 4, "no-such-key"),
])
def test_errors_are_one_line_with_meaningful_codes(home, args, code, text):
    got, _, err = _run_in(home, *args)
    assert got == code, err
    assert text in err


def test_wrong_passphrase_is_refused_without_change(home):
    before = _json(home, "keys", "list")
    code, _, err = _run_in(home, "keys", "rotate", "dev-seal-maker",
                           env={"ZHENGYIN_KEY_PASSPHRASE": "wrong passphrase"})
    assert code == 7 and "passphrase" in err
    assert _json(home, "keys", "list") == before


def test_production_refuses_development_material(tmp_path):
    code, _, err = _run_in(tmp_path / "prod", "init", env={"ZHENGYIN_ENV": "production"})
    assert code == 3 and "production" in err
    assert not (tmp_path / "prod" / "keys").exists()


@pytest.mark.interop
def test_demo_passes_on_a_fresh_home(tmp_path):
    code, out, err = _run_in(tmp_path / "demo", "demo", "--json")
    report = json.loads(out)
    assert code == 0 and report["ok"], err + out
    names = {s["name"].split(" (")[0] for s in report["steps"]}
    assert {"path validation", "X509_verify_cert", "openssl pkeyutl -verify", "audit chain"} <= names
    assert all("skipped" not in s["detail"] for s in report["steps"])


@pytest.mark.interop
def test_import_pkcs12_from_another_producer(home):
    p12 = INTEROP / "certs" / "ofdrw_USER.p12"
    code, _, err = _run_in(home, "keys", "import", "ofdrw-user", str(p12), "--password-env", "P12_PASS",
                           env={"P12_PASS": "wrong"})
    assert code == 7 and "ofdrw-user" not in {k["label"] for k in _json(home, "keys", "list")}
    code, out, err = _run_in(home, "keys", "import", "ofdrw-user", str(p12), "--password-env", "P12_PASS",
                             "--json", env={"P12_PASS": "777777"})
    assert code == 0, err
    imported = json.loads(out)
    cert = x509.Certificate.load(pem.unarmor((INTEROP / "certs" / "ofdrw_USER_cert.pem").read_bytes())[2])
    assert imported["origin"] == "imported"
    assert bytes.fromhex(imported["public_key"]) == cert.public_key["public_key"].native
    entries = _json(home, "audit", "list", "--limit", "500")
    assert any(e["action"] == "key.import" and "ofdrw-user" in e["subject"] for e in entries)
