"""PKCS#12 import: real third-party .p12/.pfx files, files the OpenSSL CLI writes, damage.

The interop files are read in place from ../shared/interop/certs (see SOURCES.md there); the
OpenSSL ones are made per test session with the `openssl` CLI.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest
from asn1crypto import cms, pem, pkcs12, x509
from cryptography.hazmat.decrepit.ciphers import algorithms as decrepit
from cryptography.hazmat.primitives.ciphers import Cipher, modes
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hsm import _rc2
from hsm.errors import KeyFormatError, UnsupportedAlgorithm, WrongPassphrase
from hsm.pkcs12 import MAX_KDF_ITERATIONS, Pkcs12UnsupportedAlgorithm, is_pkcs12, load_pkcs12, pkcs12_kdf
from hsm.sm2 import SM2PublicKey

# (file, password, its certificate as PEM, serial number)
INTEROP_FILES = [
    ("ofdrw_USER.p12", b"777777", "ofdrw_USER_cert.pem", 0x01719D2DAB60),
    ("ofdrw_SealBuilder.p12", b"777777", "ofdrw_SealBuilder_cert.pem", None),
    ("ofdrw_ROOT.p12", b"123456", "ofdrw_ROOT_cert.pem", None),
    ("chingliu_sm2_test.pfx", b"123456", None, None),
]
INTEROP_IDS = [f[0] for f in INTEROP_FILES]
CHINGLIU = ("chingliu_sm2_test.pfx", b"123456")  # 2048 iterations: cheap to load many times
REFUSALS = (KeyFormatError, WrongPassphrase)


def _read(interop_dir: Path, name: str) -> bytes:
    return (interop_dir / "certs" / name).read_bytes()


def _pem_certificate(data: bytes) -> x509.Certificate:
    _, _, der = pem.unarmor(data)
    return x509.Certificate.load(der)


def _certificate_key(certificate: x509.Certificate) -> SM2PublicKey:
    return SM2PublicKey.from_spki(certificate["tbs_certificate"]["subject_public_key_info"])


# ---- the interop files -----------------------------------------------------------------------

@pytest.mark.interop
@pytest.mark.parametrize(("name", "password", "cert_pem", "serial"), INTEROP_FILES, ids=INTEROP_IDS)
def test_interop_file_opens_with_its_password(interop_dir, name, password, cert_pem, serial):
    data = _read(interop_dir, name)
    assert is_pkcs12(data)
    contents = load_pkcs12(data, password)

    assert contents.certificate is not None
    public = contents.key.public_key()
    assert _certificate_key(contents.certificate) == public
    if cert_pem is not None:
        expected = _pem_certificate(_read(interop_dir, cert_pem))
        assert contents.certificate.dump() == expected.dump()
        assert _certificate_key(expected) == public
    else:  # chingliu: a self-signed certificate, CN=Ching
        assert contents.certificate.subject.native["common_name"] == "Ching"
        assert contents.certificate.subject == contents.certificate.issuer
    if serial is not None:
        assert contents.certificate.serial_number == serial

    message = b"PKCS#12 import check: " + name.encode()
    signature = contents.key.sign(message)
    _certificate_key(contents.certificate).verify(signature, message)


@pytest.mark.interop
def test_ofdrw_friendly_name_is_read(interop_dir):
    contents = load_pkcs12(_read(interop_dir, "ofdrw_USER.p12"), b"777777")
    assert contents.friendly_name == "private"
    assert contents.additional_certificates == []


@pytest.mark.interop
@pytest.mark.parametrize(("name", "password", "cert_pem", "serial"), INTEROP_FILES, ids=INTEROP_IDS)
@pytest.mark.parametrize("wrong", [b"wrong", b"", b"7777777", "密码".encode()])
def test_interop_file_refuses_a_wrong_password(interop_dir, name, password, cert_pem, serial, wrong):
    with pytest.raises(WrongPassphrase, match="wrong password"):
        load_pkcs12(_read(interop_dir, name), wrong)


@pytest.mark.interop
@pytest.mark.parametrize(("name", "password", "cert_pem", "serial"), INTEROP_FILES, ids=INTEROP_IDS)
def test_truncated_interop_file_is_malformed(interop_dir, name, password, cert_pem, serial):
    data = _read(interop_dir, name)
    for cut in sorted({1, 2, 5, 20, 64, len(data) // 3, len(data) // 2, len(data) - 64,
                       len(data) - 20, len(data) - 2, len(data) - 1}):
        assert is_pkcs12(data[:cut]) in (True, False)
        with pytest.raises(KeyFormatError):
            load_pkcs12(data[:cut], password)


@pytest.mark.interop
def test_every_truncation_is_malformed(interop_dir):
    data = _read(interop_dir, CHINGLIU[0])
    for cut in range(len(data)):
        with pytest.raises(KeyFormatError):
            load_pkcs12(data[:cut], CHINGLIU[1])


def _flip(data: bytes, position: int) -> bytes:
    changed = bytearray(data)
    changed[position] ^= 0xFF
    return bytes(changed)


@pytest.mark.interop
@pytest.mark.parametrize(("name", "password", "cert_pem", "serial"), INTEROP_FILES, ids=INTEROP_IDS)
def test_flipped_structure_bytes_are_malformed(interop_dir, name, password, cert_pem, serial):
    data = _read(interop_dir, name)
    data_oid = bytes.fromhex("06092a864886f70d010701")
    mac_oids = [bytes.fromhex("06052b0e03021a"), bytes.fromhex("0609608648016503040201")]  # sha1, sha256
    mac_oid = max(data.rfind(oid) for oid in mac_oids)
    mac_data = mac_oid - 6  # MacData{DigestInfo{AlgorithmIdentifier{OID: three short headers
    assert data[mac_data] == data[mac_data + 2] == data[mac_data + 4] == 0x30
    positions = {
        "outer SEQUENCE tag": 0,
        "version": data.index(b"\x02\x01\x03") + 2,
        "authSafe content type": data.index(data_oid) + len(data_oid) - 1,
        "MAC digest algorithm": mac_oid + data[mac_oid + 1] + 1,
        "MacData SEQUENCE tag": mac_data,
        "MAC value OCTET STRING tag": mac_data + 6 + data[mac_data + 5],
    }
    for what, position in positions.items():
        with pytest.raises(KeyFormatError):
            load_pkcs12(_flip(data, position), password)
            pytest.fail(f"flipping the {what} byte was not noticed")


@pytest.mark.interop
def test_flipped_protected_bytes_fail_the_mac(interop_dir):
    """Inside the MAC'd content damage is indistinguishable from a wrong password; never a key."""
    data = _read(interop_dir, CHINGLIU[0])
    for position in (200, 400, 600, 800, 1000, 1100):
        with pytest.raises(REFUSALS):
            load_pkcs12(_flip(data, position), CHINGLIU[1])


