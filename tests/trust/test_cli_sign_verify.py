"""`zhengyin sign` and `zhengyin verify` end to end on a development home: the demo department's
licence seal seals a real unsigned OFD, which the verifier passes with the home's trust; the
exit code is the verdict; every sealing is in the audit log."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ofd.package import Package, write_package
from support.cli import run_cli
from support.paths import INTEROP
from support.verdicts import SEAL_SIGNATURE_CHECKS

UNSIGNED = INTEROP / "unsigned-ofd" / "ofdrw_helloworld.ofd"


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    if not UNSIGNED.exists():
        pytest.skip("interop samples not present")
    path = tmp_path_factory.mktemp("home")
    code, out, err = run_cli(path, "init", "--json")
    assert code == 0, err or out
    return path


@pytest.fixture(scope="module")
def licence_seal(home) -> str:
    code, out, err = run_cli(home, "seal", "list", "--json")
    assert code == 0, err
    seals = [s for s in json.loads(out) if s["kind"] == "licence" and s["status"] == "active"]
    assert seals, out
    return seals[0]["esid"]


@pytest.fixture(scope="module")
def sealed(home, licence_seal, tmp_path_factory):
    out_path = tmp_path_factory.mktemp("docs") / "sealed.ofd"
    code, out, err = run_cli(
        home, "sign", str(UNSIGNED), "--seal", licence_seal, "-o", str(out_path), "--json"
    )
    assert code == 0, err or out
    assert json.loads(out)["written_to"] == str(out_path)
    return out_path


def test_sealed_document_verifies_with_the_home_trust(home, sealed, licence_seal):
    code, out, err = run_cli(home, "verify", str(sealed), "--json")
    assert code == 0, out + err
    report = json.loads(out)
    assert (report["indication"], report["sub_indication"]) == ("TOTAL_PASSED", None)
    (signature,) = report["signatures"]
    assert signature["seal"]["esid"] == licence_seal and "电子证照专用章" in signature["seal"]["name"]
    assert {c["name"] for c in signature["checks"]} >= SEAL_SIGNATURE_CHECKS
    assert all(c["passed"] for c in signature["checks"])


def test_a_second_seal_keeps_the_first_valid(home, sealed, licence_seal, tmp_path):
    twice = tmp_path / "twice.ofd"
    code, _, err = run_cli(
        home, "sign", str(sealed), "--seal", licence_seal, "-o", str(twice), "--x", "10", "--y", "10"
    )
    assert code == 0, err
    code, out, _ = run_cli(home, "verify", str(twice), "--json")
    assert code == 0 and [s["indication"] for s in json.loads(out)["signatures"]] == ["TOTAL_PASSED"] * 2


def test_without_the_home_trust_it_cannot_tell(home, sealed):
    code, out, _ = run_cli(home, "verify", str(sealed), "--no-home", "--json")
    assert code == 2 and json.loads(out)["sub_indication"] == "NO_CERTIFICATE_CHAIN_FOUND"


def test_tampered_document_fails(home, sealed, tmp_path):
    package = Package.open(sealed.read_bytes())
    entries = {n: package.read(n) for n in package.names}
    entries["Doc_0/Pages/Page_0/Content.xml"] = entries["Doc_0/Pages/Page_0/Content.xml"].replace(
        "你好".encode(), "再见".encode()
    )
    bad = tmp_path / "bad.ofd"
    bad.write_bytes(write_package(entries))
    code, out, _ = run_cli(home, "verify", str(bad), "--json")
    assert code == 1 and json.loads(out)["sub_indication"] == "HASH_FAILURE"
    code, out, _ = run_cli(home, "verify", str(bad))
    assert code == 1 and "HASH_FAILURE" in out and "Content.xml" in out


@pytest.mark.parametrize(
    "content, code", [(None, 3), (b"not a document at all", 4), (b"PK\x03\x04" + bytes(64), 4)]
)
def test_exit_codes_for_unsigned_and_unreadable(home, tmp_path, content, code):
    path = tmp_path / "in.ofd"
    path.write_bytes(UNSIGNED.read_bytes() if content is None else content)
    got, out, err = run_cli(home, "verify", str(path))
    assert got == code, out + err
    if code == 4:
        assert "unreadable" in err


def test_html_report(home, sealed):
    code, out, _ = run_cli(home, "verify", str(sealed), "--html")
    assert code == 0 and out.startswith("<section") and "验证通过" in out


def test_sealing_is_audited(home, sealed, licence_seal):
    code, out, _ = run_cli(home, "audit", "list", "--json")
    assert code == 0
    entries = [e for e in json.loads(out) if e["action"] == "document.seal"]
    assert entries and entries[0]["subject"] == f"seal:{licence_seal}"
    assert run_cli(home, "audit", "verify")[0] == 0


def test_a_suspended_seal_does_not_seal(home, licence_seal, tmp_path):
    assert run_cli(home, "seal", "suspend", licence_seal, "--reason", "test")[0] == 0
    try:
        code, _, err = run_cli(
            home, "sign", str(UNSIGNED), "--seal", licence_seal, "-o", str(tmp_path / "x.ofd")
        )
        assert code == 5 and "suspended" in err
        assert not (tmp_path / "x.ofd").exists()
    finally:
        assert run_cli(home, "seal", "resume", licence_seal)[0] == 0


def test_unknown_seal_and_missing_input(home, tmp_path):
    code, _, err = run_cli(
        home, "sign", str(UNSIGNED), "--seal", "99999999999999", "-o", str(tmp_path / "x.ofd")
    )
    assert code == 4, err
    code, _, _ = run_cli(
        home, "sign", str(tmp_path / "missing.ofd"), "--seal", "1", "-o", str(tmp_path / "y.ofd")
    )
    assert code == 6


def test_a_seal_suspended_after_signing_makes_the_document_undecided(home, licence_seal, sealed):
    assert run_cli(home, "verify", str(sealed))[0] == 0
    assert run_cli(home, "seal", "suspend", licence_seal, "--reason", "lost token")[0] == 0
    try:
        code, out, _ = run_cli(home, "verify", str(sealed), "--json")
        report = json.loads(out)
        assert code == 2 and report["sub_indication"] == "REVOKED_NO_POE", out
        status = next(c for c in report["signatures"][0]["checks"] if c["name"] == "seal-status")
        assert "suspended" in status["detail"]
    finally:
        assert run_cli(home, "seal", "resume", licence_seal)[0] == 0
    assert run_cli(home, "verify", str(sealed))[0] == 0


@pytest.fixture(scope="module")
def notice_pdf(tmp_path_factory) -> Path:
    from pages.model import Document, Page, Text
    from pdf.writer import write_pdf

    path = tmp_path_factory.mktemp("pdf") / "notice.pdf"
    path.write_bytes(
        write_pdf(Document(pages=(Page.a4([Text(20, 40, "关于启用电子证照专用章的通知", 7)]),), title="通知"))
    )
    return path


def test_pdf_sealed_and_verified_on_the_command_line(home, licence_seal, notice_pdf, tmp_path):
    sealed_pdf = tmp_path / "sealed.pdf"
    code, _, err = run_cli(
        home,
        "sign",
        str(notice_pdf),
        "--seal",
        licence_seal,
        "-o",
        str(sealed_pdf),
        "--x",
        "140",
        "--y",
        "100",
    )
    assert code == 0, err
    code, out, err = run_cli(home, "verify", str(sealed_pdf), "--json")
    report = json.loads(out)
    assert code == 0 and report["kind"] == "pdf" and report["indication"] == "TOTAL_PASSED", out + err
    names = {c["name"] for c in report["signatures"][0]["checks"]}
    assert {
        "format",
        "byte-range",
        "data-hash",
        "signature",
        "modifications",
        "certificate-chain",
        "revocation",
    } <= names
    twice = tmp_path / "twice.pdf"
    assert (
        run_cli(home, "sign", str(sealed_pdf), "--seal", licence_seal, "-o", str(twice), "--type", "sign")[0]
        == 0
    )
    code, out, _ = run_cli(home, "verify", str(twice), "--json")
    assert code == 0 and [s["indication"] for s in json.loads(out)["signatures"]] == ["TOTAL_PASSED"] * 2
    tampered = tmp_path / "tampered.pdf"
    data = sealed_pdf.read_bytes()
    tampered.write_bytes(data.replace(b"/Title", b"/Titlf", 1))
    code, out, _ = run_cli(home, "verify", str(tampered), "--json")
    assert code == 1 and json.loads(out)["sub_indication"] == "HASH_FAILURE"


def test_certified_pdf_locks_the_document(home, licence_seal, notice_pdf, tmp_path):
    certified = tmp_path / "certified.pdf"
    code, _, err = run_cli(
        home, "sign", str(notice_pdf), "--seal", licence_seal, "-o", str(certified), "--certify", "1"
    )
    assert code == 0, err
    assert b"/DocMDP" in certified.read_bytes()
    assert run_cli(home, "verify", str(certified))[0] == 0
    code, _, err = run_cli(
        home, "sign", str(certified), "--seal", licence_seal, "-o", str(tmp_path / "x.pdf")
    )
    assert code == 6 and "certif" in err.lower(), err
    code, _, err = run_cli(
        home, "sign", str(UNSIGNED), "--seal", licence_seal, "-o", str(tmp_path / "y.ofd"), "--certify", "2"
    )
    assert code == 6 and "PDF" in err


@pytest.mark.parametrize("option", ["--trust-anchor", "--cert", "--seal-maker", "--crl"])
def test_an_unreadable_trust_option_is_bad_input_not_a_verdict(home, sealed, tmp_path, option):
    # Exit 2 is INDETERMINATE: a script must not take a typo in a trust file for a verdict.
    missing = tmp_path / "missing.pem"
    code, out, err = run_cli(home, "verify", str(sealed), option, str(missing), "--json")
    assert code == 6 and not out and "cannot read" in err and "Traceback" not in err
    garbage = tmp_path / "garbage.pem"
    garbage.write_bytes(b"not a certificate or CRL")
    code, out, err = run_cli(home, "verify", str(sealed), option, str(garbage), "--json")
    assert code == 6 and not out and "Traceback" not in err, err
