"""The Vault stand-in behaves as Vault where the key store depends on it (review finding 8):
ACL path matching, custom_metadata validation, what the default policy allows."""

from __future__ import annotations

import hvac
import pytest

from support.vault_standin import VaultStandIn


@pytest.fixture
def vault():
    with VaultStandIn() as server:
        root = hvac.Client(url=server.url, token=server.root_token)
        root.secrets.kv.v2.create_or_update_secret(path="app/one", secret={"a": "1"})
        root.secrets.kv.v2.create_or_update_secret(path="app/deep/two", secret={"a": "2"})
        yield server


def client(vault, rules: dict[str, list[str]]) -> hvac.Client:
    vault.add_policy("p", rules)
    return hvac.Client(url=vault.url, token=vault.create_token(["p"]))


def allowed(call) -> bool:
    try:
        call()
    except hvac.exceptions.Forbidden:
        return False
    return True


def test_list_is_checked_with_a_trailing_slash(vault):
    exact = client(vault, {"secret/metadata/app": ["list"]})
    assert not allowed(lambda: exact.secrets.kv.v2.list_secrets(path="app"))
    slash = client(vault, {"secret/metadata/app/": ["list"]})
    assert slash.secrets.kv.v2.list_secrets(path="app")["data"]["keys"] == ["deep/", "one"]


def test_a_glob_only_at_the_end(vault):
    with pytest.raises(ValueError, match="only at the end"):
        vault.add_policy("bad", {"secret/*/app": ["read"]})
    prefix = client(vault, {"secret/data/ap*": ["read"]})
    assert allowed(lambda: prefix.secrets.kv.v2.read_secret_version(path="app/deep/two", raise_on_deleted_version=True))


def test_plus_matches_exactly_one_segment(vault):
    one = client(vault, {"secret/data/+/one": ["read"]})
    assert allowed(lambda: one.secrets.kv.v2.read_secret_version(path="app/one", raise_on_deleted_version=True))
    two = client(vault, {"secret/data/+/two": ["read"]})
    assert not allowed(lambda: two.secrets.kv.v2.read_secret_version(path="app/deep/two", raise_on_deleted_version=True))


def test_the_most_specific_rule_wins(vault):
    c = client(vault, {"secret/data/*": ["read"], "secret/data/app/deep/*": ["deny"],
                       "secret/data/app/one": ["deny"]})
    assert not allowed(lambda: c.secrets.kv.v2.read_secret_version(path="app/one", raise_on_deleted_version=True))  # exact beats glob
    assert not allowed(lambda: c.secrets.kv.v2.read_secret_version(path="app/deep/two", raise_on_deleted_version=True))  # longer glob
    narrow = client(vault, {"secret/data/*": ["read"], "secret/data/app/*": ["list"]})
    assert not allowed(lambda: narrow.secrets.kv.v2.read_secret_version(path="app/one", raise_on_deleted_version=True))  # not a union


@pytest.mark.parametrize(("custom", "problem"), [
    ({"k": ""}, 'length of value for key "k" is 0'),
    ({"k": "a\x00b"}, 'value for key "k" contains unprintable characters'),
    ({"": "v"}, 'length of key "" is 0'),
    ({f"k{i}": "v" for i in range(65)}, "payload must contain at most 64 keys, provided 65"),
    ({"k": "x" * 513}, 'length of value for key "k" is 513'),
])
def test_custom_metadata_is_validated_as_vault_does(vault, custom, problem):
    root = hvac.Client(url=vault.url, token=vault.root_token)
    with pytest.raises(hvac.exceptions.InvalidRequest) as caught:
        root.secrets.kv.v2.update_metadata(path="app/one", custom_metadata=custom)
    assert f"custom_metadata validation failed: {problem}" in str(caught.value)


def test_the_default_policy_lets_a_token_look_up_renew_and_revoke_itself(vault):
    token = vault.create_token([], ttl=60)
    c = hvac.Client(url=vault.url, token=token)
    assert 50 <= c.auth.token.lookup_self()["data"]["ttl"] <= 60
    assert c.auth.token.renew_self()["auth"]["lease_duration"] == 60
    assert not allowed(lambda: c.secrets.kv.v2.read_secret_version(path="app/one", raise_on_deleted_version=True))
    c.auth.token.revoke_self()
    assert token not in vault.tokens