@pytest.mark.slow
@pytest.mark.interop
def test_every_single_byte_flip_is_refused(interop_dir):
    data = _read(interop_dir, CHINGLIU[0])
    for position in range(len(data)):
        with pytest.raises(REFUSALS):
            load_pkcs12(_flip(data, position), CHINGLIU[1])


@pytest.mark.interop
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.data())
def test_random_mutations_never_escape(interop_dir, data):
    original = _read(interop_dir, CHINGLIU[0])
    genuine = load_pkcs12(original, CHINGLIU[1]).key.public_key()
    mutated = bytearray(original)
    for _ in range(data.draw(st.integers(1, 4), label="mutations")):
        kind = data.draw(st.sampled_from(["replace", "insert", "delete", "truncate"]), label="kind")
        position = data.draw(st.integers(0, max(len(mutated) - 1, 0)), label="position")
        if kind == "replace" and mutated:
            mutated[position] = data.draw(st.integers(0, 255), label="byte")
        elif kind == "insert":
            mutated[position:position] = data.draw(st.binary(min_size=1, max_size=8), label="bytes")
        elif kind == "delete":
            del mutated[position:position + data.draw(st.integers(1, 8), label="count")]
        else:
            del mutated[position:]
    try:
        contents = load_pkcs12(bytes(mutated), CHINGLIU[1])
    except REFUSALS:
        return
    # Only a mutation that changed nothing that matters may load, and then to the same key.
    assert contents.key.public_key() == genuine


# ---- not PKCS#12 at all ------------------------------------------------------------------------

