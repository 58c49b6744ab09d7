"""PKCS#8 / SEC1 / PBES2: what OpenSSL writes we read, what we write OpenSSL reads."""

from __future__ import annotations

import subprocess

import pytest
from asn1crypto import keys, pem
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hsm import oids
from hsm.errors import KeyFormatError, UnsupportedAlgorithm, WrongPassphrase
from hsm.hazmat import SM2PrivateKey
from hsm.pkcs8 import (
    encrypt_private_key,
    encrypted_private_key_pem,
    load_private_key,
    private_key_from_info,
    private_key_pem,
)
from support.openssl_library import read_encrypted_pem

PASSWORD = b"s3cret pass"


@pytest.fixture(scope="module")
def openssl_keys(tmp_path_factory):
    """One SM2 key made by the OpenSSL CLI, in every form it writes."""
    d = tmp_path_factory.mktemp("openssl-keys")

    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=30)

    run("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:SM2", "-out", str(d / "k.pem"))
    run("ec", "-in", str(d / "k.pem"), "-out", str(d / "sec1.pem"))
    run("pkcs8", "-topk8", "-in", str(d / "k.pem"), "-nocrypt", "-outform", "DER", "-out", str(d / "k.der"))
    for name, cipher, prf in [("aes", "aes-256-cbc", "hmacWithSHA256"), ("sm4", "sm4-cbc", "hmacWithSHA1")]:
        run("pkcs8", "-topk8", "-in", str(d / "k.pem"), "-v2", cipher, "-v2prf", prf,
            "-passout", f"pass:{PASSWORD.decode()}", "-out", str(d / f"{name}.pem"))
    run("ec", "-in", str(d / "k.pem"), "-aes128", "-passout", "pass:x", "-out", str(d / "legacy.pem"))
    pub = subprocess.run(["openssl", "pkey", "-in", str(d / "k.pem"), "-pubout"], check=True,
                         capture_output=True, timeout=30).stdout
    return d, pub


@pytest.mark.interop
@pytest.mark.parametrize("name", ["k.pem", "k.der", "sec1.pem", "aes.pem", "sm4.pem"])
def test_reads_every_openssl_form(openssl_keys, name):
    d, pub = openssl_keys
    key = load_private_key((d / name).read_bytes(), PASSWORD)
    assert key.public_key().to_pem() == pub
    key.public_key().verify(key.sign(b"m"), b"m")


@pytest.mark.interop
@pytest.mark.parametrize("name", ["aes.pem", "sm4.pem"])
def test_wrong_password_is_a_clear_error(openssl_keys, name):
    d, _ = openssl_keys
    with pytest.raises(WrongPassphrase):
        load_private_key((d / name).read_bytes(), b"wrong")
    with pytest.raises(WrongPassphrase, match="passphrase is needed"):
        load_private_key((d / name).read_bytes(), None)


@pytest.mark.interop
def test_legacy_pem_encryption_is_refused_with_advice(openssl_keys):
    d, _ = openssl_keys
    with pytest.raises(UnsupportedAlgorithm, match="pkcs8 -topk8"):
        load_private_key((d / "legacy.pem").read_bytes(), b"x")


def test_written_form_is_pbes2_pbkdf2_hmac_sm3_sm4_cbc():
    der = encrypt_private_key(SM2PrivateKey.generate(), PASSWORD, iterations=1000)
    info = keys.EncryptedPrivateKeyInfo.load(der)
    params = info["encryption_algorithm"]["parameters"]
    assert info["encryption_algorithm"]["algorithm"].native == "pbes2"
    kdf = params["key_derivation_func"]["parameters"]
    assert kdf["prf"]["algorithm"].dotted == oids.HMAC_SM3 == "1.2.156.10197.1.401.3.1"
    assert kdf["iteration_count"].native == 1000
    assert params["encryption_scheme"]["algorithm"].dotted == oids.SM4_CBC
    # fresh salt and IV each time
    again = keys.EncryptedPrivateKeyInfo.load(
        encrypt_private_key(SM2PrivateKey.generate(), PASSWORD, iterations=1000))
    assert again["encryption_algorithm"]["parameters"].dump() != params.dump()


