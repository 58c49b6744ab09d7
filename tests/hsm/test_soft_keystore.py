"""The soft key store: versions, states, passphrase handling, files OpenSSL can read."""

from __future__ import annotations

import json
import stat

import pytest

from hsm.errors import HsmError, InvalidSignature, KeyExists, KeyNotFound, KeyUnavailable, WrongPassphrase
from hsm.keystore import KeyRef, KeyState, Signer
from hsm.pkcs8 import load_private_key
from hsm.soft import SoftKeyStore
from support.openssl_library import read_encrypted_pem

PASS = b"correct horse battery staple"
FAST = 1_000  # PBKDF2 iterations for tests; the default is 100,000


@pytest.fixture
def store(tmp_path):
    return SoftKeyStore(tmp_path / "keys", PASS, iterations=FAST)


def test_generate_sign_verify(store):
    kv = store.generate("dept-signer")
    assert (kv.version, kv.state, kv.current) == (1, KeyState.ACTIVE, True)
    sig = store.sign("dept-signer", b"licence data")
    store.public_key("dept-signer").verify(sig, b"licence data")
    with pytest.raises(InvalidSignature):
        store.public_key("dept-signer").verify(sig, b"altered data")


def test_generate_twice_is_refused(store):
    store.generate("k")
    with pytest.raises(KeyExists):
        store.generate("k")


def test_rotation_keeps_old_versions_verifiable(store):
    store.generate("k")
    old_sig = store.sign("k", b"2019 document")
    kv2 = store.rotate("k")
    assert kv2.version == 2 and kv2.current
    assert store.public_key("k") == kv2.public_key
    assert store.public_key("k", 1) != kv2.public_key
    store.public_key("k", 1).verify(old_sig, b"2019 document")
    new_sig = store.sign("k", b"2026 document")
    kv2.public_key.verify(new_sig, b"2026 document")
    with pytest.raises(InvalidSignature):
        store.public_key("k", 1).verify(new_sig, b"2026 document")
    store.public_key("k", 1).verify(store.sign("k", b"x", version=1), b"x")
    assert [(v.version, v.current) for v in store.versions("k")] == [(1, False), (2, True)]


def test_disabled_version_verifies_but_does_not_sign(store):
    store.generate("k")
    sig = store.sign("k", b"m")
    store.disable("k", 1)
    with pytest.raises(KeyUnavailable, match="disabled"):
        store.sign("k", b"m")
    store.public_key("k", 1).verify(sig, b"m")
    store.enable("k", 1)
    store.sign("k", b"m")


def test_destroy_erases_the_private_part_for_good(store, tmp_path):
    store.generate("k")
    sig = store.sign("k", b"m")
    store.destroy("k", 1)
    assert not (tmp_path / "keys" / "k" / "v1.p8.pem").exists()
    with pytest.raises(KeyUnavailable, match="destroyed"):
        store.sign("k", b"m")
    with pytest.raises(KeyUnavailable):
        store.enable("k", 1)
    store.public_key("k", 1).verify(sig, b"m")
    reopened = SoftKeyStore(tmp_path / "keys", PASS)
    with pytest.raises(KeyUnavailable):
        reopened.sign("k", b"m")


def test_wrong_passphrase_is_refused_and_changes_nothing(store, tmp_path):
    store.generate("k")
    before = sorted(p.name for p in (tmp_path / "keys").rglob("*"))
    with pytest.raises(WrongPassphrase):
        SoftKeyStore(tmp_path / "keys", b"wrong")
    assert sorted(p.name for p in (tmp_path / "keys").rglob("*")) == before


def test_keys_survive_reopening(store, tmp_path):
    store.generate("k")
    sig = store.sign("k", b"m")
    reopened = SoftKeyStore(tmp_path / "keys", PASS)
    reopened.public_key("k").verify(reopened.sign("k", b"m2"), b"m2")
    reopened.public_key("k").verify(sig, b"m")


def test_unknown_label_and_version(store):
    with pytest.raises(KeyNotFound):
        store.sign("nope", b"m")
    store.generate("k")
    with pytest.raises(KeyNotFound, match="version 7"):
        store.public_key("k", 7)


@pytest.mark.parametrize("label", ["../escape", "UPPER", "", "a/b", ".hidden", "x" * 101, "a b"])
def test_labels_cannot_escape_the_directory(store, label):
    with pytest.raises(HsmError, match="invalid key label"):
        store.generate(label)