def _zip_bytes() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("OFD.xml", "<ofd:OFD/>")
    return buffer.getvalue()


@pytest.mark.parametrize("data", [b"", b"\x00", b"\x30", b"\x30\x80", os.urandom(300), _zip_bytes(),
                                  b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
                                  b"\x30\x03\x02\x01\x03"],
                         ids=["empty", "zero", "tag", "indefinite", "random", "zip", "pem", "bare-version"])
def test_non_pkcs12_input_is_malformed(data):
    with pytest.raises(KeyFormatError):
        load_pkcs12(data, b"pw")


@pytest.mark.interop
def test_is_pkcs12_sniffs(interop_dir):
    for name, *_ in INTEROP_FILES:
        assert is_pkcs12(_read(interop_dir, name))
    for name in ("ofdrw_USER_cert.pem", "ofdrw_sign_key.pem"):
        assert not is_pkcs12(_read(interop_dir, name))
    for data in (b"", b"\x30", os.urandom(64), _zip_bytes(), b"\x30\x82\xff\xff\x02\x01\x02" + bytes(40)):
        assert not is_pkcs12(data)
    assert not is_pkcs12("not bytes")  # type: ignore[arg-type]


# ---- what the OpenSSL CLI writes ----------------------------------------------------------------

PW = "pass word 1"


