"""The public service cannot sign: nothing reachable from the app's objects yields the key
passphrase or a working key store, serve-verify drops key secrets from its environment before
uvicorn starts, and production refuses to start where key material is readable."""

from __future__ import annotations

import shutil

import pytest
from fastapi.testclient import TestClient

from ledger.config import ConfigError, load_settings
from support.cli import run_cli
from trust.domain import TrustDomain
from verify_api.app import create_app
from verify_api.records import (
    NO_KEYS_DIR,
    KeyMaterialReachable,
    KeyOperationRefused,
    PublicRecords,
    drop_key_secrets,
)
from verify_api.settings import VerifySettings

SECRET = "the-passphrase-of-the-internal-side"


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    path = tmp_path_factory.mktemp("verify-keys-home")
    code, _, err = run_cli(path, "init")
    assert code == 0, err
    return path


def test_the_app_objects_cannot_reach_the_passphrase_or_a_key(home, monkeypatch):
    monkeypatch.setenv("ZHENGYIN_KEY_PASSPHRASE", SECRET)
    internal = load_settings(home)
    assert internal.key_passphrase() == SECRET.encode()  # what the internal side would get here
    app = create_app(home, VerifySettings())
    records = app.state.records
    settings = records.domain.settings
    assert settings.key_passphrase_env is None and settings.key_passphrase_file is None
    assert settings.vault is None and settings.keys_dir == NO_KEYS_DIR
    with pytest.raises(ConfigError):
        settings.key_passphrase()
    assert SECRET not in repr(settings) and SECRET not in repr(vars(records))
    with pytest.raises(KeyOperationRefused):
        records.domain.keys.signer("trust-list-signer")
    fresh = TrustDomain(settings, "attacker")  # a new domain made from the app's own settings
    with pytest.raises(ConfigError):
        fresh.keys.signer("dev-dept-signer")
    assert TestClient(app).get("/healthz").status_code == 200  # and the app works without any of it


def test_drop_key_secrets_removes_every_secret_variable_and_only_those():
    environ = {"ZHENGYIN_KEY_PASSPHRASE": "a", "ZHENGYIN_KEY_PASSPHRASE_FILE": "/k", "ZHENGYIN_VAULT_TOKEN": "t",
               "ZHENGYIN_VAULT_SECRET_ID": "s", "VAULT_TOKEN": "v", "VAULT_ADDR": "https://vault",
               "ZHENGYIN_HOME": "/h", "ZHENGYIN_DATABASE_URL": "sqlite://", "PATH": "/bin",
               "ZHENGYIN_KEY_BACKEND": "vault", "ZHENGYIN_VERIFY_RATE": "5"}
    removed = drop_key_secrets(environ)
    assert removed == sorted(["ZHENGYIN_KEY_PASSPHRASE", "ZHENGYIN_KEY_PASSPHRASE_FILE", "ZHENGYIN_VAULT_TOKEN",
                              "ZHENGYIN_VAULT_SECRET_ID", "VAULT_TOKEN", "VAULT_ADDR"])
    assert environ == {"ZHENGYIN_HOME": "/h", "ZHENGYIN_DATABASE_URL": "sqlite://", "PATH": "/bin",
                       "ZHENGYIN_KEY_BACKEND": "vault", "ZHENGYIN_VERIFY_RATE": "5"}


def test_production_refuses_to_serve_where_key_material_is_readable(home, tmp_path):
    production = {"ZHENGYIN_ENV": "production"}
    with pytest.raises(KeyMaterialReachable, match="key directory") as info:
        PublicRecords(load_settings(home, production))
    assert "DEPLOYMENT.md" in str(info.value) and "passphrase file" in str(info.value)
    with pytest.raises(KeyMaterialReachable, match=r"\$ZHENGYIN_KEY_PASSPHRASE"):
        PublicRecords(load_settings(home, {**production, "ZHENGYIN_KEY_PASSPHRASE": SECRET}))
    # The public side's own copy of the home: the configuration and the database, no keys, no secrets.
    public_home = tmp_path / "public-home"
    public_home.mkdir()
    shutil.copy(home / "zhengyin.toml", public_home / "zhengyin.toml")
    shutil.copy(home / "zhengyin.db", public_home / "zhengyin.db")
    records = PublicRecords(load_settings(public_home, production))
    try:
        assert records.signer_certificates()  # it reads the register as usual
    finally:
        records.close()


def test_serve_verify_drops_secrets_and_checks_proxies_before_uvicorn_starts(home, monkeypatch):
    import uvicorn

    started: list[dict] = []
    monkeypatch.setattr(uvicorn, "run", lambda *args, **kwargs: started.append(kwargs))
    monkeypatch.setenv("ZHENGYIN_KEY_PASSPHRASE", SECRET)
    monkeypatch.setenv("VAULT_TOKEN", "hvs.token")
    code, out, err = run_cli(home, "serve-verify", "--forwarded-allow-ips", "10.0.0.0/8, 127.0.0.1")
    assert code == 0, err
    (options,) = started
    assert options["forwarded_allow_ips"] == "10.0.0.0/8,127.0.0.1" and options["proxy_headers"]
    import os

    assert "ZHENGYIN_KEY_PASSPHRASE" not in os.environ and "VAULT_TOKEN" not in os.environ
    assert "ZHENGYIN_KEY_PASSPHRASE" in err and SECRET not in err + out
    assert run_cli(home, "serve-verify")[0] == 0 and started[-1]["forwarded_allow_ips"] == "127.0.0.1,::1"

    code, _, err = run_cli(home, "serve-verify", "--forwarded-allow-ips", "*")
    assert code == 0 and "warning" in err and started[-1]["forwarded_allow_ips"] == "*"  # development
    count = len(started)
    monkeypatch.setenv("ZHENGYIN_ENV", "production")
    code, _, err = run_cli(home, "serve-verify", "--forwarded-allow-ips", "*")
    assert code == 3 and len(started) == count  # refused before uvicorn: production never trusts '*'
    code, _, err = run_cli(home, "serve-verify")
    assert code == 3 and "key directory" in err and len(started) == count  # the keys are readable here
    monkeypatch.delenv("ZHENGYIN_ENV")
    code, _, err = run_cli(home, "serve-verify", "--forwarded-allow-ips", "proxy.example")
    assert code == 3 and "not an IP address" in err and len(started) == count
