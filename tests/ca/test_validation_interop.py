"""Path validation of certificates this project did not issue (../shared/interop, see SOURCES.md).

* ofdrw's test hierarchy: USER, SealBuilder and sign certificates under a self-signed ROOT
  whose keyUsage (digitalSignature, nonRepudiation) lacks keyCertSign. Their signatures verify
  with the ROOT key, yet OpenSSL rejects the chain with error 32, and so must we (KEY_USAGE
  on the ROOT), at any time.
* Tax-bureau seal signers, read from real e-invoices' SignedValue.dat (SES_Signature v4): we
  hold no anchor for 税务电子证书管理中心(SM2) / 税务测试CA2(SM2), so no chain can be found.
"""

from __future__ import annotations

import shutil
import subprocess
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from asn1crypto import parser, x509

from ca.signatures import certificate_public_key
from ca.validation import ANY, SEAL_MAKING, SEAL_SIGNING, load_certificates, name_text, validate_path
from hsm.errors import UnsupportedAlgorithm

pytestmark = pytest.mark.interop

# tests/conftest.py's INTEROP (the repository root's sibling shared/interop), computed here because
# tests/ca/conftest.py shadows the name ``conftest``; the interop_dir fixture skips when it is absent.
INTEROP = Path(__file__).resolve().parents[2].parent / "shared" / "interop"
CERTS = INTEROP / "certs"
SIGNED_OFD = INTEROP / "signed-ofd"
ROOT_SUBJECT = "CN=OFD Reader and WriterROOT Certificate,L=Hangzhou,ST=Zhejiang,O=OFD R&W,C=CN"

# certificate file -> a time inside its validity
OFDRW_LEAVES = {
    "ofdrw_USER_cert.pem": datetime(2021, 6, 1, tzinfo=UTC),
    "ofdrw_SealBuilder_cert.pem": datetime(2021, 6, 1, tzinfo=UTC),
    "ofdrw_sign_cert.pem": datetime(2022, 6, 1, tzinfo=UTC),
}
TAX_OFDS = (
    "ofdrw_1_zhejiang_vat_einvoice_2020_sesv4.ofd",
    "easyofd_guizhou_vat_special_einvoice_2022_sesv4.ofd",
    "ofdrw_v4signed_chongqing_test_einvoice_sesv4.ofd",
)


@pytest.fixture(scope="module")
def ofdrw_root(interop_dir) -> x509.Certificate:
    return load_certificates((CERTS / "ofdrw_ROOT_cert.pem").read_bytes())[0]


def _cert(name: str) -> x509.Certificate:
    return load_certificates((CERTS / name).read_bytes())[0]


def _sm2_certificates(der: bytes, depth: int = 0) -> list[tuple[int, x509.Certificate]]:
    """(depth, certificate) for every OCTET STRING in ``der`` holding an SM2 certificate.

    A generic walk of the TLV tree, so it needs no SES_Signature schema: the signer's
    certificate is the one directly inside the outer SEQUENCE (depth 1).
    """
    found: list[tuple[int, x509.Certificate]] = []
    rest = der
    while rest and depth < 16:
        try:
            cls, constructed, tag, header, content, trailer = parser.parse(rest)
        except ValueError:
            break
        rest = rest[len(header) + len(content) + len(trailer):]
        if constructed:
            found += _sm2_certificates(content, depth + 1)
        elif cls == 0 and tag == 4:  # universal OCTET STRING
            try:
                cert = x509.Certificate.load(content, strict=True)
                certificate_public_key(cert)
            except (ValueError, TypeError, UnsupportedAlgorithm):
                continue
            found.append((depth, cert))
    return found


def _tax_signer(ofd_name: str) -> x509.Certificate:
    with zipfile.ZipFile(SIGNED_OFD / ofd_name) as ofd:
        signed_value = ofd.read("Doc_0/Signs/Sign_0/SignedValue.dat")
    signers = [cert for depth, cert in _sm2_certificates(signed_value) if depth == 1]
    assert len(signers) == 1, ofd_name
    return signers[0]


