"""Choosing the vault backend in configuration, the composition root, and `zhengyin keys` on it."""

from __future__ import annotations

import json

import hvac
import pytest

from hsm.vault import AppRoleAuth, TokenAuth, VaultKeyStore
from ledger.config import ConfigError, load_settings
from support.cli import run_cli
from support.vault_standin import VaultStandIn
from trust.domain import TrustDomain


def write_config(home, text: str) -> None:
    home.mkdir(parents=True, exist_ok=True)
    (home / "zhengyin.toml").write_text(text, encoding="utf-8")


def test_soft_is_the_default(tmp_path):
    settings = load_settings(tmp_path, environ={})
    assert settings.key_backend == "soft" and settings.vault is None


def test_vault_settings_from_file_and_environment(tmp_path):
    (tmp_path / "approle.secret").write_text("s3cr3t-id\n")
    (tmp_path / "vault-ca.pem").write_text("-----BEGIN CERTIFICATE-----\n")
    write_config(tmp_path, """
[keys]
backend = "vault"
[keys.vault]
address = "https://vault.gov.example:8200"
role_id = "role-123"
secret_id_file = "approle.secret"
kv_mount = "kv"
transit_key = "zhengyin-seals"
ca_bundle = "vault-ca.pem"
unwrap_cache_seconds = 5
""")
    settings = load_settings(tmp_path, environ={"ZHENGYIN_VAULT_NAMESPACE": "gov/licences"})
    vault = settings.vault
    assert settings.key_backend == "vault" and vault.auth_method == "approle"
    assert (vault.address, vault.kv_mount, vault.transit_mount, vault.transit_key) == (
        "https://vault.gov.example:8200", "kv", "transit", "zhengyin-seals")
    assert vault.namespace == "gov/licences" and vault.ca_bundle == tmp_path / "vault-ca.pem"
    assert vault.unwrap_cache_seconds == 5 and vault.secret_id() == "s3cr3t-id"
    assert "s3cr3t" not in repr(settings)


def test_token_from_the_environment_never_shown(tmp_path):
    settings = load_settings(tmp_path, environ={"ZHENGYIN_KEY_BACKEND": "vault",
                                                "VAULT_ADDR": "http://127.0.0.1:8200",
                                                "VAULT_TOKEN": "hvs.very-secret"})
    assert settings.vault.auth_method == "token" and settings.vault.token() == "hvs.very-secret"
    assert settings.vault.unwrap_cache_seconds == 60
    assert "very-secret" not in repr(settings)


@pytest.mark.parametrize(("text", "env", "message"), [
    ('[keys]\nbackend = "vault"\n[keys.vault]\naddress = "https://v:8200"\ntoken = "hvs.x"\n', {},
     "keys.vault.token must not be written"),
    ('[keys]\nbackend = "vault"\n[keys.vault]\naddress = "https://v:8200"\nrole_id = "r"\nsecret_id = "s"\n',
     {}, "keys.vault.secret_id must not be written"),
    ('[keys]\nbackend = "hsm"\n', {}, "must be one of soft, vault"),
    ('[keys]\nbackend = "vault"\n', {}, "needs Vault's address"),
    ('[keys]\nbackend = "vault"\n[keys.vault]\naddress = "vault:8200"\n', {}, "must start with https://"),
    ('[keys]\nbackend = "vault"\n[keys.vault]\naddress = "https://v"\nunwrap_cache_seconds = -1\n', {},
     "whole number of seconds"),
    ('[keys]\nbackend = "vault"\n[keys.vault]\naddress = "https://v"\nkv_mount = "../x"\n', {}, "kv_mount"),
])
def test_bad_vault_settings_are_refused(tmp_path, text, env, message):
    write_config(tmp_path, text)
    with pytest.raises(ConfigError, match=message):
        load_settings(tmp_path, environ=env)


