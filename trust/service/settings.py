"""What the signing service needs beyond the home's settings, from ``ZHENGYIN_SERVICE_*``.

ledger/config.py knows the home, the database and the key store; the limits and transport
rules of one HTTP service belong to that service, so they are read here, once, when the app
is made.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from ledger.config import ConfigError

MIB = 1024 * 1024
PREFIX = "ZHENGYIN_SERVICE_"


@dataclass(frozen=True)
class ServiceSettings:
    #: Largest JSON request body (issue, change, …), enforced while the body is read.
    max_json_bytes: int = 1 * MIB
    #: Largest multipart upload (POST /seal): the document plus its form fields.
    max_upload_bytes: int = 20 * MIB
    #: How long a stored idempotent response is replayed.
    idempotency_ttl: timedelta = timedelta(hours=24)
    #: How long a retry waits for a concurrent request with the same key before answering 409
    #: ``request_in_progress`` with Retry-After. Short: a waiting retry holds a worker thread.
    idempotency_wait: timedelta = timedelta(seconds=2)
    #: TLS certificate and key for ``zhengyin serve`` (required to bind a non-loopback host
    #: in production).
    tls_cert: Path | None = None
    tls_key: Path | None = None

    @property
    def tls(self) -> bool:
        return self.tls_cert is not None and self.tls_key is not None


def _int(env: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = env.get(PREFIX + name)
    if raw is None or not raw.strip():
        return default
    try:
        value = int(raw.strip())
    except ValueError:
        raise ConfigError(f"{PREFIX}{name} must be a whole number, not {raw!r}") from None
    if not low <= value <= high:
        raise ConfigError(f"{PREFIX}{name} must be from {low} to {high}, not {value}")
    return value


def _path(env: Mapping[str, str], name: str) -> Path | None:
    raw = (env.get(PREFIX + name) or "").strip()
    if not raw:
        return None
    path = Path(raw).expanduser()
    if not path.is_file():
        raise ConfigError(f"{PREFIX}{name}: {path} is not a readable file")
    return path


def load_service_settings(environ: Mapping[str, str] | None = None) -> ServiceSettings:
    """The service settings from the environment (defaults where unset); ConfigError says
    which variable is wrong."""
    env = os.environ if environ is None else environ
    cert, key = _path(env, "TLS_CERT"), _path(env, "TLS_KEY")
    if (cert is None) != (key is None):
        raise ConfigError(f"set both {PREFIX}TLS_CERT and {PREFIX}TLS_KEY, or neither")
    return ServiceSettings(
        max_json_bytes=_int(env, "MAX_JSON_BYTES", 1 * MIB, 1024, 64 * MIB),
        max_upload_bytes=_int(env, "MAX_UPLOAD_BYTES", 20 * MIB, 1024, 512 * MIB),
        idempotency_ttl=timedelta(hours=_int(env, "IDEMPOTENCY_TTL_HOURS", 24, 1, 24 * 30)),
        idempotency_wait=timedelta(seconds=_int(env, "IDEMPOTENCY_WAIT_SECONDS", 2, 0, 30)),
        tls_cert=cert,
        tls_key=key,
    )