# ---- ofdrw ------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(OFDRW_LEAVES))
def test_ofdrw_signatures_verify_but_root_cannot_sign_certificates(ofdrw_root, name):
    result = validate_path(_cert(name), trust_anchors=[ofdrw_root], at=OFDRW_LEAVES[name],
                           purpose=SEAL_SIGNING)
    assert not result.ok and result.code == "KEY_USAGE"
    assert result.failed.name == "key_usage" and result.failed.subject == ROOT_SUBJECT
    assert "keyCertSign" in result.failed.detail
    signatures = [c for c in result.checks if c.name == "signature"]
    assert len(signatures) == 1 and signatures[0].ok
    assert all(c.ok for c in result.checks if c.name == "validity")
    assert [name_text(c.subject) for c in result.path][-1] == ROOT_SUBJECT


@pytest.mark.parametrize("name", sorted(OFDRW_LEAVES))
def test_ofdrw_validity_follows_the_time(ofdrw_root, name):
    leaf = _cert(name)
    tbs = leaf["tbs_certificate"]["validity"]
    cases = {
        OFDRW_LEAVES[name]: None,
        tbs["not_before"].native - timedelta(days=1): "NOT_YET_VALID",
        tbs["not_after"].native + timedelta(days=1): "EXPIRED",
    }
    for at, expected in cases.items():
        result = validate_path(leaf, trust_anchors=[ofdrw_root], at=at)
        [leaf_validity] = [c for c in result.checks
                           if c.name == "validity" and c.subject == name_text(leaf.subject)]
        assert leaf_validity.ok is (expected is None)
        if expected:
            assert leaf_validity.code == expected
        assert result.code == "KEY_USAGE"  # the CA constraint is reported first, at any time


def test_ofdrw_root_as_its_own_anchor_is_valid_in_its_period(ofdrw_root):
    assert validate_path(ofdrw_root, trust_anchors=[ofdrw_root], at=datetime(2025, 1, 1, tzinfo=UTC),
                         purpose=SEAL_MAKING).ok
    late = validate_path(ofdrw_root, trust_anchors=[ofdrw_root], at=datetime(2030, 5, 1, tzinfo=UTC))
    assert late.code == "EXPIRED"


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl command line not found")
def test_openssl_agrees_error_32(interop_dir):
    done = subprocess.run(
        ["openssl", "verify", "-attime", str(int(OFDRW_LEAVES["ofdrw_USER_cert.pem"].timestamp())),
         "-CAfile", str(CERTS / "ofdrw_ROOT_cert.pem"), str(CERTS / "ofdrw_USER_cert.pem")],
        capture_output=True, text=True, check=False)
    assert done.returncode != 0
    assert "error 32" in done.stdout + done.stderr


# ---- tax bureau ---------------------------------------------------------------------------------
@pytest.mark.parametrize("ofd_name", TAX_OFDS)
def test_tax_signer_without_anchor_finds_no_chain(interop_dir, ofdrw_root, ofd_name):
    signer = _tax_signer(ofd_name)
    at = signer["tbs_certificate"]["validity"]["not_before"].native + timedelta(days=30)
    for anchors in ([], [ofdrw_root]):
        result = validate_path(signer, trust_anchors=anchors, at=at, purpose=SEAL_SIGNING,
                               revocation="require")
        assert result.code == "NO_CERTIFICATE_CHAIN_FOUND" and not result.ok
        assert "税务" in result.failed.detail  # names the missing issuer, CJK intact


@pytest.mark.parametrize("ofd_name", TAX_OFDS)
def test_tax_signer_as_its_own_anchor_reflects_its_dates(interop_dir, ofd_name):
    signer = _tax_signer(ofd_name)
    validity = signer["tbs_certificate"]["validity"]
    start, end = validity["not_before"].native, validity["not_after"].native
    inside = validate_path(signer, trust_anchors=[signer], at=start + (end - start) / 2, purpose=SEAL_SIGNING)
    assert inside.ok, inside.failed
    assert [c.ok for c in inside.checks if c.name == "validity"] == [True]
    before = validate_path(signer, trust_anchors=[signer], at=start - timedelta(seconds=1), purpose=ANY)
    after = validate_path(signer, trust_anchors=[signer], at=end + timedelta(seconds=1), purpose=ANY)
    assert (before.code, after.code) == ("NOT_YET_VALID", "EXPIRED")
