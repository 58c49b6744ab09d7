"""An OFD we seal, checked by others: OpenSSL's CLI and BouncyCastle verify the seal signature and
the maker's signature over the bytes GB/T 38540 names, and easyofd opens the package and reads
its text. The document is one of the unsigned samples, sealed on the command line with the
licence seal `zhengyin init` made; our verifier judges it with the CA material `ca export` wrote."""

from __future__ import annotations

import json
import subprocess

import pytest
from asn1crypto import x509

from hsm.sm3 import sm3
from ofd.package import Package
from ofd.reader import read_ofd
from seals.seal_signature import read_seal_signature
from support.cli import run_cli
from support.paths import INTEROP

pytestmark = pytest.mark.interop


@pytest.fixture(scope="module")
def sealed(tmp_path_factory):
    """doc1File sealed by `zhengyin sign` with the licence seal `zhengyin init` made."""
    source = INTEROP / "unsigned-ofd" / "ofdrw_doc1File.ofd"
    if not source.exists():
        pytest.skip("interop samples not present")
    home = tmp_path_factory.mktemp("home")
    assert run_cli(home, "init")[0] == 0
    code, out, err = run_cli(home, "seal", "list", "--json")
    assert code == 0, err
    es_id = next(s["esid"] for s in json.loads(out) if s["kind"] == "licence" and s["status"] == "active")
    target = home / "sealed.ofd"
    code, _, err = run_cli(
        home, "sign", str(source), "--seal", es_id, "-o", str(target), "--x", "120", "--y", "200"
    )
    assert code == 0, err
    data = target.read_bytes()
    package = Package.open(data)
    folder = next(n for n in package.names if n.endswith("/Signs/Sign_0/SignedValue.dat")).rsplit("/", 1)[0]
    value = read_seal_signature(package.read(f"{folder}/SignedValue.dat"))
    return {
        "home": home,
        "target": target,
        "data": data,
        "package": package,
        "value": value,
        "source": source.read_bytes(),
        "folder": folder,
    }


def test_our_verifier_passes_it_with_our_anchor(sealed, tmp_path):
    assert run_cli(sealed["home"], "ca", "export", "--out", str(tmp_path))[0] == 0
    code, out, _ = run_cli(
        sealed["home"],
        "verify",
        str(sealed["target"]),
        "--no-home",
        "--trust-anchor",
        str(tmp_path / "root.pem"),
        "--cert",
        str(tmp_path / "issuing.pem"),
        "--crl",
        str(tmp_path / "crl.pem"),
        "--crl",
        str(tmp_path / "root-crl.pem"),
        "--seal-maker",
        str(tmp_path / "seal-makers.pem"),
        "--json",
    )
    report = json.loads(out)
    assert code == 0 and report["indication"] == "TOTAL_PASSED", out
    assert "电子证照专用章" in report["signatures"][0]["seal"]["name"]
    # Without the seal maker the verifier cannot tell whether the seal is genuine.
    code, out, _ = run_cli(sealed["home"], "verify", str(sealed["target"]), "--no-home", "--trust-anchor",
                           str(tmp_path / "root.pem"), "--cert", str(tmp_path / "issuing.pem"), "--crl",
                           str(tmp_path / "crl.pem"), "--crl", str(tmp_path / "root-crl.pem"), "--json")
    assert code == 2 and json.loads(out)["sub_indication"] == "CHAIN_CONSTRAINTS_FAILURE"


def _pubkey(tmp_path, cert: bytes):
    (tmp_path / "c.der").write_bytes(cert)
    subprocess.run(
        [
            "openssl",
            "x509",
            "-inform",
            "DER",
            "-in",
            str(tmp_path / "c.der"),
            "-pubkey",
            "-noout",
            "-out",
            str(tmp_path / "p.pem"),
        ],
        check=True,
        capture_output=True,
        timeout=30,
    )
    return tmp_path / "p.pem"


def _openssl_verify(tmp_path, cert: bytes, data: bytes, signature: bytes) -> subprocess.CompletedProcess:
    key = _pubkey(tmp_path, cert)
    (tmp_path / "m").write_bytes(data)
    (tmp_path / "s").write_bytes(signature)
    return subprocess.run(
        [
            "openssl",
            "pkeyutl",
            "-verify",
            "-pubin",
            "-inkey",
            str(key),
            "-rawin",
            "-in",
            str(tmp_path / "m"),
            "-sigfile",
            str(tmp_path / "s"),
            "-digest",
            "sm3",
            "-pkeyopt",
            "distid:1234567812345678",
        ],
        capture_output=True,
        timeout=30,
    )


def test_openssl_verifies_the_seal_signature_and_the_maker(sealed, tmp_path):
    value = sealed["value"]
    signature_xml = sealed["package"].read(f"{sealed['folder']}/Signature.xml")
    assert value.data_hash.payload == sm3(signature_xml)
    tbs = _openssl_verify(tmp_path, value.signer_certificate, value.signed_bytes, value.signature.payload)
    assert tbs.returncode == 0 and b"Verified Successfully" in tbs.stdout, tbs.stderr
    seal = value.seal
    maker = _openssl_verify(
        tmp_path, seal.maker_certificate, seal.maker_signed_bytes, seal.maker_signature.payload
    )
    assert maker.returncode == 0 and b"Verified Successfully" in maker.stdout, maker.stderr
    # OpenSSL also says no to a changed TBS: the check above can fail.
    bad = _openssl_verify(
        tmp_path, value.signer_certificate, value.signed_bytes[:-1] + b"\x00", value.signature.payload
    )
    assert bad.returncode != 0


def test_bouncycastle_verifies_the_seal_signature_and_the_maker(sealed, bc, tmp_path):
    value = sealed["value"]
    seal = value.seal

    def spki(cert: bytes) -> str:
        return x509.Certificate.load(cert)["tbs_certificate"]["subject_public_key_info"].dump().hex()

    def job(cert: bytes, data: bytes, signature: bytes) -> str:
        return f"verify {spki(cert)} {data.hex()} {signature.hex()} -"

    jobs = [
        job(value.signer_certificate, value.signed_bytes, value.signature.payload),
        job(seal.maker_certificate, seal.maker_signed_bytes, seal.maker_signature.payload),
        job(value.signer_certificate, value.signed_bytes + b"x", value.signature.payload),
    ]
    assert bc.batch(jobs, tmp_path) == ["ok", "ok", "bad"]


def test_easyofd_opens_it_and_reads_the_text(sealed, tmp_path, monkeypatch):
    easyofd = pytest.importorskip("easyofd")
    from loguru import logger

    logger.disable("easyofd")
    monkeypatch.chdir(tmp_path)  # easyofd writes the embedded fonts to the working directory
    reader = easyofd.OFD()
    reader.read(sealed["data"], fmt="binary")
    ours = read_ofd(sealed["source"]).text()
    theirs = [" ".join(t["text"] for t in page["text_list"]) for page in reader.data[0]["page_info"].values()]
    assert len(theirs) == len(ours) >= 2
    for page, text in zip(theirs, ours, strict=True):  # the same characters, spacing aside
        assert "".join(page.split()) == "".join(text.split()) != ""