def _openssl(*args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def openssl_dir(tmp_path_factory) -> Path:
    """An SM2 key and self-signed SM3 certificate made by OpenSSL, and a P-256 pair beside them."""
    if shutil.which("openssl") is None:
        pytest.skip("the openssl CLI is not installed")
    d = tmp_path_factory.mktemp("pkcs12-openssl")
    _openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:SM2", "-out", str(d / "k.pem"))
    _openssl("req", "-x509", "-key", str(d / "k.pem"), "-sm3", "-subj", "/CN=t", "-days", "1",
             "-sigopt", "distid:1234567812345678", "-out", str(d / "c.pem"))
    _openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", str(d / "p.pem"))
    _openssl("req", "-x509", "-key", str(d / "p.pem"), "-subj", "/CN=p256", "-days", "1",
             "-out", str(d / "pc.pem"))
    return d


def _export(d: Path, out: str, *options: str, password: str = PW, key: str = "k.pem",
            cert: str = "c.pem") -> bytes:
    try:
        _openssl("pkcs12", "-export", "-inkey", str(d / key), "-in", str(d / cert),
                 "-passout", f"pass:{password}", "-out", str(d / out), *options)
    except subprocess.CalledProcessError as exc:
        pytest.skip(f"this openssl cannot export {options}: {exc.stderr.decode(errors='replace')[:200]}")
    return (d / out).read_bytes()


def _openssl_public_key(d: Path, key: str = "k.pem") -> SM2PublicKey:
    return SM2PublicKey.from_pem(_openssl("pkey", "-in", str(d / key), "-pubout").stdout)


OPENSSL_VARIANTS = {
    # name: pkcs12 -export options; the comment says what the file then holds
    "default": (),  # PBES2 PBKDF2-HMAC-SHA256 AES-256-CBC, SHA-256 MAC
    "legacy": ("-legacy",),  # 3DES key bag, RC2-40 certificates, SHA-1 MAC
    "sm4-sm3": ("-keypbe", "sm4-cbc", "-certpbe", "sm4-cbc", "-macalg", "sm3"),
    "3des2-rc2-128": ("-legacy", "-keypbe", "PBE-SHA1-2DES", "-certpbe", "PBE-SHA1-RC2-128"),
    "aes128-sha1mac": ("-keypbe", "aes-128-cbc", "-certpbe", "aes-128-cbc", "-macalg", "sha1"),
    "unencrypted-no-mac": ("-keypbe", "NONE", "-certpbe", "NONE", "-nomac"),
    "key-bag-with-mac": ("-keypbe", "NONE", "-certpbe", "NONE"),
}


@pytest.mark.interop
@pytest.mark.parametrize("variant", list(OPENSSL_VARIANTS))
def test_reads_what_openssl_exports(openssl_dir, variant):
    data = _export(openssl_dir, f"{variant}.p12", *OPENSSL_VARIANTS[variant])
    assert is_pkcs12(data)
    contents = load_pkcs12(data, PW.encode())
    public = _openssl_public_key(openssl_dir)
    assert contents.key.public_key() == public  # the same private scalar as OpenSSL's key
    assert contents.certificate is not None
    assert contents.certificate.dump() == _pem_certificate((openssl_dir / "c.pem").read_bytes()).dump()
    signature = contents.key.sign(b"hello")
    _certificate_key(contents.certificate).verify(signature, b"hello")


@pytest.mark.interop
@pytest.mark.parametrize("variant", ["default", "legacy", "sm4-sm3", "3des2-rc2-128"])
def test_openssl_export_refuses_a_wrong_password(openssl_dir, variant):
    data = _export(openssl_dir, f"{variant}.p12", *OPENSSL_VARIANTS[variant])
    with pytest.raises(WrongPassphrase):
        load_pkcs12(data, b"pass word 2")


@pytest.mark.interop
def test_unprotected_file_still_needs_no_password_but_reports_bad_encryption(openssl_dir):
    data = _export(openssl_dir, "nomac-encrypted.p12", "-nomac")
    with pytest.raises(WrongPassphrase):  # no MAC: the wrong password shows when decrypting
        load_pkcs12(data, b"wrong")
    assert load_pkcs12(data, PW.encode()).key.public_key() == _openssl_public_key(openssl_dir)


@pytest.mark.interop
@pytest.mark.parametrize("password", ["", "пароль 密码 ü"], ids=["empty", "non-ascii"])
def test_password_encodings(openssl_dir, password):
    data = _export(openssl_dir, f"pw-{len(password)}.p12", password=password)
    assert load_pkcs12(data, password.encode()).key.public_key() == _openssl_public_key(openssl_dir)
    with pytest.raises(WrongPassphrase):
        load_pkcs12(data, b"x")


@pytest.mark.interop
def test_chain_and_friendly_name(openssl_dir):
    data = _export(openssl_dir, "chain.p12", "-certfile", str(openssl_dir / "pc.pem"), "-name", "签章 key")
    contents = load_pkcs12(data, PW.encode())
    assert contents.friendly_name == "签章 key"
    assert contents.certificate is not None
    assert contents.certificate.subject.native["common_name"] == "t"
    assert [c.subject.native["common_name"] for c in contents.additional_certificates] == ["p256"]


@pytest.mark.interop
def test_file_without_a_key_is_malformed(openssl_dir):
    data = _export(openssl_dir, "nokey.p12", "-nokeys")
    with pytest.raises(KeyFormatError, match="no private key"):
        load_pkcs12(data, PW.encode())


@pytest.mark.interop
def test_non_sm2_key_is_refused(openssl_dir):
    data = _export(openssl_dir, "p256.p12", key="p.pem", cert="pc.pem")
    with pytest.raises(UnsupportedAlgorithm) as caught:
        load_pkcs12(data, PW.encode())
    assert isinstance(caught.value, KeyFormatError)  # callers catching either see it
    assert isinstance(caught.value, Pkcs12UnsupportedAlgorithm)


@pytest.mark.interop
def test_two_different_keys_are_refused(openssl_dir, tmp_path):
    """Two plain files spliced into one: which key to import would be a guess, so none is."""
    options = ("-keypbe", "NONE", "-certpbe", "NONE", "-nomac")
    first = pkcs12.Pfx.load(_export(openssl_dir, "plain-a.p12", *options))
    other_key = tmp_path / "k2.pem"
    _openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:SM2", "-out", str(other_key))
    _openssl("pkcs12", "-export", "-inkey", str(other_key), "-nocerts", "-passout", f"pass:{PW}",
             "-out", str(tmp_path / "b.p12"), *options)
    second = pkcs12.Pfx.load((tmp_path / "b.p12").read_bytes())
    infos = [*first.authenticated_safe, *second.authenticated_safe]
    spliced = pkcs12.Pfx({
        "version": "v3",
        "auth_safe": cms.ContentInfo({"content_type": "data",
                                      "content": pkcs12.AuthenticatedSafe(infos).dump()}),
    }).dump()
    with pytest.raises(KeyFormatError, match="2 different private keys"):
        load_pkcs12(spliced, PW.encode())


@pytest.mark.interop
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(position=st.integers(0, 10_000), value=st.integers(0, 255))
def test_mutated_legacy_export_is_refused(openssl_dir, position, value):
    data = bytearray(_export(openssl_dir, "legacy.p12", *OPENSSL_VARIANTS["legacy"]))
    position %= len(data)
    if data[position] == value:
        return
    data[position] = value
    with pytest.raises(REFUSALS):
        load_pkcs12(bytes(data), PW.encode())


# ---- building blocks ------------------------------------------------------------------------------

def _bmp(text: str) -> bytes:
    return text.encode("utf-16-be") + b"\0\0"


@pytest.mark.parametrize(("password", "salt", "purpose", "iterations", "size", "expected"), [
    # The PKCS#12 KDF vectors used by OpenSSL's and BouncyCastle's test suites (SHA-1).
    ("smeg", "0a58cf64530d823f", 1, 1, 24, "8aaae6297b6cb04642ab5b077851284eb7128f1a2a7fbca3"),
    ("smeg", "0a58cf64530d823f", 2, 1, 8, "79993dfe048d3b76"),
    ("queeg", "1682c0fc5b3f7ec5", 1, 1000, 24, "483dd6e919d7de2e8e648ba8f862f3fbfbdc2bcb2c02957f"),
    ("queeg", "1682c0fc5b3f7ec5", 2, 1000, 8, "9d461d1b00355c50"),
    ("smeg", "3d83c0e4546ac140", 3, 1, 20, "8d967d88f6caa9d714800ab3d48051d63f73a312"),
])
def test_pkcs12_kdf_vectors(password, salt, purpose, iterations, size, expected):
    out = pkcs12_kdf("sha1", _bmp(password), bytes.fromhex(salt), purpose, iterations, size)
    assert out.hex() == expected


@pytest.mark.parametrize(("key", "bits", "plain", "cipher"), [
    # RFC 2268 section 5
    ("0000000000000000", 63, "0000000000000000", "ebb773f993278eff"),
    ("ffffffffffffffff", 64, "ffffffffffffffff", "278b27e42e2f0d49"),
    ("3000000000000000", 64, "1000000000000001", "30649edf9be7d2c2"),
    ("88", 64, "0000000000000000", "61a8a244adacccf0"),
    ("88bca90e90875a", 64, "0000000000000000", "6ccf4308974c267f"),
    ("88bca90e90875a7f0f79c384627bafb2", 64, "0000000000000000", "1a807d272bbe5db1"),
    ("88bca90e90875a7f0f79c384627bafb2", 128, "0000000000000000", "2269552ab0f85ca6"),
    ("88bca90e90875a7f0f79c384627bafb216f80a6f85920584c42fceb0be255daf1e", 129,
     "0000000000000000", "5b78d3a43dfff1f1"),
])
def test_rc2_rfc2268_vectors(key, bits, plain, cipher):
    rc2 = _rc2.RC2(bytes.fromhex(key), bits)
    assert rc2.encrypt_block(bytes.fromhex(plain)).hex() == cipher
    assert rc2.decrypt_block(bytes.fromhex(cipher)).hex() == plain


def test_rc2_128_cbc_agrees_with_openssl():
    key, iv, message = os.urandom(16), os.urandom(8), os.urandom(80)
    encryptor = Cipher(decrepit.RC2(key), modes.CBC(iv)).encryptor()
    ciphertext = encryptor.update(message) + encryptor.finalize()
    assert _rc2.cbc_encrypt(key, iv, message) == ciphertext
    assert _rc2.cbc_decrypt(key, iv, ciphertext) == message


@pytest.mark.interop
def test_absurd_iteration_count_is_refused_before_any_work(openssl_dir):
    """A crafted MAC iteration count must not make the import hash for minutes."""
    pfx = pkcs12.Pfx.load(_export(openssl_dir, "legacy.p12", *OPENSSL_VARIANTS["legacy"]))
    mac_data = pfx["mac_data"].copy()
    mac_data["iterations"] = MAX_KDF_ITERATIONS + 1
    crafted = pkcs12.Pfx({"version": "v3", "auth_safe": pfx["auth_safe"].copy(), "mac_data": mac_data})
    with pytest.raises(KeyFormatError, match="iteration count"):
        load_pkcs12(crafted.dump(), PW.encode())
