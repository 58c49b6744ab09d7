"""One contract for every key store backend: soft, vault on the stand-in, vault on a real Vault.

The real-Vault run needs VAULT_ADDR and either VAULT_TOKEN or VAULT_ROLE_ID + VAULT_SECRET_ID
(optional: VAULT_NAMESPACE, VAULT_CACERT, ZHENGYIN_TEST_VAULT_KV_MOUNT / _TRANSIT_MOUNT /
_TRANSIT_KEY); every test writes under its own ``zhengyin-test/<random>`` prefix and removes it.
"""

from __future__ import annotations

import json
import os
import uuid

import pytest

from hsm.errors import HsmError, InvalidSignature, KeyExists, KeyNotFound, KeyUnavailable
from hsm.hazmat import SM2PrivateKey
from hsm.keystore import KeyRef, KeyState, Signer
from hsm.pkcs8 import private_key_pem
from hsm.soft import SoftKeyStore
from support.vault_standin import VaultStandIn

REAL_VAULT_SKIP = ("no real Vault: set VAULT_ADDR and VAULT_TOKEN (or VAULT_ROLE_ID and VAULT_SECRET_ID) "
                   "to run the contract against one")


def _real_vault_configured() -> bool:
    env = os.environ
    return bool(env.get("VAULT_ADDR")) and bool(
        env.get("VAULT_TOKEN") or (env.get("VAULT_ROLE_ID") and env.get("VAULT_SECRET_ID")))


class Backend:
    """A store under test plus the events it emitted."""

    def __init__(self, store, events: list):
        self.store, self.events = store, events


@pytest.fixture(scope="module")
def standin():
    with VaultStandIn() as vault:
        yield vault


def _vault_store(connection, events, **mounts):
    from hsm.vault import VaultKeyStore

    store = VaultKeyStore(connection, key_prefix=f"zhengyin-test/{uuid.uuid4().hex[:12]}",
                          unwrap_cache_seconds=60, on_event=events.append, actor="contract-test", **mounts)
    store.ensure_transit_key()
    return store


def _real_vault(events):
    from hsm.vault import AppRoleAuth, TokenAuth, VaultConnection

    env = os.environ
    auth = (AppRoleAuth(env["VAULT_ROLE_ID"], env["VAULT_SECRET_ID"]) if env.get("VAULT_ROLE_ID")
            else TokenAuth(env["VAULT_TOKEN"]))
    connection = VaultConnection(env["VAULT_ADDR"], auth, namespace=env.get("VAULT_NAMESPACE"),
                                 ca_bundle=env.get("VAULT_CACERT"))
    return _vault_store(connection, events,
                        kv_mount=env.get("ZHENGYIN_TEST_VAULT_KV_MOUNT", "secret"),
                        transit_mount=env.get("ZHENGYIN_TEST_VAULT_TRANSIT_MOUNT", "transit"),
                        transit_key=env.get("ZHENGYIN_TEST_VAULT_TRANSIT_KEY", "zhengyin-test"))


@pytest.fixture(params=["soft", "vault-standin", pytest.param("vault-real", marks=pytest.mark.interop)])
def backend(request, tmp_path):
    events: list = []
    if request.param == "soft":
        yield Backend(SoftKeyStore(tmp_path / "keys", b"contract passphrase", iterations=1_000,
                                   on_event=events.append), events)
        return
    if request.param == "vault-standin":
        from hsm.vault import TokenAuth, VaultConnection

        vault = request.getfixturevalue("standin")
        yield Backend(_vault_store(VaultConnection(vault.url, TokenAuth(vault.root_token)), events), events)
        return
    if not _real_vault_configured():
        pytest.skip(REAL_VAULT_SKIP)
    store = _real_vault(events)
    try:
        yield Backend(store, events)
    finally:
        for label in store.labels():  # leave the real Vault as it was (key secret and its state)
            for path in (f"{store.key_prefix}/{label}", f"{store.key_prefix}/{label}/state"):
                store.connection.call("clean up", lambda c, path=path: (
                    c.secrets.kv.v2.delete_metadata_and_all_versions(path=path, mount_point=store.kv_mount)))


def test_generate_gives_version_one_that_signs(backend):
    store = backend.store
    kv = store.generate("dept-signer")
    assert (kv.label, kv.version, kv.state, kv.current, kv.origin) == (
        "dept-signer", 1, KeyState.ACTIVE, True, "generated")
    sig = store.sign("dept-signer", b"licence data")
    store.public_key("dept-signer").verify(sig, b"licence data")
    kv.public_key.verify(sig, b"licence data")
    with pytest.raises(InvalidSignature):
        store.public_key("dept-signer").verify(sig, b"licence dat4")
    with pytest.raises(KeyExists):
        store.generate("dept-signer")


def test_custom_user_id_is_signed_over(backend):
    store = backend.store
    store.generate("k")
    sig = store.sign("k", b"m", uid=b"alice@example")
    store.public_key("k").verify(sig, b"m", uid=b"alice@example")
    with pytest.raises(InvalidSignature):
        store.public_key("k").verify(sig, b"m")


def test_rotation_adds_a_current_version_and_keeps_the_old(backend):
    store = backend.store
    store.generate("k")
    old_sig = store.sign("k", b"2019 document")
    kv2 = store.rotate("k")
    assert kv2.version == 2 and kv2.current
    assert store.public_key("k") == kv2.public_key != store.public_key("k", 1)
    store.public_key("k", 1).verify(old_sig, b"2019 document")
    new_sig = store.sign("k", b"2026 document")
    kv2.public_key.verify(new_sig, b"2026 document")
    with pytest.raises(InvalidSignature):
        store.public_key("k", 1).verify(new_sig, b"2026 document")
    store.public_key("k", 1).verify(store.sign("k", b"asked by version", version=1), b"asked by version")
    assert [(v.version, v.current, v.state) for v in store.versions("k")] == [
        (1, False, KeyState.ACTIVE), (2, True, KeyState.ACTIVE)]


