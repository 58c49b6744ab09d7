"""SM2 signatures against BouncyCastle (Debian's libbcprov-java), in both directions.

tests/interop/java/Sm2Tool.java is compiled once per session against bcprov.jar. Every check
goes into one ``batch`` run (one JVM); the single-shot ``verify`` and ``sign`` commands are run
a few times to check their exit codes and files. Without javac/java or bcprov.jar the tests
skip, except under CI=true, where they fail (CI installs default-jdk-headless and
libbcprov-java).
"""

from __future__ import annotations

import pytest

from hsm.backends import available, get_backend
from hsm.curve import N
from hsm.errors import InvalidSignature
from hsm.hazmat import SM2PrivateKey
from hsm.signature import SignatureForm, decode_signature, encode_der
from hsm.sm2 import DEFAULT_UID, SM2PublicKey

pytestmark = pytest.mark.interop

BACKENDS = available()
KEY_NAMES = ["x00", "x04", "y00", "plain", "gbt"]
MESSAGES = {"empty": b"", "abc": b"abc", "binary": bytes(range(256)) * 3, "large": b"\x00\xff" * 20_000}
UIDS = {"alice": b"ALICE123@YAHOO.COM", "binary": b"\x00\x01\xfe\xff", "long": b"I" * 150}
BC_GENERATED = 10


def _hex(b: bytes) -> str:
    return b.hex() if b else "-"


def _unhex(s: str) -> bytes:
    return b"" if s == "-" else bytes.fromhex(s)


def _flip(data: bytes, i: int) -> bytes:
    return data[:i] + bytes([data[i] ^ 0x01]) + data[i + 1:]


