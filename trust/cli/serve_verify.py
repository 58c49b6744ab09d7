"""``zhengyin serve-verify``: run the public verification service (verify_api) under uvicorn.

The one place below verify_api that reaches up into it: the import happens inside the command,
so that the rest of trust/ (and everything it imports) never depends on the public service.
The service reads the home given by ``--home`` / ``ZHENGYIN_HOME``; each worker process opens
it on its own (uvicorn's factory mode), so ``--workers`` scales across cores.

Before uvicorn starts, every key secret variable (``ZHENGYIN_KEY_PASSPHRASE*``,
``ZHENGYIN_VAULT_*``, ``VAULT_*``) is removed from the environment, so no worker inherits one;
in production the command refuses to start while the process can still read a key passphrase
file, the key directory or a Vault credential file (verify_api/DEPLOYMENT.md: its own OS
user, a read-only database role, ``<home>/public`` only).

``--forwarded-allow-ips`` names the reverse proxies whose ``X-Forwarded-For`` /
``X-Forwarded-Proto`` headers are believed (addresses or networks, comma-separated; default
``127.0.0.1,::1``, a proxy on the same machine). The client address those headers give is what
the rate limits count, so trusting them from anyone (``*``) would let every request claim a
fresh address: refused in production, warned about otherwise.
"""

from __future__ import annotations

import ipaddress
import os
from typing import Annotated

import typer

from .output import EXIT_BAD_INPUT, EXIT_CONFIG, errors, fail
from .params import HOME

DEFAULT_FORWARDED_ALLOW_IPS = "127.0.0.1,::1"


class ProxySettingError(ValueError):
    """A --forwarded-allow-ips value that cannot be used; the message says why."""


def forwarded_allow_ips(value: str, *, production: bool) -> str:
    """The checked, normalised list of trusted proxies for uvicorn (comma-separated)."""
    entries = [entry.strip() for entry in value.split(",") if entry.strip()]
    if not entries:
        raise ProxySettingError("--forwarded-allow-ips needs at least one address (127.0.0.1 for a proxy on "
                                "this machine)")
    if "*" in entries:
        if production:
            raise ProxySettingError("--forwarded-allow-ips '*' would let any client choose the address the "
                                    "rate limits count: name your reverse proxies' addresses or networks "
                                    "instead")
        return "*"
    for entry in entries:
        try:
            ipaddress.ip_network(entry, strict=False)
        except ValueError:
            raise ProxySettingError(f"--forwarded-allow-ips: {entry!r} is not an IP address or "
                                    "network") from None
    return ",".join(entries)


def register(app: typer.Typer) -> None:
    @app.command("serve-verify")
    def serve_verify(
        host: Annotated[str, typer.Option("--host", help="address to listen on")] = "127.0.0.1",
        port: Annotated[int, typer.Option("--port", min=1, max=65535)] = 8081,
        workers: Annotated[int, typer.Option("--workers", min=1, max=64, help="worker processes")] = 1,
        forwarded: Annotated[str, typer.Option(
            "--forwarded-allow-ips",
            help="reverse proxies whose X-Forwarded-For is believed (addresses or networks, comma-separated; "
                 "never '*' in production)")] = DEFAULT_FORWARDED_ALLOW_IPS,
        home: HOME = None,
    ) -> None:
        """Serve the public verification pages and API (QR landing page, upload, status, trust list)."""
        from ledger.config import ConfigError, load_settings
        from verify_api.records import drop_key_secrets, public_settings  # the documented upward import

        dropped = drop_key_secrets()  # before anything reads settings: no worker inherits a secret
        try:
            settings = load_settings(home)
            public_settings(settings)  # production: refuses while key material is readable
            proxies = forwarded_allow_ips(forwarded, production=settings.production)
        except ProxySettingError as exc:
            raise fail(str(exc), EXIT_CONFIG) from None
        except ConfigError as exc:
            raise fail(str(exc), EXIT_CONFIG) from None
        if not settings.home.is_dir():
            raise fail(f"{settings.home} is not a zhengyin home: run `zhengyin init` (or point --home at "
                       "one)", EXIT_BAD_INPUT)
        if dropped:
            errors.print(f"serve-verify: removed {', '.join(dropped)} from the environment (the public "
                         "service holds no key)", highlight=False)
        if proxies == "*":
            errors.print("[yellow]warning:[/] --forwarded-allow-ips '*': any client can choose the address "
                         "the rate limits count (refused in production)", highlight=False)
        os.environ["ZHENGYIN_HOME"] = str(settings.home)  # the workers read it (factory mode)
        import uvicorn

        from verify_api.app import app_from_environment

        uvicorn.run(f"{app_from_environment.__module__}:app_from_environment", factory=True, host=host,
                    port=port, workers=workers, proxy_headers=True, forwarded_allow_ips=proxies,
                    server_header=False, log_level="info")
