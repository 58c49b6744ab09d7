"""Two (or more) nodes changing the same key at the same moment: every change survives.

Each racing store is held, through a barrier, right before its first state write — after it
has read the state — so all of them write on the same stale view and check-and-set must
sort it out (review finding 1: a whole-document write without CAS lost the other's change).
"""

from __future__ import annotations

import base64
import threading

import hvac
import pytest

from hsm.hazmat import SM2PrivateKey
from hsm.keystore import KeyState
from hsm.pkcs8 import private_key_pem
from hsm.vault import TokenAuth, VaultConnection, VaultKeyStore
from support.vault_standin import VaultStandIn

PREFIX = "zhengyin/keys"


@pytest.fixture
def vault():
    with VaultStandIn() as server:
        yield server


def node(vault) -> VaultKeyStore:
    return VaultKeyStore(VaultConnection(vault.url, TokenAuth(vault.root_token)), unwrap_cache_seconds=0)


def hold_before_first_state_write(store: VaultKeyStore, barrier: threading.Barrier) -> None:
    original = store.connection.call
    held: list[bool] = []

    def call(what, request):
        if what.startswith("record the state") and not held:
            held.append(True)
            barrier.wait()
        return original(what, request)

    store.connection.call = call


def race(vault, *operations) -> list:
    """Run each (store, operation) in its own thread, all held before their first state write."""
    barrier = threading.Barrier(len(operations), timeout=20)
    results: list = [None] * len(operations)

    def run(i, store, operation):
        try:
            results[i] = operation(store)
        except Exception as exc:  # surfaced by the assertion below
            results[i] = exc

    threads = []
    for i, operation in enumerate(operations):
        store = node(vault)
        hold_before_first_state_write(store, barrier)
        threads.append(threading.Thread(target=run, args=(i, store, operation)))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not [r for r in results if isinstance(r, Exception)], results
    return results


def state_of(vault, label: str) -> dict[str, dict]:
    secret = vault.kv[f"{PREFIX}/{label}/state"]
    return secret.versions[secret.current_version].data["versions"]


def decryptable_scalars(vault) -> set[bytes]:
    """Every private scalar any stored ciphertext (data, state, old state versions) still opens to."""
    root = hvac.Client(url=vault.url, token=vault.root_token)
    out = set()
    for value in vault.stored_values():
        if value.startswith("vault:v"):
            answer = root.secrets.transit.decrypt_data(name="zhengyin", ciphertext=value)
            plaintext = answer["data"]["plaintext"]
            out.add(base64.b64decode(plaintext))
    return out


def test_a_disable_and_a_rewrap_at_once_both_survive(vault):
    setup = node(vault)
    setup.generate("k")
    setup.rotate("k")
    setup.rotate_transit_key()
    _, rewrap = race(vault, lambda s: s.disable("k", 2), lambda s: s.rewrap_all())
    assert sorted(rewrap.rewrapped) == [("k", 1, 1), ("k", 2, 1)]
    state = state_of(vault, "k")
    assert state["2"]["status"] == "disabled"  # the disable was not overwritten by the rewrap
    assert state["1"]["wrapped"].startswith("vault:v2:") and state["2"]["wrapped"].startswith("vault:v2:")
    assert [v.state for v in node(vault).versions("k")] == [KeyState.ACTIVE, KeyState.DISABLED]


def test_a_destroy_and_a_rewrap_at_once_leave_no_copy_of_the_destroyed_key(vault):
    setup = node(vault)
    doomed = SM2PrivateKey.generate()
    setup.import_key("k", private_key_pem(doomed))
    setup.rotate("k")
    setup.rotate_transit_key()
    race(vault, lambda s: s.destroy("k", 1), lambda s: s.rewrap_all())
    state = state_of(vault, "k")
    assert state["1"]["status"] == "destroyed" and "wrapped" not in state["1"]
    assert state["2"]["wrapped"].startswith("vault:v2:")
    assert vault.kv[f"{PREFIX}/k"].versions[1].destroyed
    assert doomed.private_scalar().to_bytes(32, "big") not in decryptable_scalars(vault)
    with pytest.raises(Exception, match="destroyed"):
        node(vault).sign("k", b"m", version=1)


def test_a_rotation_and_a_disable_at_once_both_survive(vault):
    setup = node(vault)
    setup.generate("k")
    setup.rotate("k")
    rotated, _ = race(vault, lambda s: s.rotate("k"), lambda s: s.disable("k", 1))
    assert rotated.version == 3
    state = state_of(vault, "k")
    assert state["1"]["status"] == "disabled" and state["3"]["status"] == "active"
    assert state["3"]["public_key"] == rotated.public_key.encoded_point().hex()


def test_four_officers_changing_four_versions_at_once(vault):
    setup = node(vault)
    setup.generate("k")
    for _ in range(3):
        setup.rotate("k")
    race(vault, *[lambda s, n=n: s.disable("k", n) for n in (1, 2, 3, 4)])
    assert [v.state for v in node(vault).versions("k")] == [KeyState.DISABLED] * 4


def test_two_rotations_at_once_one_wins_cleanly(vault):
    """The key secret's own check-and-set: one rotation wins, the other is told to retry."""
    setup = node(vault)
    setup.generate("k")
    barrier = threading.Barrier(2, timeout=20)
    outcomes: list = []

    def rotate():
        store = node(vault)
        original = store._wrap

        def wrap(label, key):
            ciphertext = original(label, key)
            barrier.wait()  # both have read current_version = 1
            return ciphertext

        store._wrap = wrap
        try:
            outcomes.append(store.rotate("k").version)
        except Exception as exc:
            outcomes.append(type(exc).__name__)

    threads = [threading.Thread(target=rotate) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(map(str, outcomes)) == ["2", "KeyStoreConflict"]
    assert sorted(state_of(vault, "k")) == ["1", "2"]