@pytest.fixture(scope="session")
def bc_results(bc, special_keys, tmp_path_factory) -> dict[tuple, str]:
    """Every batch job, keyed by what it checks, and BouncyCastle's answer to it."""
    jobs: dict[tuple, str] = {}

    def verify_job(key: tuple, spki: bytes, msg: bytes, sig: bytes, uid: bytes | None) -> None:
        jobs[key] = f"verify {_hex(spki)} {_hex(msg)} {_hex(sig)} {'-' if uid is None else _hex(uid)}"

    with pytest.MonkeyPatch.context() as mp:
        for backend in BACKENDS:
            mp.setenv("ZHENGYIN_SM2_BACKEND", backend)
            for name in KEY_NAMES:
                key = SM2PrivateKey.from_scalar(special_keys[name].d)
                spki = key.public_key().to_der()
                for label, msg in MESSAGES.items():
                    sig = key.sign(msg)
                    verify_job(("ours", backend, name, label), spki, msg, sig, None)
                    verify_job(("ours-explicit-id", backend, name, label), spki, msg, sig, DEFAULT_UID)
                for label, uid in UIDS.items():
                    sig = key.sign(b"uid", uid=uid)
                    verify_job(("ours-uid", backend, name, label), spki, b"uid", sig, uid)
                    verify_job(("ours-uid-wrong", backend, name, label), spki, b"uid", sig, None)
                msg = b"tamper"
                sig = key.sign(msg)
                v = decode_signature(sig)
                tampered = {
                    "r+1": encode_der((v.r + 1) % N, v.s),
                    "s+1": encode_der(v.r, (v.s + 1) % N),
                    "byte": _flip(sig, len(sig) // 2),
                    "last": _flip(sig, len(sig) - 1),
                    "swapped": encode_der(v.s, v.r),
                }
                for label, bad in tampered.items():
                    verify_job(("tampered", backend, name, label), spki, msg, bad, None)
                verify_job(("tampered", backend, name, "message"), spki, msg + b".", sig, None)
                other = SM2PrivateKey.generate().public_key().to_der()
                verify_job(("tampered", backend, name, "other-key"), other, msg, sig, None)
    for name in KEY_NAMES:
        d = f"{special_keys[name].d:064x}"
        for label, msg in MESSAGES.items():
            jobs[("bc-signd", name, label)] = f"signd {d} {_hex(msg)} -"
        for label, uid in UIDS.items():
            jobs[("bc-signd-uid", name, label)] = f"signd {d} {_hex(b'uid')} {_hex(uid)}"
    for i in range(BC_GENERATED):
        jobs[("bc-gen", i)] = f"gen {_hex(f'bc message {i}'.encode())}"
    answers = bc.batch(list(jobs.values()), tmp_path_factory.mktemp("bc-batch"))
    return dict(zip(jobs, answers, strict=True))


@pytest.fixture(params=BACKENDS)
def backend(request, monkeypatch) -> str:
    monkeypatch.setenv("ZHENGYIN_SM2_BACKEND", request.param)
    return request.param


# ---- our signatures, BouncyCastle verifies ------------------------------------------------

@pytest.mark.parametrize("name", KEY_NAMES)
@pytest.mark.parametrize("signer", BACKENDS)
def test_our_signatures_verify_with_bc(bc_results, signer, name):
    for label in MESSAGES:
        assert bc_results[("ours", signer, name, label)] == "ok", label
        assert bc_results[("ours-explicit-id", signer, name, label)] == "ok", label


@pytest.mark.parametrize("name", KEY_NAMES)
@pytest.mark.parametrize("signer", BACKENDS)
def test_our_signatures_with_other_uids_verify_with_bc(bc_results, signer, name):
    for label in UIDS:
        assert bc_results[("ours-uid", signer, name, label)] == "ok", label
        assert bc_results[("ours-uid-wrong", signer, name, label)] == "bad", label


@pytest.mark.parametrize("name", KEY_NAMES)
@pytest.mark.parametrize("signer", BACKENDS)
def test_bc_rejects_our_tampered_signatures(bc_results, signer, name):
    answers = {k[3]: v for k, v in bc_results.items() if k[:3] == ("tampered", signer, name)}
    assert len(answers) == 7
    assert all(v == "bad" for v in answers.values()), answers


# ---- BouncyCastle's signatures, we verify ---------------------------------------------------

def _bc_output(answer: str) -> tuple[bytes, bytes]:
    assert not answer.startswith("error"), answer
    spki_hex, sig_hex = answer.split()
    return _unhex(spki_hex), _unhex(sig_hex)


@pytest.mark.parametrize("name", KEY_NAMES)
def test_bc_signatures_with_our_keys_verify_with_ours(bc_results, special_keys, backend, name):
    key = special_keys[name]
    for label, msg in MESSAGES.items():
        spki, sig = _bc_output(bc_results[("bc-signd", name, label)])
        pub = SM2PublicKey.from_der(spki)
        assert pub == SM2PublicKey(key.x, key.y)
        assert spki == pub.to_der()  # BouncyCastle encodes the key exactly as we do
        assert pub.verify(sig, msg).form is SignatureForm.DER, label
        with pytest.raises(InvalidSignature):
            pub.verify(sig, msg + b"x")
        with pytest.raises(InvalidSignature):
            pub.verify(_flip(sig, len(sig) - 3), msg)
    for label, uid in UIDS.items():
        spki, sig = _bc_output(bc_results[("bc-signd-uid", name, label)])
        pub = SM2PublicKey.from_der(spki)
        assert pub.verify(sig, b"uid", uid=uid)
        with pytest.raises(InvalidSignature):
            pub.verify(sig, b"uid")


def test_bc_generated_keys_verify_with_ours(bc_results, backend):
    seen = set()
    for i in range(BC_GENERATED):
        spki, sig = _bc_output(bc_results[("bc-gen", i)])
        pub = SM2PublicKey.from_der(spki)
        seen.add(pub)
        msg = f"bc message {i}".encode()
        assert pub.verify(sig, msg).form is SignatureForm.DER
        assert pub.verify(decode_signature(sig).to_raw(), msg).form is SignatureForm.RAW
        with pytest.raises(InvalidSignature):
            pub.verify(sig, msg, uid=b"")
        for name in BACKENDS:
            v = decode_signature(sig)
            assert get_backend(name).verify_digest(pub.point, pub.signing_digest(msg), v.r, v.s)
    assert len(seen) == BC_GENERATED


# ---- the single-shot commands (a few JVM starts) -------------------------------------------

def test_cli_verify_exit_codes(bc, special_keys, tmp_path):
    key = SM2PrivateKey.from_scalar(special_keys["x00"].d)
    spki = tmp_path / "pub.der"
    spki.write_bytes(key.public_key().to_der())
    msg, sig, bad = tmp_path / "msg", tmp_path / "sig", tmp_path / "bad"
    msg.write_bytes(b"single shot")
    sig.write_bytes(key.sign(b"single shot"))
    bad.write_bytes(_flip(sig.read_bytes(), 10))
    ok = bc.run("verify", str(spki), str(msg), str(sig))
    assert (ok.returncode, ok.stdout.strip()) == (0, b"ok"), ok.stderr
    rejected = bc.run("verify", spki.read_bytes().hex(), str(msg), str(bad))
    assert (rejected.returncode, rejected.stdout.strip()) == (1, b"bad"), rejected.stderr


def test_cli_sign_writes_key_and_signature(bc, tmp_path, monkeypatch):
    msg, spki, sig = tmp_path / "msg", tmp_path / "pub.der", tmp_path / "sig.der"
    msg.write_bytes(b"signed by BouncyCastle")
    res = bc.run("sign", str(msg), str(spki), str(sig))
    assert res.returncode == 0, res.stderr
    pub = SM2PublicKey.from_der(spki.read_bytes())
    for name in BACKENDS:
        monkeypatch.setenv("ZHENGYIN_SM2_BACKEND", name)
        assert pub.verify(sig.read_bytes(), msg.read_bytes()).form is SignatureForm.DER
        with pytest.raises(InvalidSignature):
            pub.verify(sig.read_bytes(), b"something else")


def test_cli_usage_error(bc):
    res = bc.run("frobnicate")
    assert res.returncode == 2 and b"usage" in res.stderr
