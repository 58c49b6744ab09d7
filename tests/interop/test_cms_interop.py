"""SM2 CMS SignedData against real files, the OpenSSL 3 CLI and BouncyCastle's CMS (bcpkix).

* Real files (../shared/interop, read in place): the GB/T 35275 Sign-type signatures of three
  OFDs, found as a verifier finds them (Signatures.xml -> Signature.xml -> SignedValue), verify
  with ca.cms; one changed byte of content, attribute or signature makes them fail.
* OpenSSL 3.0 parses our rfc5652 flavour but ``openssl cms -verify`` checks SM2 with an empty
  user ID, so it rejects our GM/T 0009 default-ID signatures ("CMS_SignerInfo_verify:
  verification failure"). The same structure signed with the empty ID does verify with
  ``openssl cms -verify`` (the structure is right, the ID is the only difference), and
  ``openssl pkeyutl -verify -pkeyopt distid:1234567812345678`` verifies our signature over the
  DER SET OF signed attributes, extracted here without ca.cms.
* BouncyCastle: tests/interop/java/CmsTool.java (CMSSignedData + SignerInformation.verify with
  a JcaSimpleSignerInfoVerifierBuilder) verifies ours in both flavours; we verify what
  BouncyCastle's CMSSignedDataGenerator writes (BER by default). One JVM runs every job.

Without the tools the tests skip, except under CI=true, where they fail (CI installs
default-jdk-headless, libbcprov-java and libbcpkix-java).
"""

from __future__ import annotations

import posixpath
import shutil
import subprocess
import zipfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from asn1crypto import cms, parser, x509
from lxml import etree

from ca.certificates import build_certificate, new_serial
from ca.cms import read_signed_data, sign_signed_data, verify_signed_data
from ca.cms_asn1 import ContentInfo
from ca.names import subject_name
from ca.profiles import DEPARTMENT_SIGNER, ROOT_CA
from hsm import oids
from hsm.errors import InvalidSignature
from hsm.hazmat import SM2PrivateKey
from hsm.signature import SignatureForm, decode_signature
from hsm.sm2 import SM2PublicKey
from hsm.sm3 import sm3
from support.java import BC_JARS, compile_java_tool, unavailable

pytestmark = pytest.mark.interop

SOURCE = Path(__file__).resolve().parent / "java" / "CmsTool.java"
TIMEOUT = 120
OFD_NS = "{http://www.ofdspec.org/2016}"
CONTENT = "证照 PDF byte ranges / OFD Signature.xml".encode() * 5
ID_DATA = "1.2.840.113549.1.7.1"


def flip(data: bytes, i: int) -> bytes:
    return data[:i] + bytes([data[i] ^ 0x01]) + data[i + 1:]


def failed_names(result) -> list[str]:
    return [c.name for c in result.checks if not c.ok]


# ---- real files -------------------------------------------------------------------------------

@dataclass(frozen=True)
class RealCase:
    file: str
    signature_id: str
    detached: bool
    signed_attributes: bool
    signature_algorithm: str
    form: SignatureForm


REAL = {
    # Shandong oesplugin: no signed attributes, content = SM3(Signature.xml), raw r||s.
    "keyword-4": RealCase("ofdrw_keyword_shandong_sesv4_rawrs_plus_gbt35275.ofd", "4", False, False,
                          oids.SM2_WITH_SM3, SignatureForm.RAW),
    # topsec device: PKCS#9 attributes, detached, encapContentType id-data, attribute type GB/T data.
    "topsec-1": RealCase("ofdrw_testImageNotFound_topsec_gbt35275_pkcs9_2sigs.ofd", "1", True, True,
                         oids.SM2_SIGN, SignatureForm.DER),
    "topsec-2": RealCase("ofdrw_testImageNotFound_topsec_gbt35275_pkcs9_2sigs.ofd", "2", True, True,
                         oids.SM2_SIGN, SignatureForm.DER),
    # ofdrw-sign 2.0.4 GBT35275PKCS9DSContainer on a CCB bank receipt.
    "ccb-1": RealCase("ofdjs_ccb_bank_receipt_ofdrw_gbt35275_pkcs9.ofd", "1", True, True,
                      oids.SM2_SIGN, SignatureForm.DER),
}

_XML = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)


def _resolve(referrer: str, loc: str) -> str:
    """An OFD location: absolute from the package root, or relative to the referring file."""
    loc = loc.strip()
    path = loc.lstrip("/") if loc.startswith("/") else posixpath.join(posixpath.dirname(referrer), loc)
    return posixpath.normpath(path)


