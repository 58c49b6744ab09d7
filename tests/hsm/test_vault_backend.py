"""The vault key store against the stand-in: what is stored where, the unwrap cache, rewrap."""

from __future__ import annotations

import base64
import json

import hvac
import pytest

from hsm.errors import HsmError, KeyStoreBackendError, KeyUnavailable
from hsm.hazmat import SM2PrivateKey
from hsm.keystore import KeyState
from hsm.pkcs8 import private_key_info, private_key_pem
from hsm.vault import MAX_VERSIONS, TokenAuth, VaultConnection, VaultKeyStore
from support.vault_standin import VaultStandIn

PREFIX = "zhengyin/keys"


class FakeClock:
    def __init__(self, now: float = 1_000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def vault():
    with VaultStandIn() as server:
        yield server


def make_store(vault, *, cache=60, clock=None, events=None, token=None) -> VaultKeyStore:
    connection = VaultConnection(vault.url, TokenAuth(token or vault.root_token))
    return VaultKeyStore(connection, unwrap_cache_seconds=cache, clock=clock or FakeClock(),
                         on_event=None if events is None else events.append, actor="officer:wang")


def root_client(vault) -> hvac.Client:
    return hvac.Client(url=vault.url, token=vault.root_token)


def state_of(vault, label: str) -> dict[str, dict]:
    """The latest state secret of a label: {"<version>": entry}."""
    secret = vault.kv[f"{PREFIX}/{label}/state"]
    return secret.versions[secret.current_version].data["versions"]


def decrypt_calls(vault) -> int:
    return sum(1 for r in vault.requests if r.path.startswith("/v1/transit/decrypt/"))


def secret_forms(key: SM2PrivateKey) -> list[bytes | str]:
    """The private scalar as every encoding a leak could take."""
    d = key.private_scalar()
    raw = d.to_bytes(32, "big")
    der = private_key_info(key).dump()
    return [f"{d:064x}", f"{d:064X}", str(d), base64.b64encode(raw).decode(),
            base64.urlsafe_b64encode(raw).decode(),
            der.hex(), base64.b64encode(der).decode(), private_key_pem(key).decode().splitlines()[1]]


def assert_not_stored(vault, key: SM2PrivateKey) -> None:
    raw = key.private_scalar().to_bytes(32, "big")
    values = vault.stored_values()
    blob = "\n".join(values)
    for form in secret_forms(key):
        assert form not in blob
    for value in values:  # any stored base64 value, decoded at its own alignment
        try:
            decoded = base64.b64decode(value.rsplit(":", 1)[-1], validate=True)
        except ValueError:
            continue
        assert raw not in decoded


def test_clear_key_never_in_kv(vault):
    store = make_store(vault)
    store.ensure_transit_key()
    known = SM2PrivateKey.generate()
    store.import_key("imported", private_key_pem(known))
    rotated = SM2PrivateKey.generate()
    store.import_key("imported", private_key_pem(rotated), as_new_version=True)
    store.generate("generated")
    store.sign("imported", b"m")
    store.rotate_transit_key()
    store.rewrap_all()
    assert_not_stored(vault, known)
    assert_not_stored(vault, rotated)
    data = vault.kv[f"{PREFIX}/imported"].versions[1].data
    assert data["ciphertext"].startswith("vault:v1:") and data["algorithm"] == "SM2"


def test_one_kv_version_per_key_version_and_history_outlives_kv_default(vault):
    """KV keeps 10 versions unless told otherwise; the store pins max_versions so v1 survives."""
    store = make_store(vault)
    store.generate("k")
    sig = store.sign("k", b"first")
    for _ in range(12):
        store.rotate("k")
    secret = vault.kv[f"{PREFIX}/k"]
    assert secret.current_version == 13 and sorted(secret.versions) == list(range(1, 14))
    assert [secret.versions[n].data["version"] for n in range(1, 14)] == list(range(1, 14))
    assert secret.max_versions == MAX_VERSIONS and secret.cas_required
    store.public_key("k", 1).verify(sig, b"first")
    store.public_key("k", 1).verify(store.sign("k", b"again", version=1), b"again")
    assert [v.version for v in store.versions("k")] == list(range(1, 14))


def test_metadata_and_data_describe_the_key(vault):
    store = make_store(vault)
    kv = store.generate("k")
    secret = vault.kv[f"{PREFIX}/k"]
    data = secret.versions[1].data
    assert {k: data[k] for k in ("algorithm", "label", "version", "created_by", "origin")} == {
        "algorithm": "SM2", "label": "k", "version": 1, "created_by": "officer:wang", "origin": "generated"}
    assert data["public_key"] == kv.public_key.encoded_point().hex()
    assert secret.custom_metadata == {"algorithm": "SM2", "label": "k", "state": f"{PREFIX}/k/state"}
    info = state_of(vault, "k")["1"]
    assert info["status"] == "active" and info["public_key"] == data["public_key"]
    store.disable("k", 1)
    assert state_of(vault, "k")["1"]["status"] == "disabled"
    assert vault.kv[f"{PREFIX}/k"].custom_metadata["state"] == f"{PREFIX}/k/state"  # never rewritten
    state = vault.kv[f"{PREFIX}/k/state"]
    assert state.max_versions == 1 and state.cas_required and list(state.versions) == [state.current_version]


def test_metadata_entries_fit_vaults_limits_with_a_long_actor(vault):
    connection = VaultConnection(vault.url, TokenAuth(vault.root_token))
    store = VaultKeyStore(connection, actor="officer:" + "x" * 400)
    store.generate("k")
    store.rotate_transit_key()
    store.rewrap_all()  # the entry now also carries the rewrapped ciphertext
    assert all(len(v.encode()) <= 512 for v in vault.kv[f"{PREFIX}/k"].custom_metadata.values())


def test_destroy_erases_the_kv_version(vault):
    store = make_store(vault)
    store.generate("k")
    store.rotate("k")
    ciphertext = vault.kv[f"{PREFIX}/k"].versions[1].data["ciphertext"]
    sig = store.sign("k", b"m", version=1)
    store.destroy("k", 1)
    version = vault.kv[f"{PREFIX}/k"].versions[1]
    assert version.destroyed and version.data is None
    assert ciphertext not in "\n".join(vault.stored_values())
    with pytest.raises(hvac.exceptions.InvalidPath):
        root_client(vault).secrets.kv.v2.read_secret_version(path=f"{PREFIX}/k", version=1,
                                                             raise_on_deleted_version=True)
    store.public_key("k", 1).verify(sig, b"m")
    assert store.versions("k")[0].state is KeyState.DESTROYED


def test_unwrap_cache_expires_on_the_clock(vault):
    clock, events = FakeClock(), []
    store = make_store(vault, cache=60, clock=clock, events=events)
    store.generate("k")
    fresh = make_store(vault, cache=60, clock=clock, events=events)  # nothing cached yet
    fresh.sign("k", b"1")
    fresh.sign("k", b"2")
    assert decrypt_calls(vault) == 1
    clock.now += 59
    fresh.sign("k", b"3")
    assert decrypt_calls(vault) == 1
    clock.now += 2
    fresh.sign("k", b"4")
    assert decrypt_calls(vault) == 2
    assert [e.action for e in events].count("key.unwrap") == 2


def test_cache_zero_unwraps_for_every_signature(vault):
    store = make_store(vault, cache=0)
    store.generate("k")
    for i in range(3):
        store.sign("k", str(i).encode())
    assert decrypt_calls(vault) == 3
    assert len(store._cache) == 0


def test_a_disable_elsewhere_stops_a_cached_key_at_once(vault):
    signer_node, officer_node = make_store(vault), make_store(vault)
    signer_node.generate("k")
    signer_node.sign("k", b"cached now")
    officer_node.disable("k", 1)
    with pytest.raises(KeyUnavailable, match="disabled"):
        signer_node.sign("k", b"m")


def _set_min_decryption(vault, version: int) -> None:
    root_client(vault).secrets.transit.update_key_configuration(name="zhengyin",
                                                                min_decryption_version=version)


def test_transit_rotation_and_rewrap_keep_every_key_signing(vault):
    events = []
    store = make_store(vault, events=events)
    store.generate("a")
    store.rotate("a")
    store.generate("b")
    store.rotate("b")
    store.disable("b", 1)
    store.destroy("a", 1)
    assert store.rotate_transit_key() == 2
    result = store.rewrap_all()
    assert sorted(result.rewrapped) == [("a", 2, 1), ("b", 1, 1), ("b", 2, 1)]
    assert result.skipped == [("a", 1, "destroyed")] and result.transit_version == 2
    assert store.rewrap_all().up_to_date == [("a", 2), ("b", 1), ("b", 2)]  # idempotent
    _set_min_decryption(vault, 2)  # retire the old wrapping: only rewrapped keys can still unwrap
    after = make_store(vault)  # a new process: nothing cached
    for label, version in (("a", 2), ("b", 2)):
        after.public_key(label, version).verify(after.sign(label, b"m", version=version), b"m")
    after.enable("b", 1)
    after.public_key("b", 1).verify(after.sign("b", b"m", version=1), b"m")
    assert [e.action for e in events].count("key.rewrap") == 3
    assert vault.kv[f"{PREFIX}/a"].current_version == 2  # no KV version was added by the rewrap


def test_without_rewrap_a_retired_wrapping_fails_cleanly(vault):
    store = make_store(vault)
    store.generate("k")
    store.rotate_transit_key()
    _set_min_decryption(vault, 2)
    before = json.dumps(state_of(vault, "k"), sort_keys=True)
    with pytest.raises(KeyStoreBackendError, match="too old"):
        make_store(vault).sign("k", b"m")
    assert json.dumps(state_of(vault, "k"), sort_keys=True) == before


def test_a_state_write_that_failed_is_rebuilt_and_repaired(vault):
    """Vault fails (500) the state write right after version 2 was stored: the rotation still
    succeeds (the version exists), the entry is rebuilt from the data, and the next state
    change of the label writes it back — with its public key, so a later destroy keeps it."""
    store = make_store(vault)
    store.generate("k")
    vault.fail("POST", f"/v1/secret/data/{PREFIX}/k/state", status=500)
    kv2 = store.rotate("k")
    assert "2" not in state_of(vault, "k")  # the write really failed
    assert [v.version for v in store.versions("k")] == [1, 2]
    assert store.public_key("k") == kv2.public_key
    make_store(vault).sign("k", b"m")
    store.disable("k", 1)  # a state change of another version repairs the missing entry
    assert state_of(vault, "k")["2"]["public_key"] == kv2.public_key.encoded_point().hex()
    store.destroy("k", 2)
    assert store.public_key("k", 2) == kv2.public_key


def test_a_ciphertext_moved_to_another_label_is_refused(vault):
    store = make_store(vault, cache=0)
    store.generate("a")
    store.generate("b")
    stolen = dict(vault.kv[f"{PREFIX}/a"].versions[1].data)
    vault.kv[f"{PREFIX}/b"].versions[1].data["ciphertext"] = stolen["ciphertext"]
    with pytest.raises(HsmError, match="does not match"):
        store.sign("b", b"m")
    vault.kv[f"{PREFIX}/b"].versions[1].data = stolen  # the whole secret copied: the label gives it away
    with pytest.raises(HsmError, match="altered outside"):
        store.sign("b", b"m")
