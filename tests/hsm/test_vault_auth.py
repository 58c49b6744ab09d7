"""Keeping a Vault login alive without burning AppRole secret IDs or leaving tokens behind
(review finding 5): lookup before re-login, renew before the lease ends, revoke what we replace."""

from __future__ import annotations

import pytest

from hsm.errors import KeyStorePermissionDenied
from hsm.vault import AppRoleAuth, TokenAuth, VaultConnection, VaultKeyStore
from support.vault_standin import VaultStandIn

SIGNER = {"secret/data/zhengyin/keys/*": ["read"], "secret/metadata/zhengyin/keys/*": ["read", "list"],
          "transit/decrypt/zhengyin": ["update"]}


class FakeClock:
    def __init__(self, now: float = 10_000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def vault():
    clock = FakeClock()
    with VaultStandIn(clock=clock) as server:
        server.test_clock = clock
        root = VaultKeyStore(VaultConnection(server.url, TokenAuth(server.root_token)))
        root.generate("k")
        yield server


def count(vault, path: str) -> int:
    return sum(1 for r in vault.requests if r.path == path)


def approle_store(vault, **role) -> VaultKeyStore:
    vault.add_policy("signer", SIGNER)
    role_id, secret_id = vault.add_approle("svc", ["signer"], **role)
    return VaultKeyStore(VaultConnection(vault.url, AppRoleAuth(role_id, secret_id), clock=vault.test_clock),
                         unwrap_cache_seconds=0)


def test_policy_denials_do_not_log_in_again(vault):
    store = approle_store(vault)
    store.sign("k", b"m")
    tokens = vault.live_tokens()
    for _ in range(5):
        with pytest.raises(KeyStorePermissionDenied, match="denied permission"):
            store.rotate("k")
    assert count(vault, "/v1/auth/approle/login") == 1
    assert vault.live_tokens() == tokens
    store.sign("k", b"m")


def test_a_revoked_token_leads_to_one_new_login(vault):
    store = approle_store(vault)
    store.sign("k", b"m")
    vault.tokens.pop(store.connection.client.token)  # revoked behind our back
    store.sign("k", b"m")
    assert count(vault, "/v1/auth/approle/login") == 2


def test_the_approle_token_is_renewed_then_replaced_at_its_max_ttl_and_the_old_one_revoked(vault):
    store = approle_store(vault, token_ttl=600, token_max_ttl=1500)
    store.sign("k", b"m")
    first = store.connection.client.token
    vault.test_clock.now += 550  # inside the last tenth of the lease: renew, no new login
    store.sign("k", b"m")
    assert count(vault, "/v1/auth/token/renew-self") == 1 and count(vault, "/v1/auth/approle/login") == 1
    assert store.connection.client.token == first
    vault.test_clock.now += 550
    store.sign("k", b"m")  # renewed again, now only up to the max TTL (1500 s after login)
    assert count(vault, "/v1/auth/token/renew-self") == 2
    vault.test_clock.now += 360  # 40 s left, and a renewal cannot extend it: log in, revoke the old
    store.sign("k", b"m")
    assert count(vault, "/v1/auth/approle/login") == 2
    assert store.connection.client.token != first and first not in vault.tokens
    assert vault.live_tokens() == 2  # root + the current one


def test_an_operator_token_is_renewed_while_renewable(vault):
    token = vault.create_token(["root"], ttl=300)
    store = VaultKeyStore(VaultConnection(vault.url, TokenAuth(token), clock=vault.test_clock))
    store.versions("k")
    vault.test_clock.now += 280
    store.versions("k")
    assert count(vault, "/v1/auth/token/renew-self") == 1
    vault.test_clock.now += 100  # past the first lease: still valid thanks to the renewal
    store.versions("k")


def test_a_root_token_needs_no_upkeep(vault):
    store = VaultKeyStore(VaultConnection(vault.url, TokenAuth(vault.root_token), clock=vault.test_clock))
    store.versions("k")
    vault.test_clock.now += 10 ** 6
    store.versions("k")
    assert count(vault, "/v1/auth/token/renew-self") == 0


def test_close_revokes_the_approle_token(vault):
    store = approle_store(vault)
    store.sign("k", b"m")
    token = store.connection.client.token
    store.close()
    assert token not in vault.tokens