def sign_type_signature(ofd: Path, signature_id: str) -> tuple[bytes, bytes]:
    """(Signature.xml bytes, SignedValue bytes) of one Type=Sign signature, found as a verifier would."""
    with zipfile.ZipFile(ofd) as z:
        listing = "Doc_0/Signs/Signatures.xml"
        signatures = etree.fromstring(z.read(listing), _XML)
        (entry,) = [s for s in signatures.iter(f"{OFD_NS}Signature") if s.get("ID") == signature_id]
        assert entry.get("Type") == "Sign"
        signature_path = _resolve(listing, entry.get("BaseLoc"))
        signature_xml = z.read(signature_path)
        value_loc = etree.fromstring(signature_xml, _XML).find(f"{OFD_NS}SignedValue").text
        return signature_xml, z.read(_resolve(signature_path, value_loc))


@pytest.fixture(scope="module")
def real(interop_dir) -> dict[str, tuple[RealCase, bytes, bytes]]:
    return {name: (case, *sign_type_signature(interop_dir / "signed-ofd" / case.file, case.signature_id))
            for name, case in REAL.items()}


def real_content(case: RealCase, signature_xml: bytes) -> bytes | None:
    """What the caller passes: Signature.xml when detached; attached content is in the file."""
    return signature_xml if case.detached else None


@pytest.mark.parametrize("name", REAL)
def test_real_signed_data_verifies(real, name):
    case, signature_xml, value = real[name]
    info = read_signed_data(value)
    assert info.content_type == oids.GBT35275_SIGNED_DATA and len(info.certificates) == 1
    assert info.signer_certificate == info.certificates[0]
    assert info.detached is case.detached
    assert info.signer.signature_algorithm == case.signature_algorithm
    assert (info.signer.signed_attrs_bytes is not None) is case.signed_attributes
    if case.signed_attributes:
        assert info.signer.message_digest == sm3(signature_xml)
        assert info.signer.content_type_attr == oids.GBT35275_DATA
        assert info.signer.signing_time is not None
    else:
        assert info.content == sm3(signature_xml)  # what the oesplugin signs
    result = verify_signed_data(info, content=real_content(case, signature_xml))
    assert result.ok, result.checks
    assert result.signature_form is case.form


@pytest.mark.parametrize("name", REAL)
def test_real_signed_data_fails_when_one_byte_changes(real, name):
    case, signature_xml, value = real[name]
    info = read_signed_data(value)
    content = real_content(case, signature_xml)
    if case.detached:
        changed = verify_signed_data(value, content=flip(signature_xml, 100))
        assert failed_names(changed) == ["message-digest"]
    else:
        i = value.index(info.content) + 7
        assert failed_names(verify_signed_data(flip(value, i))) == ["signature"]
    i = value.index(info.signer.signature) + 40
    assert failed_names(verify_signed_data(flip(value, i), content=content)) == ["signature"]
    if case.signed_attributes:
        start = value.index(b"\xa0" + info.signer.signed_attrs_bytes[1:])
        t = value.index(b"\x17\x0d", start) + 2 + 11  # units of the seconds of signingTime
        digit = b"1" if value[t:t + 1] == b"0" else b"0"
        changed = value[:t] + digit + value[t + 1:]
        assert failed_names(verify_signed_data(changed, content=content)) == ["signature"]


def test_real_signed_attributes_are_verified_as_they_stand(real):
    """topsec writes its attribute SET out of DER order; the signature is over those bytes."""
    value = real["topsec-1"][2]
    info = read_signed_data(value)
    assert "signed attributes not in DER SET order" in info.layout
    as_written = info.signer.signed_attrs_bytes
    re_encoded = cms.CMSAttributes.load(as_written).dump(force=True)
    assert re_encoded != as_written and sorted(re_encoded) == sorted(as_written)
    key = SM2PublicKey.from_spki(x509.Certificate.load(info.signer_certificate).public_key)
    key.verify(info.signer.signature, as_written)
    with pytest.raises(InvalidSignature):
        key.verify(info.signer.signature, re_encoded)


# ---- our signer -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Party:
    key: SM2PrivateKey
    cert: bytes