def test_disable_enable_destroy(backend):
    store = backend.store
    store.generate("k")
    store.rotate("k")
    sig = store.sign("k", b"m", version=1)
    assert store.disable("k", 1).state is KeyState.DISABLED
    with pytest.raises(KeyUnavailable, match="disabled"):
        store.sign("k", b"m", version=1)
    store.public_key("k", 1).verify(sig, b"m")
    store.sign("k", b"still signs with v2")
    assert store.enable("k", 1).state is KeyState.ACTIVE
    store.sign("k", b"m", version=1)
    assert store.destroy("k", 1).state is KeyState.DESTROYED
    with pytest.raises(KeyUnavailable, match="destroyed"):
        store.sign("k", b"m", version=1)
    with pytest.raises(KeyUnavailable):
        store.enable("k", 1)
    store.public_key("k", 1).verify(sig, b"m")  # the public key outlives the private part
    assert [v.state for v in store.versions("k")] == [KeyState.DESTROYED, KeyState.ACTIVE]


def test_a_disabled_current_version_refuses_default_signing(backend):
    store = backend.store
    store.generate("k")
    store.disable("k", 1)
    with pytest.raises(KeyUnavailable, match="disabled"):
        store.sign("k", b"m")


def test_list_labels_and_exists(backend):
    store = backend.store
    store.generate("a")
    store.generate("b")
    store.rotate("b")
    assert sorted((v.label, v.version) for v in store.list()) == [("a", 1), ("b", 1), ("b", 2)]
    assert store.labels() == ["a", "b"]
    assert store.exists("a") and not store.exists("c")


def test_unknown_label_or_version(backend):
    store = backend.store
    for call in (lambda: store.sign("nope", b"m"), lambda: store.public_key("nope"),
                 lambda: store.rotate("nope"), lambda: store.versions("nope"), lambda: store.signer("nope"),
                 lambda: store.disable("nope", 1)):
        with pytest.raises(KeyNotFound, match="nope"):
            call()
    store.generate("k")
    for call in (lambda: store.public_key("k", 7), lambda: store.sign("k", b"m", version=7),
                 lambda: store.destroy("k", 7), lambda: store.signer("k", 7)):
        with pytest.raises(KeyNotFound, match="version 7"):
            call()


@pytest.mark.parametrize("label", ["../escape", "UPPER", "", "a/b", ".hidden", "x" * 101, "a b"])
def test_bad_labels_are_refused(backend, label):
    with pytest.raises(HsmError, match="invalid key label"):
        backend.store.generate(label)


def test_import_known_key_and_as_new_version(backend):
    store = backend.store
    key = SM2PrivateKey.generate()
    kv = store.import_key("imported", private_key_pem(key))
    assert (kv.version, kv.origin, kv.public_key) == (1, "imported", key.public_key())
    key.public_key().verify(store.sign("imported", b"m"), b"m")
    with pytest.raises(KeyExists):
        store.import_key("imported", private_key_pem(key))
    other = SM2PrivateKey.generate()
    kv2 = store.import_key("imported", private_key_pem(other), as_new_version=True)
    assert kv2.version == 2 and store.public_key("imported") == other.public_key()


def test_no_private_key_reachable_through_the_api(backend):
    store = backend.store
    key = SM2PrivateKey.generate()
    d = key.private_scalar()
    store.import_key("k", private_key_pem(key))
    store.rotate("k")
    ref = store.signer("k", 1)
    assert isinstance(ref, KeyRef) and isinstance(ref, Signer)
    assert not any(hasattr(ref, name) for name in ("private_scalar", "_key", "key", "sign_digest"))
    seen = [repr(store), repr(ref), repr(ref.public_key()), repr(store.list()), repr(store.versions("k")),
            repr(backend.events), json.dumps([e.details for e in backend.events], default=str)]
    seen += [repr(getattr(store, name, None)) for name in dir(store) if not name.startswith("__")]
    text = " ".join(seen).lower()
    for form in (f"{d:064x}", str(d)):
        assert form not in text
    ref.public_key().verify(ref.sign(b"m"), b"m")


def test_signer_reference_follows_the_store(backend):
    store = backend.store
    store.generate("k")
    ref = store.signer("k")
    ref.public_key().verify(ref.sign(b"m"), b"m")
    store.disable("k", 1)
    with pytest.raises(KeyUnavailable):
        ref.sign(b"m")


def test_events_reach_the_sink_without_secrets(backend):
    store = backend.store
    store.generate("k")
    store.rotate("k")
    store.disable("k", 1)
    store.enable("k", 1)
    store.destroy("k", 1)
    store.import_key("i", private_key_pem(SM2PrivateKey.generate()))
    protocol = [(e.action, e.label, e.version) for e in backend.events if e.action != "key.unwrap"]
    assert protocol == [("key.generate", "k", 1), ("key.rotate", "k", 2), ("key.disable", "k", 1),
                        ("key.enable", "k", 1), ("key.destroy", "k", 1), ("key.import", "i", 1)]
    assert backend.events[0].details["public_key"] == store.public_key("k", 1).encoded_point().hex()
    assert all("private" not in json.dumps(e.details).lower() for e in backend.events)
