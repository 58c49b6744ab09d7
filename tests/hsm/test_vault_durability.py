"""The vault store when a write fails half-way, when settings drift, and its unwrap cache.

Review findings 2 (a destroy Vault interrupted), 3 (metadata writes that failed were
swallowed), 4 (clear keys outliving the cache time), 7 (error mapping) and 9 (the tests).
"""

from __future__ import annotations

import base64
import gc
import time

import hvac
import pytest

from hsm.errors import (
    KeyStoreClosed,
    KeyStoreMisconfigured,
    KeyStorePermissionDenied,
    KeyStoreUnavailable,
    KeyUnavailable,
)
from hsm.hazmat import SM2PrivateKey
from hsm.keystore import KeyState
from hsm.pkcs8 import private_key_pem
from hsm.vault import MAX_VERSIONS, TokenAuth, VaultConnection, VaultKeyStore
from support.vault_standin import VaultStandIn

PREFIX = "zhengyin/keys"
OFFICER = {
    "secret/data/zhengyin/keys/*": ["create", "read", "update"],
    "secret/metadata/zhengyin/keys/*": ["create", "read", "update", "list"],
    "secret/destroy/zhengyin/keys/*": ["update"],
    "transit/encrypt/zhengyin": ["update"],
    "transit/decrypt/zhengyin": ["update"],
}