@pytest.fixture(scope="module")
def party() -> Party:
    """A department signer under a throw-away root (valid from an hour ago, for BC's time check)."""
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    root_key, key = SM2PrivateKey.generate(), SM2PrivateKey.generate()
    root = build_certificate(profile=ROOT_CA, subject=subject_name("证印 CMS 互通测试根"),
                             subject_key=root_key.public_key(), signer=root_key, issuer=None,
                             serial=new_serial(), not_before=start)
    leaf = build_certificate(profile=DEPARTMENT_SIGNER, subject=subject_name("证印 CMS 互通测试签名人"),
                             subject_key=key.public_key(), signer=root_key, issuer=root,
                             serial=new_serial(), not_before=start)
    return Party(key, leaf.dump())


class EmptyIdSigner:
    """Signs with an empty SM2 user ID: what OpenSSL 3.0's ``cms -verify`` checks against."""

    def __init__(self, key: SM2PrivateKey):
        self._key = key

    def public_key(self) -> SM2PublicKey:
        return self._key.public_key()

    def sign(self, data: bytes, uid: bytes = b"") -> bytes:
        return self._key.sign(data, uid=b"")


def ours(party: Party, **kwargs) -> bytes:
    kwargs.setdefault("content", CONTENT)
    return sign_signed_data(signer=kwargs.pop("signer", party.key), certificate=party.cert, **kwargs)


def signed_attributes_independently(der: bytes) -> tuple[bytes, bytes]:
    """(DER SET OF signed attributes, signature) cut from the TLVs, without ca.cms or asn1crypto specs."""
    def children(contents: bytes) -> list[tuple[int, int, bytes, bytes]]:
        out, offset = [], 0
        while offset < len(contents):
            cls, _method, tag, header, inner, trailer = parser.parse(contents[offset:])
            out.append((cls, tag, header + inner + trailer, inner))
            offset += len(header) + len(inner) + len(trailer)
        return out

    content_info = children(der)[0][3]
    signed_data = children(children(content_info)[1][3])[0][3]
    signer_info = children(children(signed_data)[-1][3])[0][3]
    fields = children(signer_info)
    (attrs,) = [encoded for cls, tag, encoded, _ in fields if (cls, tag) == (2, 0)]
    return b"\x31" + attrs[1:], fields[-1][3]


# ---- OpenSSL ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def openssl() -> str:
    exe = shutil.which("openssl")
    if exe is None:
        unavailable("openssl CLI not found")
    version = subprocess.run([exe, "version"], capture_output=True, text=True, check=False).stdout
    if not version.startswith(("OpenSSL 3", "OpenSSL 4")):
        unavailable(f"needs OpenSSL >= 3 for SM2, found {version.strip()}")
    return version.strip()


def run_openssl(*args, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["openssl", *map(str, args)], cwd=cwd, capture_output=True, text=True,
                          timeout=60, check=False)


def cms_verify(tmp: Path, der: bytes, content: bytes | None) -> subprocess.CompletedProcess:
    (tmp / "sd.der").write_bytes(der)
    args = ["cms", "-verify", "-binary", "-inform", "DER", "-in", "sd.der", "-noverify", "-out", "out.bin"]
    if content is not None:
        (tmp / "content.bin").write_bytes(content)
        args += ["-content", "content.bin"]
    return run_openssl(*args, cwd=tmp)