@pytest.mark.parametrize(("text", "env", "message"), [
    ('[keys]\nbackend = "vault"\n[keys.vault]\naddress = "http://vault.gov.example:8200"\n',
     {"ZHENGYIN_ENV": "production"}, "in production the Vault address must use https"),
    ('[keys]\nbackend = "vault"\n[keys.vault]\naddress = "https://v"\nrole_id = "r"\nsecret-id = "S3CRET"\n',
     {}, "unknown setting.*secret-id"),
    ('[keys]\nbackend = "vault"\n[keys.vault]\naddress = "https://v"\nca_bundle = "missing.pem"\n', {},
     "CA bundle .*missing.pem.* does not exist"),
])
def test_review_rules_for_vault_settings(tmp_path, text, env, message):
    write_config(tmp_path, text)
    with pytest.raises(ConfigError, match=message) as caught:
        load_settings(tmp_path, environ=env)
    assert "S3CRET" not in str(caught.value)


def test_an_address_with_credentials_is_refused_without_repeating_them(tmp_path):
    write_config(tmp_path, '[keys]\nbackend = "vault"\n')
    with pytest.raises(ConfigError, match="must not carry a user name or password") as caught:
        load_settings(tmp_path, environ={"VAULT_ADDR": "https://svc:hvs.LEAKED@vault:8200", "VAULT_TOKEN": "t"})
    assert "LEAKED" not in str(caught.value)


def test_production_accepts_https_and_secrets_stay_out_of_asdict(tmp_path):
    import dataclasses

    settings = load_settings(tmp_path, environ={"ZHENGYIN_ENV": "production", "ZHENGYIN_KEY_BACKEND": "vault",
                                                "VAULT_ADDR": "https://vault:8200", "VAULT_TOKEN": "hvs.hidden"})
    assert settings.vault.token() == "hvs.hidden"
    assert "hvs.hidden" not in str(dataclasses.asdict(settings)) + repr(settings)


def test_missing_credentials_name_what_to_set(tmp_path):
    settings = load_settings(tmp_path, environ={"ZHENGYIN_KEY_BACKEND": "vault", "VAULT_ADDR": "https://v"})
    with pytest.raises(ConfigError, match="ZHENGYIN_VAULT_TOKEN"):
        settings.vault.token()


@pytest.fixture
def vault():
    with VaultStandIn() as server:
        yield server


