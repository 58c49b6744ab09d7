"""SM2 signatures against the OpenSSL 3 command line, in both directions.

Ours verify with ``openssl pkeyutl -verify -rawin -digest sm3 -pkeyopt distid:1234567812345678``
(and tampered ones do not); OpenSSL's verify with ours. Keys whose x starts with a 0x00 or a
0x04 byte (and y with 0x00) are in both directions. Without an SM2-capable ``openssl`` the
tests skip, except under CI=true, where they fail.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from hsm.backends import available, get_backend
from hsm.errors import InvalidSignature
from hsm.hazmat import SM2PrivateKey
from hsm.signature import SignatureForm, decode_signature, encode_der
from hsm.sm2 import DEFAULT_UID, SM2PublicKey

pytestmark = pytest.mark.interop

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

BACKENDS = available()
MESSAGES = {
    "empty": b"",
    "abc": b"abc",
    "binary": bytes(range(256)) * 4,
    "large": b"\x5a\xa5" * 50_000,
}
KEY_NAMES = ["x00", "x04", "y00", "plain", "gbt"]


def unavailable(reason: str):
    """Skip, or fail under CI=true, where every interop check must run."""
    if IN_CI:
        pytest.fail(reason + " (CI=true: interop tests must run)")
    pytest.skip(reason)


def run(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["openssl", *args], capture_output=True, check=check)


@pytest.fixture(scope="session")
def openssl(tmp_path_factory) -> Path:
    """A work directory, once the openssl CLI has shown it signs and verifies SM2 with a distid."""
    if shutil.which("openssl") is None:
        unavailable("openssl CLI not found")
    d = tmp_path_factory.mktemp("openssl")
    (d / "m").write_bytes(b"probe")
    steps = [
        ["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:SM2", "-out", str(d / "k.pem")],
        ["pkey", "-in", str(d / "k.pem"), "-pubout", "-out", str(d / "p.pem")],
        ["pkeyutl", "-sign", "-inkey", str(d / "k.pem"), "-rawin", "-in", str(d / "m"), "-out",
         str(d / "s"), "-digest", "sm3", "-pkeyopt", "distid:1234567812345678"],
        ["pkeyutl", "-verify", "-pubin", "-inkey", str(d / "p.pem"), "-rawin", "-in", str(d / "m"),
         "-sigfile", str(d / "s"), "-digest", "sm3", "-pkeyopt", "distid:1234567812345678"],
    ]
    for step in steps:
        res = run(*step, check=False)
        if res.returncode != 0:
            unavailable(f"openssl CLI cannot do SM2 ({step[0]}): {res.stderr.decode(errors='replace')[:300]}")
    return d


@pytest.fixture(autouse=True)
def _needs_openssl(openssl) -> None:
    """Every test here needs the CLI (skip or, under CI=true, fail once it is known missing)."""


@pytest.fixture(params=BACKENDS)
def backend(request, monkeypatch) -> str:
    monkeypatch.setenv("ZHENGYIN_SM2_BACKEND", request.param)
    return request.param


def _distid(uid: bytes) -> str:
    return f"hexdistid:{uid.hex()}" if uid else "distid:"


def openssl_verify(pub_pem: Path, msg: bytes, sig: bytes, work: Path, uid: bytes = DEFAULT_UID) -> bool:
    (work / "msg").write_bytes(msg)
    (work / "sig").write_bytes(sig)
    res = run("pkeyutl", "-verify", "-pubin", "-inkey", str(pub_pem), "-rawin", "-in", str(work / "msg"),
              "-sigfile", str(work / "sig"), "-digest", "sm3", "-pkeyopt",
              "distid:1234567812345678" if uid == DEFAULT_UID else _distid(uid), check=False)
    out = res.stdout + res.stderr
    if res.returncode == 0:
        assert b"Verified Successfully" in out
        return True
    assert b"Verification Failure" in out or b"error" in out.lower(), out
    return False


def openssl_sign(key_pem: Path, msg: bytes, work: Path, uid: bytes = DEFAULT_UID) -> bytes:
    (work / "msg").write_bytes(msg)
    run("pkeyutl", "-sign", "-inkey", str(key_pem), "-rawin", "-in", str(work / "msg"), "-out",
        str(work / "sig"), "-digest", "sm3", "-pkeyopt",
        "distid:1234567812345678" if uid == DEFAULT_UID else _distid(uid))
    return (work / "sig").read_bytes()


def _flip(data: bytes, i: int) -> bytes:
    return data[:i] + bytes([data[i] ^ 0x01]) + data[i + 1:]


# ---- keys ------------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def key_files(openssl, special_keys) -> dict[str, tuple[Path, Path]]:
    """name -> (PKCS#8 private key PEM, public key PEM written by ``openssl pkey -pubout``)."""
    files = {}
    for name, key in special_keys.items():
        priv, pub = openssl / f"{name}.key.pem", openssl / f"{name}.pub.pem"
        priv.write_bytes(key.pkcs8_pem())
        run("pkey", "-in", str(priv), "-pubout", "-out", str(pub))
        files[name] = (priv, pub)
    files["openssl"] = (openssl / "k.pem", openssl / "p.pem")
    return files


@pytest.mark.parametrize("name", KEY_NAMES)
def test_public_key_encoding_matches_openssl(name, special_keys, key_files, openssl):
    key = special_keys[name]
    ours = SM2PublicKey(key.x, key.y)
    theirs_pem = key_files[name][1].read_bytes()
    theirs = SM2PublicKey.from_pem(theirs_pem)
    assert theirs == ours
    assert ours.to_pem().replace(b"\r\n", b"\n") == theirs_pem  # byte for byte, as OpenSSL writes it
    # OpenSSL reads ours and writes it back unchanged.
    mine = openssl / f"{name}.ours.pem"
    mine.write_bytes(ours.to_pem())
    assert run("pkey", "-pubin", "-in", str(mine), "-pubout").stdout == theirs_pem
    # A compressed SPKI written by OpenSSL reads as the same key.
    compressed = run("ec", "-pubin", "-in", str(mine), "-pubout", "-conv_form", "compressed").stdout
    assert SM2PublicKey.from_pem(compressed) == ours


def test_special_keys_really_are_special(special_keys):
    assert special_keys["x00"].x < 2**248
    assert special_keys["x04"].x >> 248 == 0x04
    assert special_keys["y00"].y < 2**248
    assert SM2PublicKey(special_keys["x00"].x, special_keys["x00"].y).to_der()[-65:-63] == b"\x04\x00"


# ---- our signatures, OpenSSL verifies ------------------------------------------------------

@pytest.mark.parametrize("name", KEY_NAMES)
def test_our_signatures_verify_with_openssl(name, backend, special_keys, key_files, tmp_path):
    key = SM2PrivateKey.from_scalar(special_keys[name].d)
    pub_pem = tmp_path / "pub.pem"
    pub_pem.write_bytes(key.public_key().to_pem())
    for label, msg in MESSAGES.items():
        sig = key.sign(msg)
        assert openssl_verify(pub_pem, msg, sig, tmp_path), (name, label)
        # ... and with the public key as OpenSSL itself encoded it.
        assert openssl_verify(key_files[name][1], msg, sig, tmp_path), (name, label)


@pytest.mark.parametrize("name", ["x00", "x04", "plain"])
def test_openssl_rejects_our_tampered_signatures(name, backend, special_keys, tmp_path):
    key = SM2PrivateKey.from_scalar(special_keys[name].d)
    pub_pem = tmp_path / "pub.pem"
    pub_pem.write_bytes(key.public_key().to_pem())
    msg = b"tamper with me"
    sig = key.sign(msg)
    assert openssl_verify(pub_pem, msg, sig, tmp_path)
    v = decode_signature(sig)
    r_at = sig.index(v.r.to_bytes((v.r.bit_length() + 7) // 8, "big"))  # r may be shorter than 32 bytes
    s_at = sig.rindex(v.s.to_bytes(32, "big")[-8:])
    for bad in (_flip(sig, r_at + 5), _flip(sig, s_at + 3), encode_der(v.r, (v.s + 1) % (2**256))):
        assert not openssl_verify(pub_pem, msg, bad, tmp_path)
    assert not openssl_verify(pub_pem, msg + b"!", sig, tmp_path)
    assert not openssl_verify(pub_pem, msg, sig, tmp_path, uid=b"ALICE123@YAHOO.COM")
    other = tmp_path / "other.pem"
    other.write_bytes(SM2PrivateKey.generate().public_key().to_pem())
    assert not openssl_verify(other, msg, sig, tmp_path)


def test_our_signatures_with_other_uids_verify_with_openssl(backend, special_keys, tmp_path):
    key = SM2PrivateKey.from_scalar(special_keys["x00"].d)
    pub_pem = tmp_path / "pub.pem"
    pub_pem.write_bytes(key.public_key().to_pem())
    for uid in (b"ALICE123@YAHOO.COM", b"\x00\x01\x02", "证印".encode(), b"U" * 200):
        sig = key.sign(b"uid test", uid=uid)
        assert openssl_verify(pub_pem, b"uid test", sig, tmp_path, uid=uid)
        assert not openssl_verify(pub_pem, b"uid test", sig, tmp_path)


# ---- OpenSSL's signatures, we verify -------------------------------------------------------

@pytest.mark.parametrize("name", [*KEY_NAMES, "openssl"])
def test_openssl_signatures_verify_with_ours(name, backend, key_files, tmp_path):
    priv, pub_pem = key_files[name]
    pub = SM2PublicKey.from_pem(pub_pem.read_bytes())
    for label, msg in MESSAGES.items():
        sig = openssl_sign(priv, msg, tmp_path)
        assert pub.verify(sig, msg).form is SignatureForm.DER, (name, label)
        v = decode_signature(sig)
        assert pub.verify(v.to_raw(), msg).form is SignatureForm.RAW
        with pytest.raises(InvalidSignature):
            pub.verify(sig, msg + b"\x00")
        with pytest.raises(InvalidSignature):
            pub.verify(sig, msg, uid=b"")
        for i in (len(sig) // 3, len(sig) - 2):
            with pytest.raises(InvalidSignature):
                pub.verify(_flip(sig, i), msg)


def test_openssl_signature_with_custom_uid_verifies_with_ours(backend, key_files, tmp_path):
    priv, pub_pem = key_files["x04"]
    pub = SM2PublicKey.from_pem(pub_pem.read_bytes())
    for uid in (b"ALICE123@YAHOO.COM", b"\xff" * 33, b"1234567812345679"):
        sig = openssl_sign(priv, b"m", tmp_path, uid=uid)
        assert pub.verify(sig, b"m", uid=uid)
        with pytest.raises(InvalidSignature):
            pub.verify(sig, b"m")


def test_many_openssl_keys_verify_with_ours(openssl, tmp_path):
    """Fresh OpenSSL keys: their public-key encoding and signatures both read right."""
    for i in range(6):
        priv, pub_pem = tmp_path / f"k{i}.pem", tmp_path / f"p{i}.pem"
        run("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:SM2", "-out", str(priv))
        run("pkey", "-in", str(priv), "-pubout", "-out", str(pub_pem))
        pub = SM2PublicKey.from_pem(pub_pem.read_bytes())
        assert pub.to_pem() == pub_pem.read_bytes()
        msg = f"message {i}".encode()
        for name in BACKENDS:
            v = decode_signature(openssl_sign(priv, msg, tmp_path))
            assert get_backend(name).verify_digest(pub.point, pub.signing_digest(msg), v.r, v.s)
