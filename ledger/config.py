"""Configuration: the home directory, the environment, and where secrets come from.

Precedence: environment variables, then ``$ZHENGYIN_HOME/zhengyin.toml``, then defaults.
``ZHENGYIN_ENV=production`` switches on production rules (no development trust material,
no passphrase files written by ``zhengyin init``).
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

CONFIG_FILE = "zhengyin.toml"
ENVIRONMENTS = ("development", "production")


class ConfigError(Exception):
    """Configuration is missing or contradictory; the message says which setting to fix."""


DEFAULT_PUBLIC_URL = "http://localhost:8081/"  # development: the public service on this machine


@dataclass(frozen=True)
class Settings:
    home: Path
    env: str
    database_url: str
    keys_dir: Path
    key_passphrase_file: Path | None
    key_passphrase_env: str | None
    crl_base_url: str | None = None  # CRLs are published as <base>/root.crl and <base>/issuing.crl
    ocsp_url: str | None = None
    #: The public verification service's base URL, printed into every licence's QR code.
    public_url: str = DEFAULT_PUBLIC_URL

    @property
    def production(self) -> bool:
        return self.env == "production"

    @property
    def config_path(self) -> Path:
        return self.home / CONFIG_FILE

    def key_passphrase(self) -> bytes:
        """The passphrase that encrypts private keys at rest.

        From ``ZHENGYIN_KEY_PASSPHRASE`` if set, else from the configured passphrase file.
        """
        if self.key_passphrase_env:
            return self.key_passphrase_env.encode()
        if self.key_passphrase_file is None:
            raise ConfigError(
                "no key passphrase: set ZHENGYIN_KEY_PASSPHRASE or keys.passphrase_file in "
                f"{self.config_path}")
        try:
            value = self.key_passphrase_file.read_bytes().strip()
        except OSError as exc:
            raise ConfigError(f"cannot read the key passphrase file {self.key_passphrase_file}: "
                              f"{exc.strerror}") from exc
        if not value:
            raise ConfigError(f"the key passphrase file {self.key_passphrase_file} is empty")
        return value


def _file_config(home: Path) -> dict:
    path = home / CONFIG_FILE
    if not path.exists():
        return {}
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from exc


def load_settings(home: str | Path | None = None,
                  environ: Mapping[str, str] | None = None) -> Settings:
    """Read the settings for ``home`` (default ``$ZHENGYIN_HOME`` or ``./.zhengyin``)."""
    env = os.environ if environ is None else environ
    home_path = Path(home or env.get("ZHENGYIN_HOME") or ".zhengyin").expanduser().resolve()
    cfg = _file_config(home_path)
    section = cfg.get("zhengyin", {})
    keys = cfg.get("keys", {})
    ca = cfg.get("ca", {})

    environment = (env.get("ZHENGYIN_ENV") or section.get("env") or "development").strip().lower()
    if environment not in ENVIRONMENTS:
        raise ConfigError(f"ZHENGYIN_ENV must be one of {', '.join(ENVIRONMENTS)}, not {environment!r}")

    database_url = (env.get("ZHENGYIN_DATABASE_URL") or section.get("database_url")
                    or f"sqlite:///{home_path / 'zhengyin.db'}")
    keys_dir = Path(keys.get("dir") or home_path / "keys")
    if not keys_dir.is_absolute():
        keys_dir = home_path / keys_dir
    pass_file = env.get("ZHENGYIN_KEY_PASSPHRASE_FILE") or keys.get("passphrase_file")
    pass_path = None
    if pass_file:
        pass_path = Path(pass_file)
        if not pass_path.is_absolute():
            pass_path = home_path / pass_path
    return Settings(
        home=home_path,
        env=environment,
        database_url=database_url,
        keys_dir=keys_dir,
        key_passphrase_file=pass_path,
        key_passphrase_env=env.get("ZHENGYIN_KEY_PASSPHRASE") or None,
        crl_base_url=(env.get("ZHENGYIN_CRL_BASE_URL") or ca.get("crl_base_url") or "").rstrip("/") or None,
        ocsp_url=env.get("ZHENGYIN_OCSP_URL") or ca.get("ocsp_url") or None,
        public_url=env.get("ZHENGYIN_PUBLIC_URL") or cfg.get("public", {}).get("url") or DEFAULT_PUBLIC_URL,
    )
