"""Settings: precedence of environment over the config file over defaults."""

from __future__ import annotations

import pytest

from ledger.config import ConfigError, load_settings


def test_defaults_live_in_the_home(tmp_path):
    s = load_settings(tmp_path, environ={})
    assert s.home == tmp_path.resolve()
    assert s.env == "development" and not s.production
    assert s.database_url == f"sqlite:///{tmp_path.resolve() / 'zhengyin.db'}"
    assert s.keys_dir == tmp_path.resolve() / "keys"


def test_home_from_environment(tmp_path):
    assert load_settings(None, environ={"ZHENGYIN_HOME": str(tmp_path)}).home == tmp_path.resolve()


def test_file_then_environment(tmp_path):
    (tmp_path / "zhengyin.toml").write_text(
        '[zhengyin]\nenv = "production"\ndatabase_url = "sqlite:///file.db"\n'
        '[keys]\ndir = "vault-keys"\npassphrase_file = "pp"\n')
    s = load_settings(tmp_path, environ={})
    assert s.production and s.database_url == "sqlite:///file.db"
    assert s.keys_dir == tmp_path.resolve() / "vault-keys"
    assert s.key_passphrase_file == tmp_path.resolve() / "pp"
    s = load_settings(tmp_path, environ={"ZHENGYIN_DATABASE_URL": "postgresql://x/y"})
    assert s.production and s.database_url == "postgresql://x/y"
    with pytest.raises(ConfigError, match="cannot downgrade"):  # production is one-way
        load_settings(tmp_path, environ={"ZHENGYIN_ENV": "development"})


def test_unknown_environment_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match="ZHENGYIN_ENV"):
        load_settings(tmp_path, environ={"ZHENGYIN_ENV": "staging"})


def test_broken_config_file_is_an_error(tmp_path):
    (tmp_path / "zhengyin.toml").write_text("[zhengyin\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(tmp_path, environ={})


def test_passphrase_sources(tmp_path):
    (tmp_path / "pp").write_text("from-file\n")
    (tmp_path / "zhengyin.toml").write_text('[keys]\npassphrase_file = "pp"\n')
    assert load_settings(tmp_path, environ={}).key_passphrase() == b"from-file"
    env = {"ZHENGYIN_KEY_PASSPHRASE": "from-env"}
    assert load_settings(tmp_path, environ=env).key_passphrase() == b"from-env"
    (tmp_path / "pp").write_text("")
    with pytest.raises(ConfigError, match="empty"):
        load_settings(tmp_path, environ={}).key_passphrase()
    (tmp_path / "zhengyin.toml").write_text("")
    with pytest.raises(ConfigError, match="ZHENGYIN_KEY_PASSPHRASE"):
        load_settings(tmp_path, environ={}).key_passphrase()


def test_revocation_urls_from_file_then_environment(tmp_path):
    assert load_settings(tmp_path, environ={}).crl_base_url is None
    (tmp_path / "zhengyin.toml").write_text(
        '[ca]\ncrl_base_url = "http://crl.example/crl/"\nocsp_url = "http://ocsp.example/"\n')
    s = load_settings(tmp_path, environ={})
    assert (s.crl_base_url, s.ocsp_url) == ("http://crl.example/crl", "http://ocsp.example/")
    s = load_settings(tmp_path, environ={"ZHENGYIN_CRL_BASE_URL": "http://other"})
    assert s.crl_base_url == "http://other" and s.ocsp_url == "http://ocsp.example/"