def test_openssl_parses_our_rfc5652_signed_data(openssl, party, tmp_path):
    (tmp_path / "sd.der").write_bytes(ours(party, flavour="rfc5652"))
    res = run_openssl("cms", "-cmsout", "-print", "-inform", "DER", "-in", "sd.der", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    for text in ("contentType: pkcs7-signedData", "eContentType: pkcs7-data", "eContent: <ABSENT>",
                 "algorithm: sm3 (1.2.156.10197.1.401)", "algorithm: SM2-with-SM3 (1.2.156.10197.1.501)",
                 "object: messageDigest", "object: signingTime",
                 "object: id-smime-aa-signingCertificateV2", "d.issuerAndSerialNumber"):
        assert text in res.stdout, text


@pytest.mark.parametrize("detached", [True, False])
def test_openssl_cms_verify_and_the_sm2_user_id(openssl, party, tmp_path, detached):
    """Our default-ID signature: OpenSSL 3.0 refuses it at the signature step only (empty-ID check).
    The same structure signed with the empty ID verifies, and fails on changed content."""
    content = CONTENT if detached else None
    default_id = cms_verify(tmp_path, ours(party, flavour="rfc5652", detached=detached), content)
    if openssl.startswith("OpenSSL 3.0"):
        assert default_id.returncode != 0
        assert "CMS_SignerInfo_verify:verification failure" in default_id.stderr, default_id.stderr
    else:  # a newer OpenSSL may use the GM/T 0009 default ID; then it must simply verify
        assert default_id.returncode == 0 or "CMS_SignerInfo_verify:verification failure" in default_id.stderr

    empty_id = ours(party, signer=EmptyIdSigner(party.key), flavour="rfc5652", detached=detached)
    res = cms_verify(tmp_path, empty_id, content)
    assert res.returncode == 0 and "Verification successful" in res.stderr, res.stderr
    assert (tmp_path / "out.bin").read_bytes() == CONTENT
    if detached:
        tampered = cms_verify(tmp_path, empty_id, flip(CONTENT, 3))
        assert tampered.returncode != 0 and "verification failure" in tampered.stderr


@pytest.mark.parametrize("flavour", ["rfc5652", "gbt35275"])
def test_openssl_pkeyutl_verifies_our_signature_over_the_signed_attributes(openssl, party, tmp_path, flavour):
    attrs, signature = signed_attributes_independently(ours(party, flavour=flavour))
    (tmp_path / "cert.der").write_bytes(party.cert)
    (tmp_path / "attrs.der").write_bytes(attrs)
    (tmp_path / "changed.der").write_bytes(flip(attrs, len(attrs) - 5))
    (tmp_path / "sig.der").write_bytes(signature)
    res = run_openssl("x509", "-inform", "DER", "-in", "cert.der", "-pubkey", "-noout", "-out", "pub.pem",
                      cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    for data, expected in (("attrs.der", True), ("changed.der", False)):
        res = run_openssl("pkeyutl", "-verify", "-pubin", "-inkey", "pub.pem", "-rawin", "-in", data,
                          "-sigfile", "sig.der", "-digest", "sm3", "-pkeyopt", "distid:1234567812345678",
                          cwd=tmp_path)
        assert ("Signature Verified Successfully" in res.stdout) is expected, res.stdout + res.stderr


# ---- BouncyCastle -----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def bc_cms(tmp_path_factory) -> list[str]:
    """The java command line for CmsTool, compiled once."""
    classpath = compile_java_tool(tmp_path_factory, SOURCE, BC_JARS)
    return ["java", "-Xshare:auto", "-XX:TieredStopAtLevel=1", "-cp", classpath, "CmsTool", "batch"]


def _hex(data: bytes | None) -> str:
    return "-" if data is None else data.hex()


def _normalised_for_bc(der: bytes) -> bytes:
    """The same SignedData with what BouncyCastle 1.72 cannot read rewritten, nothing signed touched:
    signatureAlgorithm made 1.2.156.10197.1.501 and a raw r||s signature made DER."""
    info = ContentInfo.load(der)
    signer = info["content"]["signer_infos"][0]
    signer["signature_algorithm"] = {"algorithm": oids.SM2_WITH_SM3}
    signer["signature"] = decode_signature(signer["signature"].native).to_der()
    return info.dump()


def _swap_algorithm(der: bytes, oid: str) -> bytes:
    info = ContentInfo.load(der)
    info["content"]["signer_infos"][0]["signature_algorithm"] = {"algorithm": oid}
    return info.dump()


@pytest.fixture(scope="module")
def bc_answers(bc_cms, party, real, tmp_path_factory) -> dict[tuple, str]:
    jobs: dict[tuple, str] = {}
    for flavour in ("rfc5652", "gbt35275"):
        for detached in (True, False):
            for attrs in (True, False):
                der = ours(party, flavour=flavour, detached=detached, signed_attributes=attrs)
                content = CONTENT if detached else None
                jobs[("ours", flavour, detached, attrs)] = f"verify {_hex(der)} {_hex(content)}"
                if detached:
                    jobs[("ours-content", flavour, attrs)] = f"verify {_hex(der)} {_hex(flip(CONTENT, 9))}"
                sig = read_signed_data(der).signer.signature
                bad = flip(der, der.index(sig) + 30)
                jobs[("ours-signature", flavour, detached, attrs)] = f"verify {_hex(bad)} {_hex(content)}"
        der = ours(party, flavour=flavour)
        for oid in (oids.SM2_SIGN, oids.EC_PUBLIC_KEY):
            swapped = _swap_algorithm(der, oid)
            jobs[("ours-algorithm", flavour, oid)] = f"verify {_hex(swapped)} {_hex(CONTENT)}"
    for name, (case, signature_xml, value) in real.items():
        content = real_content(case, signature_xml)
        jobs[("real", name)] = f"verify {_hex(value)} {_hex(content)}"
        jobs[("real-normalised", name)] = f"verify {_hex(_normalised_for_bc(value))} {_hex(content)}"
    d = f"{party.key.private_scalar():064x}"
    for attached in (0, 1):
        for der_output in (0, 1):
            jobs[("bc-sign", attached, der_output)] = (
                f"sign {d} {party.cert.hex()} {CONTENT.hex()} {attached} {der_output}")
    work = tmp_path_factory.mktemp("cms-batch")
    (work / "jobs.txt").write_text("\n".join(jobs.values()) + "\n", encoding="ascii")
    res = subprocess.run([*bc_cms, str(work / "jobs.txt")], capture_output=True, timeout=TIMEOUT, check=False)
    assert res.returncode == 0, res.stderr.decode(errors="replace")
    answers = res.stdout.decode("ascii").splitlines()
    assert len(answers) == len(jobs), res.stderr.decode(errors="replace")
    return dict(zip(jobs, answers, strict=True))


@pytest.mark.parametrize("flavour", ["rfc5652", "gbt35275"])
def test_bc_verifies_ours_in_both_flavours(bc_answers, flavour):
    for detached in (True, False):
        for attrs in (True, False):
            assert bc_answers[("ours", flavour, detached, attrs)] == "ok", (detached, attrs)
            assert bc_answers[("ours-signature", flavour, detached, attrs)] == "bad", (detached, attrs)
    assert bc_answers[("ours-content", flavour, True)] == "bad-digest"   # messageDigest differs
    assert bc_answers[("ours-content", flavour, False)] == "bad"         # signature over the content


@pytest.mark.parametrize("oid", [oids.SM2_SIGN, oids.EC_PUBLIC_KEY])
def test_bc_accepts_only_sm2_with_sm3_as_signature_algorithm(bc_answers, oid):
    """BouncyCastle 1.72 maps only 1.2.156.10197.1.501 to SM3withSM2; real files' sm2sign
    (1.2.156.10197.1.301.1) and id-ecPublicKey are unknown to it. ca.cms accepts all three."""
    for flavour in ("rfc5652", "gbt35275"):
        answer = bc_answers[("ours-algorithm", flavour, oid)]
        assert answer == "ok" or answer.startswith(
            "error:IllegalArgumentException:Unknown signature type requested: SM3WITH" + oid), answer


def test_bc_on_the_real_files(bc_answers):
    """As written, BC verifies none of them (sm2sign OID; raw r||s). With only those encodings
    normalised it verifies the oesplugin and ofdrw files; for topsec it insists, as RFC 5652
    §11.1 says, that the contentType attribute equal encapContentType (GB/T data vs id-data),
    which ca.cms accepts because both mean data."""
    assert bc_answers[("real", "keyword-4")] == "bad"
    assert bc_answers[("real-normalised", "keyword-4")] == "ok"
    assert bc_answers[("real-normalised", "ccb-1")] == "ok"
    for name in ("topsec-1", "topsec-2"):
        answer = bc_answers[("real-normalised", name)]
        assert "content-type attribute value does not match eContentType" in answer, answer


@pytest.mark.parametrize("attached", [0, 1])
@pytest.mark.parametrize("der_output", [0, 1])
def test_bc_signed_data_verifies_with_ours(bc_answers, party, attached, der_output):
    answer = bc_answers[("bc-sign", attached, der_output)]
    assert not answer.startswith("error"), answer
    value = bytes.fromhex(answer)
    info = read_signed_data(value)
    assert info.layout[0] == ("DER" if der_output else "BER: indefinite-length")
    assert info.content_type == "1.2.840.113549.1.7.2" and info.encap_content_type == ID_DATA
    assert info.signer.signature_algorithm == oids.SM2_WITH_SM3
    assert "1.2.840.113549.1.9.52" in info.signer.attribute_types  # CMSAlgorithmProtection
    assert info.signer_certificate == party.cert
    content = None if attached else CONTENT
    result = verify_signed_data(info, content=content)
    assert result.ok, result.checks
    if attached:
        assert info.content == CONTENT
        assert failed_names(verify_signed_data(flip(value, value.index(CONTENT) + 4))) == ["message-digest"]
    else:
        assert failed_names(verify_signed_data(value, content=flip(CONTENT, 4))) == ["message-digest"]
