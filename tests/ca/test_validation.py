"""Path building and validation on SM2 chains made by the OpenSSL 3 command line.

The certificates and CRLs come from ``openssl ca`` rather than from our own builder, so these
tests also check that we validate what an independent implementation writes. Dates are fixed
(2030-2040) so the verdicts do not depend on when the tests run.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from asn1crypto import crl as asn1_crl
from asn1crypto import pem, x509

from ca.validation import (
    ANY,
    OCSP_SIGNING,
    SEAL_SIGNING,
    TIME_STAMPING,
    PathResult,
    load_certificates,
    validate_path,
)
from hsm.hazmat import SM2PrivateKey

DISTID = "distid:1234567812345678"
AT = datetime(2031, 6, 1, tzinfo=UTC)

CA_EXT = "basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n"
IDS = "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n"
NO_IDS = "subjectKeyIdentifier=none\nauthorityKeyIdentifier=none\n"
LEAF_EXT = "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,nonRepudiation\n"

CA_CONFIG = """[ca]
default_ca = d
[d]
database = index.txt
new_certs_dir = .
serial = serial
crlnumber = crlnumber
default_md = sm3
policy = any
unique_subject = no
copy_extensions = none
[any]
commonName = supplied
organizationName = optional
[crl_ids]
authorityKeyIdentifier = keyid
"""


def _openssl(*args: str | Path, cwd: Path) -> None:
    done = subprocess.run(["openssl", *map(str, args)], cwd=cwd, capture_output=True, text=True, check=False)
    if done.returncode:
        raise RuntimeError(f"openssl {' '.join(map(str, args))} failed:\n{done.stderr}")


@dataclass
class Issued:
    cert: x509.Certificate
    path: Path
    key: Path
    serial: int


class OpenSslPki:
    """Keys, certificates and CRLs made with ``openssl ca``, one CA database per issuer."""

    def __init__(self, root: Path):
        self.dir = root
        self.issued: dict[str, Issued] = {}

    def key(self, name: str) -> Path:
        path = self.dir / f"{name}.key"
        if not path.exists():
            _openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:SM2", "-out", path,
                     cwd=self.dir)
        return path

    def _ca_dir(self, issuer: str) -> Path:
        d = self.dir / f"ca_{issuer}"
        if not d.exists():
            d.mkdir()
            (d / "ca.cnf").write_text(CA_CONFIG)
            (d / "index.txt").write_text("")
            (d / "serial").write_text("1000\n")
            (d / "crlnumber").write_text("01\n")
        return d

    def cert(self, name: str, subject: str, *, issuer: str | None, ext: str,
             start: str = "20300101000000Z", end: str = "20400101000000Z", key: str | None = None) -> Issued:
        """``issuer`` None means self-signed; ``key`` names the subject key (default ``name``)."""
        key_path = self.key(key or name)
        csr = self.dir / f"{name}.csr"
        _openssl("req", "-new", "-key", key_path, "-sm3", "-sigopt", DISTID, "-utf8", "-subj", subject,
                 "-out", csr, cwd=self.dir)
        ext_file = self.dir / f"{name}.ext"
        ext_file.write_text(ext)
        out = self.dir / f"{name}.pem"
        ca = self._ca_dir(issuer or name)
        signing = (["-selfsign", "-keyfile", key_path] if issuer is None else
                   ["-cert", self.issued[issuer].path, "-keyfile", self.issued[issuer].key])
        _openssl("ca", "-config", "ca.cnf", "-batch", "-notext", "-utf8", *signing, "-in", csr,
                 "-startdate", start, "-enddate", end, "-sigopt", DISTID, "-vfyopt", DISTID,
                 "-extfile", ext_file, "-out", out, cwd=ca)
        cert = load_certificates(out.read_bytes())[0]
        self.issued[name] = Issued(cert, out, key_path, cert.serial_number)
        return self.issued[name]

    def crl(self, name: str, issuer: str, *, revoked: tuple[tuple[str, str, str], ...] = (),
            last: str = "20310501000000Z", next_: str = "20310701000000Z", signer_key: str | None = None,
            ids: bool = True) -> asn1_crl.CertificateList:
        """A CRL by ``issuer`` listing (certificate name, UTCTime revocation date, reason) entries.

        The CA database is written by hand so revocation dates can be chosen.
        """
        ca = self._ca_dir(issuer)
        lines = [f"R\t400101000000Z\t{date},{reason}\t{self.issued[cert].serial:X}\tunknown\t/CN=x\n"
                 for cert, date, reason in revoked]
        (ca / "index.txt").write_text("".join(lines))
        out = self.dir / f"{name}.crl"
        key = self.key(signer_key) if signer_key else self.issued[issuer].key
        _openssl("ca", "-config", "ca.cnf", "-batch", "-gencrl", "-cert", self.issued[issuer].path,
                 "-keyfile", key, "-sigopt", DISTID, "-crl_lastupdate", last, "-crl_nextupdate", next_,
                 *(["-crlexts", "crl_ids"] if ids else []), "-out", out, cwd=ca)
        return asn1_crl.CertificateList.load(pem.unarmor(out.read_bytes())[2])


@dataclass
class Chains:
    pki: OpenSslPki
    certs: dict[str, x509.Certificate]
    crls: dict[str, asn1_crl.CertificateList]

    def __getitem__(self, name: str) -> x509.Certificate:
        return self.certs[name]


@pytest.fixture(scope="session")
def chains(tmp_path_factory) -> Chains:
    if shutil.which("openssl") is None:
        pytest.skip("openssl command line not found")
    pki = OpenSslPki(tmp_path_factory.mktemp("openssl-pki"))
    try:
        pki.key("probe")
    except RuntimeError as exc:
        pytest.skip(f"openssl cannot make SM2 keys: {exc}")
    pki.cert("root", "/CN=Root", issuer=None, ext=CA_EXT + "subjectKeyIdentifier=hash\n")
    pki.cert("inter", "/CN=Inter/O=证印", issuer="root", start="20300601000000Z", end="20380101000000Z",
             ext="basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\n" + IDS)
    leaf_dates = {"start": "20310101000000Z", "end": "20320101000000Z"}
    for name in ("leaf", "leaf_revoked", "leaf_compromised", "leaf_revoked_later"):
        pki.cert(name, f"/CN={name}/O=证印", issuer="inter", ext=LEAF_EXT + IDS, **leaf_dates)
    pki.cert("leaf_enc", "/CN=Encryption", issuer="inter", **leaf_dates,
             ext="basicConstraints=critical,CA:FALSE\nkeyUsage=critical,keyEncipherment\n" + IDS)
    pki.cert("leaf_tsa", "/CN=TSA", issuer="inter", **leaf_dates,
             ext=LEAF_EXT + "extendedKeyUsage=critical,timeStamping\n" + IDS)
    pki.cert("leaf_critical", "/CN=Odd", issuer="inter", **leaf_dates,
             ext=LEAF_EXT + "1.2.3.4=critical,ASN1:NULL\n" + IDS)
    # a "CA" without cA=TRUE, and a leaf under it
    pki.cert("not_ca", "/CN=Not a CA", issuer="root",
             ext="basicConstraints=critical,CA:FALSE\nkeyUsage=critical,keyCertSign\n" + IDS)
    pki.cert("leaf_under_not_ca", "/CN=Orphan", issuer="not_ca", ext=LEAF_EXT + IDS, **leaf_dates)
    # a CA below inter (pathlen:0) and a leaf below it
    pki.cert("sub", "/CN=Sub CA", issuer="inter", ext=CA_EXT + IDS)
    pki.cert("leaf_deep", "/CN=Deep", issuer="sub", ext=LEAF_EXT + IDS, **leaf_dates)
    # two CAs with one name and different keys, no key identifiers: only the signature tells
    pki.cert("twin_a", "/CN=Twin/O=证印", issuer="root", ext=CA_EXT + NO_IDS)
    pki.cert("twin_b", "/CN=Twin/O=证印", issuer="root", ext=CA_EXT + NO_IDS)
    pki.cert("leaf_twin", "/CN=Twin child", issuer="twin_b", ext=LEAF_EXT + NO_IDS, **leaf_dates)
    # X and Y cross-certify each other; Y also has a self-signed root
    pki.cert("y_root", "/CN=Y", issuer=None, ext=CA_EXT + "subjectKeyIdentifier=hash\n", key="yk")
    pki.cert("x_by_y", "/CN=X", issuer="y_root", ext=CA_EXT + IDS, key="xk")
    pki.cert("y_by_x", "/CN=Y", issuer="x_by_y", ext=CA_EXT + IDS, key="yk")
    pki.cert("leaf_x", "/CN=X child", issuer="x_by_y", ext=LEAF_EXT + IDS, **leaf_dates)
    # impostors: same names as root and inter, other keys
    pki.cert("fake_root", "/CN=Root", issuer=None, ext=CA_EXT + "subjectKeyIdentifier=hash\n")
    pki.cert("fake_inter", "/CN=Inter/O=证印", issuer=None, ext=CA_EXT + NO_IDS)

    crls = {
        "root": pki.crl("root", "root"),
        "inter": pki.crl("inter", "inter", revoked=(
            ("leaf_revoked", "310301000000Z", "superseded"),
            ("leaf_compromised", "310901000000Z", "keyCompromise"),
            ("leaf_revoked_later", "310901000000Z", "superseded"),
        )),
        "inter_stale": pki.crl("inter_stale", "inter", last="20310101000000Z", next_="20310201000000Z"),
        # signed with the impostor's key, no AKI: the name matches, the signature must not
        "forged": pki.crl("forged", "fake_inter", revoked=(("leaf", "310301000000Z", "keyCompromise"),),
                          ids=False),
    }
    return Chains(pki, {name: issued.cert for name, issued in pki.issued.items()}, crls)


def _validate(chains: Chains, leaf: str, *, anchors=("root",), intermediates=("inter",), **kw) -> PathResult:
    kw.setdefault("at", AT)
    result = validate_path(chains[leaf], trust_anchors=[chains[a] for a in anchors],
                           intermediates=[chains[i] for i in intermediates], **kw)
    _assert_consistent(result)
    return result


def _assert_consistent(result: PathResult) -> None:
    """The invariants every result keeps, whatever the verdict."""
    if result.ok:
        assert result.code == "VALID" and result.failed is None
        assert result.checks and all(c.ok for c in result.checks)
    else:
        assert result.code != "VALID" and result.failed is not None and not result.failed.ok
        assert result.failed is next(c for c in result.checks if not c.ok)
        assert result.failed.code == result.code
    json.dumps(result.as_dict(), ensure_ascii=False)


def _names(result: PathResult) -> list[str]:
    return [c["tbs_certificate"]["subject"].native["common_name"] for c in result.path]


# ---- the good path ----------------------------------------------------------------------------
def test_valid_three_level_chain(chains):
    both = [chains.crls["root"], chains.crls["inter"]]
    result = _validate(chains, "leaf", crls=both, purpose=SEAL_SIGNING, revocation="require")
    assert result.ok and result.code == "VALID"
    assert _names(result) == ["leaf", "Inter", "Root"]
    names = {c.name for c in result.checks}
    assert {"chain", "algorithm", "signature", "trust_anchor", "basic_constraints", "key_usage",
            "path_length", "critical_extensions", "validity", "revocation"} <= names
    assert sum(c.name == "signature" for c in result.checks) == 2
    assert sum(c.name == "validity" for c in result.checks) == 3
    assert sum(c.name == "revocation" for c in result.checks) == 2


def test_as_dict_is_readable_json_with_cjk(chains):
    result = _validate(chains, "leaf", purpose=SEAL_SIGNING)
    text = json.dumps(result.as_dict(), ensure_ascii=False)
    assert "证印" in text and "\\u" not in text
    data = result.as_dict()
    assert data["ok"] is True and data["code"] == "VALID" and data["failed"] is None
    assert data["path"][0]["subject"] == "O=证印,CN=leaf"
    assert [c["subject"] for c in data["checks"] if c["name"] == "trust_anchor"] == ["CN=Root"]


def test_intermediates_order_and_extras_do_not_matter(chains):
    result = _validate(chains, "leaf", intermediates=("twin_a", "sub", "not_ca", "inter", "root"))
    assert result.ok and _names(result) == ["leaf", "Inter", "Root"]


def test_leaf_given_as_its_own_anchor(chains):
    result = _validate(chains, "leaf", anchors=("leaf",), intermediates=())
    assert result.ok and _names(result) == ["leaf"]


# ---- no path ------------------------------------------------------------------------------------
def test_wrong_anchor_finds_no_chain(chains):
    result = _validate(chains, "leaf", anchors=("y_root",))
    assert result.code == "NO_CERTIFICATE_CHAIN_FOUND" and result.failed.name == "chain"


def test_impostor_anchor_with_the_root_name_is_not_a_chain(chains):
    result = _validate(chains, "leaf", anchors=("fake_root",))
    assert not result.ok and result.code in ("NO_CERTIFICATE_CHAIN_FOUND", "SIGNATURE_INVALID")


def test_missing_intermediate(chains):
    result = _validate(chains, "leaf", intermediates=())
    assert result.code == "NO_CERTIFICATE_CHAIN_FOUND"
    assert "CN=Inter" in result.failed.detail


# ---- tampering ----------------------------------------------------------------------------------
def _flip(cert: x509.Certificate, offset: int) -> bytes:
    der = bytearray(cert.dump())
    der[offset] ^= 0x01
    return bytes(der)


def test_flipped_byte_in_signature_is_not_valid(chains):
    der = chains["leaf"].dump()
    result = validate_path(_flip(chains["leaf"], len(der) - 3), trust_anchors=[chains["root"]],
                           intermediates=[chains["inter"]], at=AT)
    _assert_consistent(result)
    assert result.code in ("SIGNATURE_INVALID", "MALFORMED")


def test_flipped_byte_in_tbs_subject_is_signature_invalid(chains):
    der = chains["leaf"].dump()
    at = der.index(b"leaf") + 1  # a character of the subject's common name
    result = validate_path(_flip(chains["leaf"], at), trust_anchors=[chains["root"]],
                           intermediates=[chains["inter"]], at=AT)
    _assert_consistent(result)
    assert result.code == "SIGNATURE_INVALID"
    assert result.failed.name == "signature"


def test_no_single_bit_flip_is_ever_valid(chains):
    """Every 5th byte of the leaf, and of the intermediate, flipped: never VALID, never raises."""
    for victim in ("leaf", "inter"):
        cert = chains[victim]
        for offset in range(0, len(cert.dump()), 5):
            tampered = _flip(cert, offset)
            leaf = tampered if victim == "leaf" else chains["leaf"]
            inters = [chains["inter"]] if victim == "leaf" else [tampered]
            result = validate_path(leaf, trust_anchors=[chains["root"]], intermediates=inters, at=AT)
            _assert_consistent(result)
            assert not result.ok, (victim, offset)


def test_garbage_is_malformed_not_an_exception(chains):
    for junk in (b"", b"\x30\x03\x02\x01\x01", chains["leaf"].dump()[:200], b"-----BEGIN CERTIFICATE-----\n"):
        result = validate_path(junk, trust_anchors=[chains["root"]], at=AT)
        _assert_consistent(result)
        assert result.code == "MALFORMED"
    der = chains["leaf"].dump()
    bad_version = der.replace(b"\xa0\x03\x02\x01\x02", b"\xa0\x03\x04\x01\x02", 1)  # OCTET STRING
    lazy = x509.Certificate.load(bad_version)  # asn1crypto parses lazily: this load succeeds
    assert validate_path(lazy, trust_anchors=[chains["root"]], at=AT).code == "MALFORMED"


def test_unreadable_intermediates_are_skipped(chains):
    result = validate_path(chains["leaf"], trust_anchors=[chains["root"]],
                           intermediates=[b"junk", chains["inter"]], at=AT)
    assert result.ok


def test_trailing_data_is_refused_by_the_loader(chains):
    from ca.validation import CertificateLoadError

    with pytest.raises(CertificateLoadError):
        load_certificates(chains["leaf"].dump() + b"\x00")
    names = ("leaf", "inter", "root")
    bundle = b"".join(pem.armor("CERTIFICATE", chains[n].dump()) for n in names)
    assert [c.dump() for c in load_certificates(bundle)] == [chains[n].dump() for n in names]


# ---- time ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(("at", "code", "who"), [
    (datetime(2030, 12, 31, tzinfo=UTC), "NOT_YET_VALID", "O=证印,CN=leaf"),
    (datetime(2032, 1, 1, 0, 0, 1, tzinfo=UTC), "EXPIRED", "O=证印,CN=leaf"),
    (datetime(2030, 3, 1, tzinfo=UTC), "NOT_YET_VALID", "O=证印,CN=Inter"),
    (datetime(2041, 1, 1, tzinfo=UTC), "EXPIRED", "CN=Root"),
])
def test_validity_at_a_time(chains, at, code, who):
    result = _validate(chains, "leaf", at=at)
    assert result.code == code
    assert who in {c.subject for c in result.checks if c.name == "validity" and not c.ok}


def test_validity_bounds_are_inclusive(chains):
    assert _validate(chains, "leaf", at=datetime(2031, 1, 1, tzinfo=UTC)).ok
    assert _validate(chains, "leaf", at=datetime(2032, 1, 1, tzinfo=UTC)).ok


def test_naive_time_is_a_caller_error(chains):
    with pytest.raises(ValueError, match="timezone"):
        validate_path(chains["leaf"], trust_anchors=[chains["root"]], at=datetime(2031, 6, 1))


# ---- CA constraints and purpose -----------------------------------------------------------------
def test_intermediate_without_ca_true_is_not_a_ca(chains):
    result = _validate(chains, "leaf_under_not_ca", intermediates=("not_ca",))
    assert result.code == "NOT_A_CA" and result.failed.subject == "CN=Not a CA"
    assert all(c.ok for c in result.checks if c.name == "signature")


def test_path_length_exceeded(chains):
    result = _validate(chains, "leaf_deep", intermediates=("inter", "sub"))
    assert result.code == "PATH_LENGTH_EXCEEDED"
    assert result.failed.subject == "O=证印,CN=Inter"
    assert _names(result) == ["Deep", "Sub CA", "Inter", "Root"]


def test_leaf_without_the_purposes_key_usage(chains):
    result = _validate(chains, "leaf_enc", purpose=SEAL_SIGNING)
    assert result.code == "KEY_USAGE" and result.failed.subject == "CN=Encryption"
    assert _validate(chains, "leaf_enc", purpose=ANY).ok


def test_extended_key_usage_purposes(chains):
    assert _validate(chains, "leaf_tsa", purpose=TIME_STAMPING).ok
    # A time-stamping key signs time-stamps only: no documents, no seals (review finding).
    result = _validate(chains, "leaf_tsa", purpose=SEAL_SIGNING)
    assert result.code == "EXTENDED_KEY_USAGE" and "another service" in result.failed.detail
    assert _validate(chains, "leaf", purpose=TIME_STAMPING).code == "EXTENDED_KEY_USAGE"
    assert _validate(chains, "leaf_tsa", purpose=OCSP_SIGNING).code == "EXTENDED_KEY_USAGE"


def test_unknown_critical_extension_fails(chains):
    result = _validate(chains, "leaf_critical")
    assert not result.ok and result.failed.name == "critical_extensions"
    assert "1.2.3.4" in result.failed.detail


# ---- path building ------------------------------------------------------------------------------
@pytest.mark.parametrize("order", [("twin_a", "twin_b"), ("twin_b", "twin_a")])
def test_same_name_intermediates_the_right_key_is_chosen(chains, order):
    result = _validate(chains, "leaf_twin", intermediates=order)
    assert result.ok
    assert result.path[1].dump() == chains["twin_b"].dump()


def test_same_name_intermediate_with_the_wrong_key_only(chains):
    result = _validate(chains, "leaf_twin", intermediates=("twin_a",))
    assert result.code == "SIGNATURE_INVALID"


def test_cross_certificate_loop_terminates(chains):
    result = _validate(chains, "leaf_x", intermediates=("x_by_y", "y_by_x"))
    assert result.code == "NO_CERTIFICATE_CHAIN_FOUND"


def test_cross_certificate_path_to_the_other_root(chains):
    result = _validate(chains, "leaf_x", anchors=("y_root",), intermediates=("y_by_x", "x_by_y"))
    assert result.ok and _names(result) == ["X child", "X", "Y"]
    assert result.path[-1].dump() == chains["y_root"].dump()


def test_x_as_anchor_ends_the_path_early(chains):
    result = _validate(chains, "leaf_x", anchors=("x_by_y",), intermediates=("y_by_x",))
    assert result.ok and _names(result) == ["X child", "X"]


# ---- revocation ---------------------------------------------------------------------------------
def test_revoked_in_crl_with_reason_and_date(chains):
    result = _validate(chains, "leaf_revoked", crls=[chains.crls["inter"]])
    assert result.code == "REVOKED" and result.failed.name == "revocation"
    assert "superseded" in result.failed.detail and "2031-03-01" in result.failed.detail


def test_revoked_after_the_validation_time_was_still_good_then(chains):
    result = _validate(chains, "leaf_revoked_later", crls=[chains.crls["inter"], chains.crls["root"]],
                       revocation="require")
    assert result.ok
    assert any("still valid then" in c.detail for c in result.checks if c.name == "revocation")
    later = datetime(2031, 9, 2, tzinfo=UTC)  # the CRL is stale then, but the revocation is signed
    assert _validate(chains, "leaf_revoked_later", crls=[chains.crls["inter"]], at=later).code == "REVOKED"


def test_status_at_a_past_signing_time_from_the_crls_current_now(chains):
    crls = [chains.crls["inter"], chains.crls["root"]]
    before = datetime(2031, 2, 1, tzinfo=UTC)  # leaf_revoked: superseded on 2031-03-01
    result = _validate(chains, "leaf_revoked", crls=crls, revocation="require", at=before, crl_time=AT)
    assert result.ok
    after = datetime(2031, 4, 1, tzinfo=UTC)
    assert _validate(chains, "leaf_revoked", crls=crls, revocation="require", at=after,
                     crl_time=AT).code == "REVOKED"
    # Without crl_time the CRLs must be current at the signing time, which they are not.
    assert _validate(chains, "leaf_revoked", crls=crls, revocation="require",
                     at=before).code == "REVOCATION_UNKNOWN"
    stale = [chains.crls["inter_stale"], chains.crls["root"]]
    result = _validate(chains, "leaf", crls=stale, revocation="require", at=datetime(2031, 1, 15, tzinfo=UTC),
                       crl_time=AT)
    assert result.code == "REVOCATION_UNKNOWN" and AT.isoformat() in result.failed.detail


def test_key_compromise_counts_whatever_the_time(chains):
    result = _validate(chains, "leaf_compromised", crls=[chains.crls["inter"]])
    assert result.code == "REVOKED" and "key_compromise" in result.failed.detail


def test_not_listed_in_a_current_crl(chains):
    result = _validate(chains, "leaf", crls=[chains.crls["inter"], chains.crls["root"]], revocation="require")
    assert result.ok


def test_require_needs_a_crl_for_every_issued_certificate(chains):
    result = _validate(chains, "leaf", crls=[chains.crls["inter"]], revocation="require")
    assert result.code == "REVOCATION_UNKNOWN" and result.failed.subject == "O=证印,CN=Inter"


def test_crl_signed_by_another_key_is_ignored(chains):
    forged = chains.crls["forged"]
    assert _validate(chains, "leaf", crls=[forged]).ok
    result = _validate(chains, "leaf", crls=[forged, chains.crls["root"]], revocation="require")
    assert result.code == "REVOCATION_UNKNOWN"
    assert "signature" in result.failed.detail


def test_stale_crl(chains):
    stale = [chains.crls["inter_stale"], chains.crls["root"]]
    assert _validate(chains, "leaf", crls=stale, revocation="require").code == "REVOCATION_UNKNOWN"
    assert _validate(chains, "leaf", crls=stale, revocation="if_available").ok
    assert _validate(chains, "leaf", crls=[chains.crls["inter"], chains.crls["root"]],
                     at=datetime(2031, 7, 2, tzinfo=UTC), revocation="require").code == "REVOCATION_UNKNOWN"


def test_revocation_off_ignores_crls(chains):
    result = _validate(chains, "leaf_revoked", crls=[chains.crls["inter"]], revocation="off")
    assert result.ok and not any(c.name == "revocation" for c in result.checks)


def test_unreadable_crl_is_ignored(chains):
    der = chains.crls["inter"].dump()
    broken = asn1_crl.CertificateList.load(der.replace(b"\x02\x01\x01", b"\x04\x01\x01", 1))
    result = _validate(chains, "leaf_revoked", crls=[broken, b"junk"], revocation="if_available")
    assert result.ok
    result = _validate(chains, "leaf_revoked", crls=[broken, chains.crls["root"]], revocation="require")
    assert result.code == "REVOCATION_UNKNOWN"


# ---- adversarial bundles ------------------------------------------------------------------------
def _asn1_cert(cn: str, issuer_cn: str, key: SM2PrivateKey, issuer_key: SM2PrivateKey, serial: int,
               *, ca: bool = True) -> x509.Certificate:
    """A certificate built with asn1crypto and signed with our own SM2 (no key identifiers)."""
    ext = [{"extn_id": "basic_constraints", "critical": True, "extn_value": {"ca": ca}}]
    tbs = x509.TbsCertificate({
        "version": "v3", "serial_number": serial, "signature": {"algorithm": "sm2_sm3"},
        "issuer": x509.Name.build({"common_name": issuer_cn}),
        "validity": {"not_before": x509.Time({"utc_time": datetime(2030, 1, 1, tzinfo=UTC)}),
                     "not_after": x509.Time({"utc_time": datetime(2040, 1, 1, tzinfo=UTC)})},
        "subject": x509.Name.build({"common_name": cn}),
        "subject_public_key_info": key.public_key().to_spki(), "extensions": ext,
    })
    der = tbs.dump()
    cert = x509.Certificate({"tbs_certificate": tbs, "signature_algorithm": {"algorithm": "sm2_sm3"},
                             "signature_value": issuer_key.sign(der)})
    return x509.Certificate.load(cert.dump())


def test_a_mesh_of_same_name_cas_is_searched_within_bounds():
    """30 CAs all named Mesh, each signed by the next one's key: the search stays bounded."""
    keys = [SM2PrivateKey.generate() for _ in range(31)]
    mesh = [_asn1_cert("Mesh", "Mesh", keys[i], keys[i + 1], i + 1) for i in range(30)]
    leaf = _asn1_cert("Leaf", "Mesh", keys[30], keys[0], 99, ca=False)
    unrelated = _asn1_cert("Other", "Other", keys[30], keys[30], 100)
    started = time.monotonic()
    result = validate_path(leaf, trust_anchors=[unrelated], intermediates=mesh, at=AT)
    _assert_consistent(result)
    assert result.code == "NO_CERTIFICATE_CHAIN_FOUND"
    anchor = _asn1_cert("Mesh", "Mesh", keys[1], keys[1], 200)  # the key that signed mesh[0]
    result = validate_path(leaf, trust_anchors=[anchor], intermediates=list(reversed(mesh)), at=AT)
    _assert_consistent(result)
    assert result.ok and [c.dump() for c in result.path] == [leaf.dump(), mesh[0].dump(), anchor.dump()]
    assert time.monotonic() - started < 20
