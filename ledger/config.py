"""Configuration: the home directory, the environment, and where secrets come from.

Precedence: environment variables, then ``$ZHENGYIN_HOME/zhengyin.toml``, then defaults.
``ZHENGYIN_ENV=production`` switches on production rules (no development trust material,
no passphrase files written by ``zhengyin init``, dual control always on, officers only
from ``[officers]``). Production is one-way: a home whose file says production stays
production whatever the environment says — otherwise one exported variable would switch off
every production rule, dual control included.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

CONFIG_FILE = "zhengyin.toml"
ENVIRONMENTS = ("development", "production")
KEY_BACKENDS = ("soft", "vault")


class ConfigError(Exception):
    """Configuration is missing or contradictory; the message says which setting to fix."""


DEFAULT_PUBLIC_URL = "http://localhost:8081/"  # development: the public service on this machine
DEFAULT_UNWRAP_CACHE_SECONDS = 60
#: Every setting [keys.vault] may hold; anything else (a misspelt name, a secret under another
#: spelling) is refused rather than silently ignored.
VAULT_SETTING_NAMES = ("address", "namespace", "ca_bundle", "unwrap_cache_seconds", "role_id", "token_file",
                       "secret_id_file", "kv_mount", "transit_mount", "transit_key", "key_prefix",
                       "approle_mount")


#: Key age limits (``[rotation]``): a seal's signer key for a year, a CA key for five.
DEFAULT_SEAL_MAX_AGE_DAYS = 365
DEFAULT_CA_MAX_AGE_DAYS = 5 * 365
ROTATION_SETTING_NAMES = ("seal_max_age_days", "ca_max_age_days", "seals", "ca")
ROTATION_CAS = ("root", "issuing")
MAX_AGE_LIMIT_DAYS = 100 * 365


@dataclass(frozen=True)
class RotationPolicy:
    """How old a key may get before it must be rotated (``zhengyin keys due``).

    ``[rotation]`` in ``zhengyin.toml``: ``seal_max_age_days`` and ``ca_max_age_days`` for all
    seals and both CAs, ``[rotation.seals]`` with ``"<esID>" = days`` for one seal, and
    ``[rotation.ca]`` with ``root``/``issuing`` = days for one CA. The age is that of the key
    version in use (a rotation starts it again), not of a certificate: a renewed certificate
    for the same key does not make the key younger.
    """

    seal_max_age_days: int = DEFAULT_SEAL_MAX_AGE_DAYS
    ca_max_age_days: int = DEFAULT_CA_MAX_AGE_DAYS
    seal_overrides: tuple[tuple[str, int], ...] = ()  # (esID, days), hashable like the rest
    ca_overrides: tuple[tuple[str, int], ...] = ()    # ("root" | "issuing", days)

    def seal_limit(self, es_id: str) -> int:
        return dict(self.seal_overrides).get(es_id, self.seal_max_age_days)

    def ca_limit(self, which: str) -> int:
        return dict(self.ca_overrides).get(which, self.ca_max_age_days)


class SecretText:
    """A secret read from the environment: shown nowhere (repr, dataclasses.asdict, logs)."""

    __slots__ = ("_value",)

    def __init__(self, value: str):
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "SecretText('***')"

    __str__ = __repr__


def _read_secret_file(path: Path, what: str) -> str:
    try:
        value = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or "not UTF-8 text"
        raise ConfigError(f"cannot read the {what} file {path}: {reason}") from exc
    if not value:
        raise ConfigError(f"the {what} file {path} is empty")
    return value


@dataclass(frozen=True)
class VaultSettings:
    """Where the ``vault`` key backend finds HashiCorp Vault and how it logs in.

    Secrets (the token, the AppRole secret ID) come only from the environment or from files
    the configuration names, never from ``zhengyin.toml`` itself: the configuration file is
    often world-readable, copied into tickets and committed to repositories. They are read
    when asked for (:meth:`token`, :meth:`secret_id`) and kept out of ``repr``.
    """

    address: str
    kv_mount: str = "secret"
    transit_mount: str = "transit"
    transit_key: str = "zhengyin"
    key_prefix: str = "zhengyin/keys"
    namespace: str | None = None
    ca_bundle: Path | None = None
    #: How long a key decrypted for signing stays in memory; 0 = decrypt for every signature.
    unwrap_cache_seconds: int = DEFAULT_UNWRAP_CACHE_SECONDS
    timeout_seconds: float = 10.0
    approle_mount: str = "approle"
    role_id: str | None = None
    token_file: Path | None = None
    secret_id_file: Path | None = None
    _token_env: SecretText | None = field(default=None, repr=False)
    _secret_id_env: SecretText | None = field(default=None, repr=False)

    @property
    def auth_method(self) -> str:
        """``approle`` when a role ID is configured, else ``token``."""
        return "approle" if self.role_id else "token"

    def token(self) -> str:
        if self._token_env:
            return self._token_env.reveal()
        if self.token_file is not None:
            return _read_secret_file(self.token_file, "Vault token")
        raise ConfigError("no Vault credentials: set ZHENGYIN_VAULT_TOKEN (or VAULT_TOKEN), "
                          "ZHENGYIN_VAULT_TOKEN_FILE, or an AppRole with ZHENGYIN_VAULT_ROLE_ID and "
                          "ZHENGYIN_VAULT_SECRET_ID(_FILE)")

    def secret_id(self) -> str:
        if self._secret_id_env:
            return self._secret_id_env.reveal()
        if self.secret_id_file is not None:
            return _read_secret_file(self.secret_id_file, "Vault AppRole secret ID")
        raise ConfigError("AppRole login needs a secret ID: set ZHENGYIN_VAULT_SECRET_ID or "
                          "ZHENGYIN_VAULT_SECRET_ID_FILE (or keys.vault.secret_id_file)")


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
    #: Which key store holds the private keys: ``soft`` (encrypted files) or ``vault``.
    key_backend: str = "soft"
    vault: VaultSettings | None = None
    #: Maximum key ages of seals and CAs (``[rotation]``).
    rotation: RotationPolicy = field(default_factory=RotationPolicy)
    #: The OS accounts of the security officers (``[officers] names``): in production only
    #: they may request and approve the acts under dual control (trust/approvals.py).
    officers: tuple[str, ...] = ()

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

    environment = _environment(home_path, section, env)

    database_url = (env.get("ZHENGYIN_DATABASE_URL") or section.get("database_url")
                    or f"sqlite:///{home_path / 'zhengyin.db'}")
    keys_dir = Path(keys.get("dir") or home_path / "keys")
    if not keys_dir.is_absolute():
        keys_dir = home_path / keys_dir
    backend = (env.get("ZHENGYIN_KEY_BACKEND") or keys.get("backend") or "soft").strip().lower()
    if backend not in KEY_BACKENDS:
        raise ConfigError(f"ZHENGYIN_KEY_BACKEND (keys.backend) must be one of {', '.join(KEY_BACKENDS)}, "
                          f"not {backend!r}")
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
        key_backend=backend,
        vault=(_vault_settings(home_path, keys.get("vault", {}), env, production=environment == "production")
               if backend == "vault" else None),
        rotation=_rotation_policy(home_path, cfg.get("rotation", {}), env),
        officers=_officers(home_path, cfg.get("officers", {}), env, production=environment == "production"),
    )


def _environment(home: Path, section: Mapping, env: Mapping[str, str]) -> str:
    """``ZHENGYIN_ENV`` over ``zhengyin.env``, except that it cannot downgrade a production home."""
    from_file = str(section.get("env") or "").strip().lower() or None
    if from_file is not None and from_file not in ENVIRONMENTS:
        raise ConfigError(f"zhengyin.env in {home / CONFIG_FILE} must be one of {', '.join(ENVIRONMENTS)}, "
                          f"not {from_file!r}")
    from_env = (env.get("ZHENGYIN_ENV") or "").strip().lower() or None
    if from_env is not None and from_env not in ENVIRONMENTS:
        raise ConfigError(f"ZHENGYIN_ENV must be one of {', '.join(ENVIRONMENTS)}, not {from_env!r}")
    if from_file == "production" and from_env not in (None, "production"):
        raise ConfigError(f"{home / CONFIG_FILE} says env = \"production\": ZHENGYIN_ENV={from_env} cannot "
                          "downgrade it (unset ZHENGYIN_ENV; a production home stays production)")
    return from_env or from_file or "development"


#: An OS account name as officers are listed: what ``useradd`` accepts, nothing that could be
#: mistaken for another actor (no ``:``, no spaces).
_ACCOUNT_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")


def _officers(home: Path, section: object, env: Mapping[str, str], *, production: bool) -> tuple[str, ...]:
    """``[officers] names`` (a list of OS account names); ``ZHENGYIN_OFFICERS`` (comma-separated)
    replaces it in development and may only narrow it in production: an exported variable must
    not make someone a security officer of a production home."""
    where = f"[officers] of {home / CONFIG_FILE}"
    if not isinstance(section, Mapping):
        raise ConfigError(f"{where} must be a table")
    unknown = sorted(str(name) for name in section if name != "names")
    if unknown:
        raise ConfigError(f"unknown setting(s) in {where}: {', '.join(unknown)}; the only one is names")
    listed = section.get("names", [])
    if not isinstance(listed, list) or not all(isinstance(n, str) for n in listed):
        raise ConfigError(f"officers.names in {where} must be a list of OS account names")
    configured = _account_names(listed, "officers.names")
    raw = env.get("ZHENGYIN_OFFICERS")
    if raw is None or not raw.strip():
        return configured
    given = _account_names(raw.split(","), "ZHENGYIN_OFFICERS")
    if production:
        wider = sorted(set(given) - set(configured))
        if wider:
            raise ConfigError(f"ZHENGYIN_OFFICERS names {', '.join(wider)}, not in officers.names of "
                              f"{home / CONFIG_FILE}: in production the environment may narrow the list "
                              "of security officers, never widen it")
    return given


def _account_names(names: list[str], what: str) -> tuple[str, ...]:
    out = []
    for name in (n.strip() for n in names):
        if not name or len(name) > 64 or not set(name) <= _ACCOUNT_CHARS or name.startswith("-"):
            raise ConfigError(f"{what}: {name[:70]!r} is not an OS account name")
        if name not in out:
            out.append(name)
    return tuple(out)


def _days(value: object, what: str) -> int:
    """A whole number of days from 1 to 100 years; ConfigError naming ``what`` otherwise."""
    try:
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise ValueError
        days = int(value)
    except ValueError:
        raise ConfigError(f"{what} must be a whole number of days, not {value!r}") from None
    if not 1 <= days <= MAX_AGE_LIMIT_DAYS:
        raise ConfigError(f"{what} must be from 1 to {MAX_AGE_LIMIT_DAYS} days, not {days}")
    return days


def _rotation_policy(home: Path, section: object, env: Mapping[str, str]) -> RotationPolicy:
    """``[rotation]`` overlaid by ``ZHENGYIN_ROTATION_SEAL_MAX_AGE_DAYS`` / ``_CA_MAX_AGE_DAYS``;
    a misspelt name is refused, not ignored (a policy silently not applied is no policy)."""
    where = f"[rotation] of {home / CONFIG_FILE}"
    if not isinstance(section, Mapping):
        raise ConfigError(f"{where} must be a table")
    unknown = sorted(str(name) for name in section if name not in ROTATION_SETTING_NAMES)
    if unknown:
        raise ConfigError(f"unknown setting(s) in {where}: {', '.join(unknown)}; known are "
                          f"{', '.join(ROTATION_SETTING_NAMES)}")
    seal_days = _days(env.get("ZHENGYIN_ROTATION_SEAL_MAX_AGE_DAYS")
                      or section.get("seal_max_age_days", DEFAULT_SEAL_MAX_AGE_DAYS),
                      "rotation.seal_max_age_days")
    ca_days = _days(env.get("ZHENGYIN_ROTATION_CA_MAX_AGE_DAYS")
                    or section.get("ca_max_age_days", DEFAULT_CA_MAX_AGE_DAYS), "rotation.ca_max_age_days")
    seals, cas = section.get("seals", {}), section.get("ca", {})
    if not isinstance(seals, Mapping) or not isinstance(cas, Mapping):
        raise ConfigError(f"rotation.seals and rotation.ca in {where} must be tables")
    bad_seals = sorted(str(k) for k in seals if not (isinstance(k, str) and len(k) == 14 and k.isdigit()))
    if bad_seals:
        raise ConfigError(f"rotation.seals names seals by their 14-digit esID, not {', '.join(bad_seals)}")
    bad_cas = sorted(str(k) for k in cas if k not in ROTATION_CAS)
    if bad_cas:
        raise ConfigError(f"rotation.ca takes {' and '.join(ROTATION_CAS)}, not {', '.join(bad_cas)}")
    return RotationPolicy(
        seal_max_age_days=seal_days,
        ca_max_age_days=ca_days,
        seal_overrides=tuple(sorted((k, _days(v, f"rotation.seals.{k}")) for k, v in seals.items())),
        ca_overrides=tuple(sorted((k, _days(v, f"rotation.ca.{k}")) for k, v in cas.items())),
    )


def _path_setting(home: Path, value: str | None) -> Path | None:
    if not value:
        return None
    path = Path(value).expanduser()
    return path if path.is_absolute() else home / path


def _check_vault_address(address: str, production: bool) -> None:
    """https in production; never credentials in the address (and never echo one that has them)."""
    try:
        parts = urlsplit(address)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        raise ConfigError("the Vault address is not a valid URL (scheme://host:port)") from None
    if "@" in parts.netloc:
        raise ConfigError("the Vault address must not carry a user name or password (user:secret@host); "
                          "give the token through ZHENGYIN_VAULT_TOKEN(_FILE) or use AppRole")
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ConfigError(f"the Vault address must start with https:// (or http:// for a local test server), "
                          f"not {address!r}")
    if production and parts.scheme != "https":
        raise ConfigError(f"in production the Vault address must use https://, not {address!r}: the token "
                          "and the wrapped keys would cross the network in clear")


def _vault_settings(home: Path, section: Mapping, env: Mapping[str, str], *,
                    production: bool = False) -> VaultSettings:
    """``[keys.vault]`` overlaid by ``ZHENGYIN_VAULT_*`` (and Vault's own ``VAULT_*``) variables."""
    if not isinstance(section, Mapping):
        raise ConfigError("[keys.vault] in zhengyin.toml must be a table")
    for secret in ("token", "secret_id"):
        if secret in section:
            raise ConfigError(f"keys.vault.{secret} must not be written into {CONFIG_FILE}: put it in a file "
                              f"readable only by the service and set keys.vault.{secret}_file, or use "
                              f"ZHENGYIN_VAULT_{secret.upper()}")
    unknown = sorted(str(name) for name in section if name not in VAULT_SETTING_NAMES)
    if unknown:  # names only: the value of a misspelt secret is never repeated
        raise ConfigError(f"unknown setting(s) in [keys.vault] of {home / CONFIG_FILE}: "
                          f"{', '.join(unknown)}; known are {', '.join(VAULT_SETTING_NAMES)} "
                          "(secrets go in files or the environment)")

    def pick(name: str, *variables: str, default=None):
        for variable in variables:
            if env.get(variable):
                return env[variable]
        return section.get(name, default)

    address = pick("address", "ZHENGYIN_VAULT_ADDR", "VAULT_ADDR")
    if not address:
        raise ConfigError("the vault key backend needs Vault's address: set ZHENGYIN_VAULT_ADDR "
                          f"(or VAULT_ADDR) or keys.vault.address in {home / CONFIG_FILE}")
    _check_vault_address(str(address), production)
    ca_bundle = _path_setting(home, pick("ca_bundle", "ZHENGYIN_VAULT_CACERT", "VAULT_CACERT"))
    if ca_bundle is not None and not ca_bundle.is_file():
        raise ConfigError(f"the Vault CA bundle {ca_bundle} (keys.vault.ca_bundle / ZHENGYIN_VAULT_CACERT) "
                          "does not exist or is not a file")
    raw_cache = pick("unwrap_cache_seconds", "ZHENGYIN_VAULT_UNWRAP_CACHE_SECONDS",
                     default=DEFAULT_UNWRAP_CACHE_SECONDS)
    try:
        cache = int(raw_cache)
        if cache < 0 or isinstance(raw_cache, bool):
            raise ValueError
    except (TypeError, ValueError):
        raise ConfigError(f"unwrap_cache_seconds must be a whole number of seconds >= 0, not {raw_cache!r}") \
            from None
    mounts = {name: str(pick(name, f"ZHENGYIN_VAULT_{name.upper()}", default=default)).strip("/")
              for name, default in (("kv_mount", "secret"), ("transit_mount", "transit"),
                                    ("transit_key", "zhengyin"), ("key_prefix", "zhengyin/keys"),
                                    ("approle_mount", "approle"))}
    for name, value in mounts.items():
        if not value or ".." in value.split("/"):
            raise ConfigError(f"keys.vault.{name} must be a non-empty Vault path, not {value!r}")
    return VaultSettings(
        address=str(address).rstrip("/"),
        namespace=pick("namespace", "ZHENGYIN_VAULT_NAMESPACE", "VAULT_NAMESPACE") or None,
        ca_bundle=ca_bundle,
        unwrap_cache_seconds=cache,
        role_id=pick("role_id", "ZHENGYIN_VAULT_ROLE_ID") or None,
        token_file=_path_setting(home, pick("token_file", "ZHENGYIN_VAULT_TOKEN_FILE")),
        secret_id_file=_path_setting(home, pick("secret_id_file", "ZHENGYIN_VAULT_SECRET_ID_FILE")),
        _token_env=_secret_env(env, "ZHENGYIN_VAULT_TOKEN", "VAULT_TOKEN"),
        _secret_id_env=_secret_env(env, "ZHENGYIN_VAULT_SECRET_ID"),
        **mounts,
    )


def _secret_env(env: Mapping[str, str], *names: str) -> SecretText | None:
    for name in names:
        if env.get(name):
            return SecretText(env[name])
    return None