def test_files_are_owner_only_and_hold_no_plain_key(store, tmp_path):
    kv = store.generate("k")
    for path in (tmp_path / "keys").rglob("*"):
        if path.is_file():
            assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0, path
    pem = (tmp_path / "keys" / "k" / "v1.p8.pem").read_bytes()
    assert pem.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    meta = json.loads((tmp_path / "keys" / "k" / "key.json").read_text())
    assert meta["versions"][0]["public_point"] == kv.public_key.encoded_point().hex()


@pytest.mark.interop
def test_openssl_reads_the_key_file(store, tmp_path):
    """The file at rest is what OpenSSL (>= 3.2, PBES2 + hmacWithSM3 + SM4-CBC) reads."""
    kv = store.generate("k")
    key_file = (tmp_path / "keys" / "k" / "v1.p8.pem").read_bytes()
    assert read_encrypted_pem(key_file, b"not the passphrase") is None
    plain = read_encrypted_pem(key_file, PASS)
    assert plain is not None
    assert load_private_key(plain).public_key() == kv.public_key


def test_signer_reference_signs_through_the_store(store):
    store.generate("k")
    ref = store.signer("k")
    assert isinstance(ref, KeyRef) and isinstance(ref, Signer)
    assert not hasattr(ref, "private_scalar")
    ref.public_key().verify(ref.sign(b"m"), b"m")
    store.disable("k", 1)
    with pytest.raises(KeyUnavailable):
        ref.sign(b"m")


def test_events_reach_the_sink(tmp_path):
    events = []
    store = SoftKeyStore(tmp_path / "keys", PASS, iterations=FAST, on_event=events.append)
    store.generate("k")
    store.rotate("k")
    store.disable("k", 1)
    store.destroy("k", 1)
    assert [(e.action, e.version) for e in events] == [
        ("key.generate", 1), ("key.rotate", 2), ("key.disable", 1), ("key.destroy", 1)]
    assert all("private" not in json.dumps(e.details) for e in events)


def _counting_reads(store, monkeypatch) -> list[str]:
    reads: list[str] = []
    real = store._read_meta

    def read(label):
        reads.append(label)
        return real(label)

    monkeypatch.setattr(store, "_read_meta", read)
    return reads


def test_signing_reads_the_key_metadata_again_only_when_it_changed(store, monkeypatch):
    store.generate("k")
    reads = _counting_reads(store, monkeypatch)
    for _ in range(5):
        store.sign("k", b"x")
    assert reads == ["k"]
    store.rotate("k")  # through this store: seen at once
    signature = store.sign("k", b"x")
    store.public_key("k", 2).verify(signature, b"x")  # the new version signs
    with pytest.raises(InvalidSignature):
        store.public_key("k", 1).verify(signature, b"x")


def test_a_key_disabled_by_another_process_stops_signing_at_once(store, tmp_path):
    store.generate("k")
    store.sign("k", b"x")  # its metadata kept
    other = SoftKeyStore(tmp_path / "keys", PASS, iterations=FAST)  # as another process would
    other.disable("k", 1)
    with pytest.raises(KeyUnavailable):
        store.sign("k", b"x")
    other.enable("k", 1)
    assert store.sign("k", b"x")
    other.destroy("k", 1)
    with pytest.raises(KeyUnavailable):
        store.sign("k", b"x")


def test_kept_metadata_is_read_again_after_its_time_even_if_the_file_looks_the_same(store, monkeypatch):
    import hsm.soft as soft

    store.generate("k")
    clock = [1000.0]
    monkeypatch.setattr(soft.time, "monotonic", lambda: clock[0])
    reads = _counting_reads(store, monkeypatch)
    store.sign("k", b"x")
    clock[0] += soft.META_REUSE_SECONDS / 2
    store.sign("k", b"x")
    assert reads == ["k"]
    clock[0] += soft.META_REUSE_SECONDS
    store.sign("k", b"x")
    assert reads == ["k", "k"]


def test_a_key_whose_metadata_vanished_is_not_found_even_when_kept(store, tmp_path):
    store.generate("k")
    store.sign("k", b"x")
    (tmp_path / "keys" / "k" / "key.json").unlink()
    with pytest.raises(KeyNotFound):
        store.sign("k", b"x")
