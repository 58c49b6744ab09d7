"""Settings of the public verification service, beyond the home's (``ledger.config``).

From the environment, ``ZHENGYIN_VERIFY_*``; every value is checked at start-up, so a typo
stops the service with the variable's name instead of running with a surprise.

=================================== =========================================== ==========
variable                            meaning                                     default
=================================== =========================================== ==========
``ZHENGYIN_VERIFY_MAX_UPLOAD``      largest document accepted, bytes            20 MiB
``ZHENGYIN_VERIFY_RATE``            lookups (QR page, status API) a client      60
                                    address may make per minute
``ZHENGYIN_VERIFY_BURST``           lookups allowed at once before the rate     30
                                    applies (token bucket size)
``ZHENGYIN_VERIFY_UPLOAD_RATE``     uploads per client address per minute       10
``ZHENGYIN_VERIFY_UPLOAD_BURST``    uploads at once                             5
``ZHENGYIN_VERIFY_MAX_CLIENTS``     client addresses a worker tracks (memory    100000
                                    bound; the idlest are forgotten first)
``ZHENGYIN_VERIFY_TRUST_TTL``       seconds the signer certificates, CRLs and   30
                                    seal registry are cached in a worker
``ZHENGYIN_VERIFY_MAX_CACHE``       longest max-age, seconds, given to the      300
                                    trust list and CRLs (never past their
                                    next update)
``ZHENGYIN_VERIFY_MAX_VALIDATIONS`` uploads a worker validates at once (more    CPUs of
                                    get 503 with Retry-After)                   the process
``ZHENGYIN_VERIFY_HSTS``            ``always`` (behind a TLS proxy that does    auto
                                    not say so), ``auto`` (when the request
                                    arrived over https) or ``never``
``ZHENGYIN_VERIFY_PRESENTATION_``   seconds a live presentation QR code (亮证)  120
``SECONDS``                         can be opened, 60 to 300
=================================== =========================================== ==========
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from ledger.config import ConfigError

MIB = 1024 * 1024


@dataclass(frozen=True)
class VerifySettings:
    max_upload: int = 20 * MIB
    rate_per_minute: float = 60.0
    burst: int = 30
    upload_rate_per_minute: float = 10.0
    upload_burst: int = 5
    max_clients: int = 100_000
    trust_ttl: float = 30.0
    max_cache_seconds: int = 300
    hsts: str = "auto"
    presentation_seconds: int = 120
    max_validations: int = field(default_factory=lambda: default_slots())

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> VerifySettings:
        env = os.environ if environ is None else environ
        defaults = cls()

        def number(name: str, default: float, kind: type, low: float, high: float):
            raw = env.get(f"ZHENGYIN_VERIFY_{name}")
            if raw is None or not raw.strip():
                return default
            try:
                value = kind(raw.strip())
            except ValueError:
                raise ConfigError(f"ZHENGYIN_VERIFY_{name} must be a {kind.__name__}, not {raw!r}") from None
            if not low <= value <= high:
                raise ConfigError(f"ZHENGYIN_VERIFY_{name} must be from {low} to {high}, not {value}")
            return value

        hsts = (env.get("ZHENGYIN_VERIFY_HSTS") or defaults.hsts).strip().lower()
        if hsts not in ("always", "auto", "never"):
            raise ConfigError(f"ZHENGYIN_VERIFY_HSTS must be always, auto or never, not {hsts!r}")
        return cls(
            max_upload=number("MAX_UPLOAD", defaults.max_upload, int, 1024, 512 * MIB),
            rate_per_minute=number("RATE", defaults.rate_per_minute, float, 0.1, 1e6),
            burst=number("BURST", defaults.burst, int, 1, 1_000_000),
            upload_rate_per_minute=number("UPLOAD_RATE", defaults.upload_rate_per_minute, float, 0.1, 1e6),
            upload_burst=number("UPLOAD_BURST", defaults.upload_burst, int, 1, 1_000_000),
            max_clients=number("MAX_CLIENTS", defaults.max_clients, int, 100, 10_000_000),
            trust_ttl=number("TRUST_TTL", defaults.trust_ttl, float, 0, 3600),
            max_cache_seconds=number("MAX_CACHE", defaults.max_cache_seconds, int, 0, 7 * 86400),
            hsts=hsts,
            presentation_seconds=number("PRESENTATION_SECONDS", defaults.presentation_seconds, int, 60, 300),
            max_validations=number("MAX_VALIDATIONS", defaults.max_validations, int, 1, 1024),
        )


def default_slots() -> int:
    """About one validation per CPU this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)