class FakeClock:
    def __init__(self, now: float = 1_000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def vault():
    with VaultStandIn() as server:
        yield server


def make_store(vault, token=None, **kwargs) -> VaultKeyStore:
    kwargs.setdefault("unwrap_cache_seconds", 0)
    return VaultKeyStore(VaultConnection(vault.url, TokenAuth(token or vault.root_token)), **kwargs)


def root(vault) -> hvac.Client:
    return hvac.Client(url=vault.url, token=vault.root_token)


def state_secret(vault, label: str):
    return vault.kv[f"{PREFIX}/{label}/state"]


def state_of(vault, label: str) -> dict[str, dict]:
    secret = state_secret(vault, label)
    return secret.versions[secret.current_version].data["versions"]


def decryptable_scalars(vault) -> set[bytes]:
    out = set()
    for value in vault.stored_values():
        if value.startswith("vault:v"):
            answer = root(vault).secrets.transit.decrypt_data(name="zhengyin", ciphertext=value)
            out.add(base64.b64decode(answer["data"]["plaintext"]))
    return out


def scalar(key: SM2PrivateKey) -> bytes:
    return key.private_scalar().to_bytes(32, "big")


# ---- finding 2: destroy -----------------------------------------------------------------------
def test_destroy_after_a_rewrap_leaves_no_wrapped_copy(vault):
    store = make_store(vault)
    doomed = SM2PrivateKey.generate()
    store.import_key("k", private_key_pem(doomed))
    store.rotate("k")
    store.rotate_transit_key()
    store.rewrap_all()
    assert "wrapped" in state_of(vault, "k")["1"]
    store.destroy("k", 1)
    assert "wrapped" not in state_of(vault, "k")["1"]
    assert list(state_secret(vault, "k").versions) == [state_secret(vault, "k").current_version]
    assert scalar(doomed) not in decryptable_scalars(vault)
    assert store.rewrap_all().complete


def test_a_destroy_vault_interrupts_already_stops_the_key_and_a_retry_completes_it(vault):
    events = []
    store = make_store(vault, on_event=events.append)
    doomed = SM2PrivateKey.generate()
    store.import_key("k", private_key_pem(doomed))
    store.rotate("k")
    store.rotate_transit_key()
    store.rewrap_all()
    vault.fail("POST", f"/v1/secret/destroy/{PREFIX}/k", status=500)
    with pytest.raises(KeyStoreUnavailable):
        store.destroy("k", 1)
    # Not yet erased in KV, but nothing signs with it and the state holds no decryptable copy.
    assert not vault.kv[f"{PREFIX}/k"].versions[1].destroyed
    assert "wrapped" not in state_of(vault, "k")["1"]
    with pytest.raises(KeyUnavailable, match="destroyed"):
        make_store(vault).sign("k", b"m", version=1)
    assert store.versions("k")[0].state is KeyState.DESTROYED
    report = store.rewrap_all()
    assert ("k", 1, "destroyed, but not yet erased: run destroy again") in report.skipped
    assert not report.complete
    assert "key.destroy" not in [e.action for e in events]
    store.destroy("k", 1)  # the retry completes the erasure
    assert vault.kv[f"{PREFIX}/k"].versions[1].destroyed
    assert scalar(doomed) not in decryptable_scalars(vault)
    assert store.rewrap_all().complete and [e.action for e in events].count("key.destroy") == 1


def test_a_version_destroyed_directly_in_vault_loses_its_rewrapped_copy_on_destroy(vault):
    store = make_store(vault)
    doomed = SM2PrivateKey.generate()
    store.import_key("k", private_key_pem(doomed))
    store.rotate_transit_key()
    store.rewrap_all()
    root(vault).secrets.kv.v2.destroy_secret_versions(path=f"{PREFIX}/k", versions=[1])
    assert ("k", 1, "destroyed, but not yet erased: run destroy again") in store.rewrap_all().skipped
    store.destroy("k", 1)
    assert scalar(doomed) not in decryptable_scalars(vault)


# ---- finding 3: metadata before data, refusals not swallowed ------------------------------------
def test_a_policy_that_cannot_write_metadata_fails_generate_with_nothing_stored(vault):
    make_store(vault).ensure_transit_key()
    vault.add_policy("no-metadata", {**OFFICER, "secret/metadata/zhengyin/keys/*": ["read", "list"]})
    store = make_store(vault, token=vault.create_token(["no-metadata"]))
    with pytest.raises(KeyStorePermissionDenied, match="metadata"):
        store.generate("k")
    assert not any(secret.versions for secret in vault.kv.values())
    assert not [r for r in vault.requests if r.path.startswith("/v1/transit/encrypt/")]


def test_a_policy_that_cannot_record_states_is_reported_not_hidden(vault):
    make_store(vault).generate("k")
    vault.add_policy("no-state", {**OFFICER, "secret/data/zhengyin/keys/+/state": ["deny"]})
    store = make_store(vault, token=vault.create_token(["no-state"]))
    with pytest.raises(KeyStorePermissionDenied, match="version 2 of key 'k' was stored but its state"):
        store.rotate("k")
    with pytest.raises(KeyStorePermissionDenied):
        store.generate("other")  # refused before any key is stored
    assert "secret/data" not in str(vault.kv.get(f"{PREFIX}/other"))
    assert not (vault.kv.get(f"{PREFIX}/other") and vault.kv[f"{PREFIX}/other"].versions)


def test_a_transient_metadata_failure_fails_generate_cleanly_and_a_retry_works(vault):
    store = make_store(vault)
    store.ensure_transit_key()
    vault.fail("POST", f"/v1/secret/metadata/{PREFIX}/k", status=500)
    with pytest.raises(KeyStoreUnavailable):
        store.generate("k")
    assert not store.exists("k")
    assert store.generate("k").version == 1


def test_old_versions_survive_when_someone_reset_max_versions(vault):
    store = make_store(vault)
    store.generate("k")
    signature = store.sign("k", b"2019 licence")
    root(vault).secrets.kv.v2.update_metadata(path=f"{PREFIX}/k", max_versions=3, cas_required=False)
    for _ in range(12):
        store.rotate("k")
    secret = vault.kv[f"{PREFIX}/k"]
    assert secret.max_versions == MAX_VERSIONS and secret.cas_required
    assert sorted(secret.versions) == list(range(1, 14))
    store.public_key("k", 1).verify(signature, b"2019 licence")


# ---- finding 4: the unwrap cache ----------------------------------------------------------------
def _live_keys_for(public_key) -> int:
    gc.collect()
    return sum(1 for o in gc.get_objects() if isinstance(o, SM2PrivateKey) and o.public_key() == public_key)


def test_a_cached_key_is_dropped_on_time_without_anyone_asking(vault):
    store = make_store(vault, unwrap_cache_seconds=1.0)
    public = make_store(vault).generate("k").public_key
    store.sign("k", b"m")
    assert list(store._cache._entries) == [("k", 1)] and _live_keys_for(public) >= 1
    deadline = time.monotonic() + 5
    while store._cache._entries and time.monotonic() < deadline:
        time.sleep(0.05)  # no get(), no len(): only the sweeper can empty it
    assert store._cache._entries == {}
    assert _live_keys_for(public) == 0  # nothing else in the process holds the clear key


def test_the_sweeper_follows_an_injected_clock(vault):
    clock = FakeClock()
    store = make_store(vault, unwrap_cache_seconds=60, clock=clock)
    store.generate("k")
    store.sign("k", b"m")
    clock.now += 61
    deadline = time.monotonic() + 5
    while store._cache._entries and time.monotonic() < deadline:
        time.sleep(0.05)
    assert store._cache._entries == {}


def test_close_drops_every_key_and_stops_the_store(vault):
    store = make_store(vault, unwrap_cache_seconds=600)
    public = store.generate("k").public_key
    store.sign("k", b"m")
    sweeper = store._cache._sweeper
    assert sweeper is not None and sweeper.is_alive()
    store.close()
    assert store._cache._entries == {} and _live_keys_for(public) == 0
    assert not sweeper.is_alive()
    with pytest.raises(KeyStoreClosed):
        store.sign("k", b"m")


# ---- finding 7: error mapping ---------------------------------------------------------------------
def test_a_mount_of_the_wrong_engine_is_a_configuration_error(vault):
    store = make_store(vault, kv_mount="transit")
    with pytest.raises(KeyStoreMisconfigured, match=r"405.*KV version 2"):
        store.versions("k")


def test_a_missing_ca_bundle_is_refused_when_connecting(vault, tmp_path):
    with pytest.raises(KeyStoreMisconfigured, match="CA bundle"):
        VaultConnection(vault.url.replace("http:", "https:"), TokenAuth(vault.root_token),
                        ca_bundle=tmp_path / "nope.pem")


def test_rewrap_lists_refused_ciphertexts_and_goes_on(vault):
    store = make_store(vault)
    store.generate("old")           # wrapped under Transit v1
    store.rotate_transit_key()
    store.generate("newer")         # wrapped under v2
    store.rotate_transit_key()      # v3
    root(vault).secrets.transit.update_key_configuration(name="zhengyin", min_decryption_version=2)
    report = store.rewrap_all()
    assert report.rewrapped == [("newer", 1, 2)]
    [(label, version, why)] = report.skipped
    assert (label, version) == ("old", 1) and "too old" in why
    assert not report.complete
    store.sign("newer", b"m")