def test_roundtrip_and_wrong_password():
    key = SM2PrivateKey.generate()
    der = encrypt_private_key(key, PASSWORD, iterations=1000)
    assert load_private_key(der, PASSWORD).public_key() == key.public_key()
    assert load_private_key(encrypted_private_key_pem(der), PASSWORD).public_key() == key.public_key()
    with pytest.raises(WrongPassphrase):
        load_private_key(der, b"not it")


def test_empty_passphrase_is_refused():
    with pytest.raises(ValueError, match="empty passphrase"):
        encrypt_private_key(SM2PrivateKey.generate(), b"")


@pytest.mark.interop
def test_openssl_library_reads_what_we_write():
    key = SM2PrivateKey.generate()
    pem_bytes = encrypted_private_key_pem(encrypt_private_key(key, PASSWORD, iterations=2000))
    assert read_encrypted_pem(pem_bytes, b"wrong") is None
    plain = read_encrypted_pem(pem_bytes, PASSWORD)
    assert plain is not None and load_private_key(plain).public_key() == key.public_key()


@pytest.mark.interop
def test_openssl_cli_reads_our_unencrypted_pkcs8(tmp_path):
    key = SM2PrivateKey.generate()
    (tmp_path / "k.pem").write_bytes(private_key_pem(key))
    pub = subprocess.run(["openssl", "pkey", "-in", str(tmp_path / "k.pem"), "-pubout"], check=True,
                         capture_output=True, timeout=30).stdout
    assert pub == key.public_key().to_pem()


def test_bouncycastle_prf_identifier_is_read_too():
    key = SM2PrivateKey.generate()
    info = keys.EncryptedPrivateKeyInfo.load(encrypt_private_key(key, PASSWORD, iterations=1000))
    prf = info["encryption_algorithm"]["parameters"]["key_derivation_func"]["parameters"]["prf"]
    prf["algorithm"] = "hmac_sm3_bc"
    der = info.dump(force=True)
    assert oids.HMAC_SM3_BC.encode() not in der  # sanity: the OID is encoded, not its text
    assert load_private_key(der, PASSWORD).public_key() == key.public_key()


def test_other_curves_are_refused(tmp_path):
    subprocess.run(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
                    "-out", str(tmp_path / "p256.pem")], check=True, capture_output=True, timeout=30)
    with pytest.raises(UnsupportedAlgorithm, match="SM2"):
        load_private_key((tmp_path / "p256.pem").read_bytes())


def test_mismatched_public_key_is_refused():
    key, other = SM2PrivateKey.generate(), SM2PrivateKey.generate()
    info = keys.PrivateKeyInfo.load(pem.unarmor(private_key_pem(key))[2])
    ec_key = info["private_key"].parsed
    ec_key["public_key"] = other.public_key().encoded_point()
    info["private_key"] = ec_key
    with pytest.raises(KeyFormatError, match="does not belong"):
        private_key_from_info(info.dump(force=True))


@pytest.mark.parametrize("data", [
    b"", b"\x30", b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
    b"-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n", b"PK\x03\x04 zip", bytes(64)])
def test_garbage_is_a_format_error(data):
    with pytest.raises(KeyFormatError):
        load_private_key(data, PASSWORD)


_ENCRYPTED = encrypt_private_key(SM2PrivateKey.from_scalar(12345), PASSWORD, iterations=10)
_PLAIN = pem.unarmor(private_key_pem(SM2PrivateKey.from_scalar(12345)))[2]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(which=st.booleans(), cut=st.integers(min_value=0), flip=st.integers(min_value=0),
       bit=st.integers(min_value=0, max_value=7))
def test_mutations_never_escape_as_other_errors(which, cut, flip, bit):
    data = bytearray(_ENCRYPTED if which else _PLAIN)
    data[flip % len(data)] ^= 1 << bit
    data = bytes(data[: max(1, len(data) - cut % 8)])
    try:
        key = load_private_key(data, PASSWORD)
    except (KeyFormatError, WrongPassphrase, UnsupportedAlgorithm):
        return
    # A mutation may survive (e.g. in a salt byte before decryption fails safely, or an unused
    # field); then the key must still be a coherent SM2 key.
    key.public_key().verify(key.sign(b"m"), b"m")