@pytest.fixture
def vault_env(vault, monkeypatch, tmp_path):
    env = {"ZHENGYIN_KEY_BACKEND": "vault", "ZHENGYIN_VAULT_ADDR": vault.url,
           "ZHENGYIN_VAULT_TOKEN": vault.root_token, "ZHENGYIN_VAULT_UNWRAP_CACHE_SECONDS": "0"}
    for name in ("VAULT_ADDR", "VAULT_TOKEN", "VAULT_NAMESPACE", "VAULT_CACERT", "ZHENGYIN_HOME"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    domain = TrustDomain.open(str(tmp_path / "home"), actor="test:officer")
    domain.db.migrate()
    domain.close()
    return env


def test_domain_picks_the_vault_backend_and_audits_its_events(vault, vault_env, tmp_path):
    domain = TrustDomain.open(str(tmp_path / "home"), actor="test:officer")
    try:
        keys = domain.keys
        assert isinstance(keys, VaultKeyStore) and isinstance(keys.connection.auth, TokenAuth)
        keys.generate("dept-signer")
        keys.sign("dept-signer", b"m")
        entries = domain.audit.entries()
        assert sorted((e.action, e.subject) for e in entries) == [("key.generate", "key:dept-signer/v1"),
                                                                  ("key.unwrap", "key:dept-signer/v1")]
        assert domain.audit.verify().ok
    finally:
        domain.close()
    assert vault.kv["zhengyin/keys/dept-signer"].versions[1].data["created_by"] == "test:officer"


def test_domain_logs_in_with_approle(vault, vault_env, monkeypatch, tmp_path):
    role_id, secret_id = vault.add_approle("zhengyin", ["root"])
    monkeypatch.delenv("ZHENGYIN_VAULT_TOKEN")
    monkeypatch.setenv("ZHENGYIN_VAULT_ROLE_ID", role_id)
    monkeypatch.setenv("ZHENGYIN_VAULT_SECRET_ID", secret_id)
    domain = TrustDomain.open(str(tmp_path / "home"))
    try:
        assert isinstance(domain.keys.connection.auth, AppRoleAuth)
        domain.keys.generate("k")
    finally:
        domain.close()


def test_cli_keys_on_vault_with_rewrap(vault, vault_env, tmp_path):
    home = tmp_path / "home"
    code, out, err = run_cli(home, "keys", "generate", "seal-key", "--json")
    assert code == 0, err
    assert json.loads(out)["version"] == 1
    code, out, err = run_cli(home, "keys", "rewrap", "--rotate-transit", "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["transit_version"] == 2
    assert report["rewrapped"] == [{"label": "seal-key", "version": 1, "from_transit_version": 1}]
    code, out, err = run_cli(home, "keys", "list", "--json")
    assert code == 0 and [k["label"] for k in json.loads(out)] == ["seal-key"]
    assert vault.root_token not in out + err


def test_cli_reports_a_sealed_vault_cleanly(vault, vault_env, tmp_path):
    vault.sealed = True
    code, out, err = run_cli(tmp_path / "home", "keys", "generate", "seal-key")
    assert code == 3 and "sealed" in err and vault.root_token not in out + err


def test_cli_rewrap_that_cannot_finish_exits_1_and_says_why(vault, vault_env, tmp_path):
    home = tmp_path / "home"
    assert run_cli(home, "keys", "generate", "old-key")[0] == 0
    assert run_cli(home, "keys", "rewrap", "--rotate-transit", "--json")[0] == 0
    root = hvac.Client(url=vault.url, token=vault.root_token)
    assert run_cli(home, "keys", "rewrap", "--rotate-transit", "--json")[0] == 0  # now under v3
    root.secrets.transit.update_key_configuration(name="zhengyin", min_decryption_version=2)
    # The state's rewrapped copy is dropped, as if it had never been written: only the KV data's
    # v1 wrap is left, which Transit now refuses as too old.
    state = vault.kv["zhengyin/keys/old-key/state"]
    state.versions[state.current_version].data["versions"]["1"].pop("wrapped")
    code, out, _ = run_cli(home, "keys", "rewrap", "--json")
    report = json.loads(out)
    assert code == 1 and report["complete"] is False
    assert "too old" in report["skipped"][0]["reason"]


def test_cli_permission_denied_is_a_credentials_error(vault, vault_env, tmp_path, monkeypatch):
    vault.add_policy("reader", {"secret/metadata/zhengyin/keys/*": ["read", "list"]})
    monkeypatch.setenv("ZHENGYIN_VAULT_TOKEN", vault.create_token(["reader"]))
    code, _, err = run_cli(tmp_path / "home", "keys", "generate", "k")
    assert code == 7 and "denied permission" in err


def test_rewrap_on_the_soft_backend_is_a_usage_error(tmp_path, monkeypatch):
    monkeypatch.setenv("ZHENGYIN_KEY_PASSPHRASE", "pass")
    monkeypatch.delenv("ZHENGYIN_KEY_BACKEND", raising=False)
    code, _, err = run_cli(tmp_path / "home", "keys", "rewrap")
    assert code == 2 and "vault key backend" in err


def test_init_builds_the_development_domain_on_vault(vault, vault_env, tmp_path):
    home = tmp_path / "home"
    code, out, err = run_cli(home, "init", "--json")
    assert code == 0, err
    code, out, _ = run_cli(home, "keys", "list", "--json")
    labels = {k["label"] for k in json.loads(out)}
    assert labels and {f"zhengyin/keys/{label}{leaf}" for label in labels for leaf in ("", "/state")} == set(
        vault.kv)
    assert not (home / "keys").exists()  # nothing went to the soft store
