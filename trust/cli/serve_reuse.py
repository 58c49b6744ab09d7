"""``zhengyin serve-reuse``: run the department-facing data-reuse service (verify_api.reuse_app).

Served on the government network, never the internet: unlike ``serve-verify`` it holds one
key, the data-service signer's (verify_api/DEPLOYMENT.md). Like ``serve-verify`` it imports
verify_api only inside the command, so the rest of trust/ never depends on it. Before uvicorn
starts it checks that the home opens, that the key store holds only that key in production,
and that there is a valid signer certificate (``zhengyin reuse signer``), so a worker never
starts into a service that cannot sign.
"""

from __future__ import annotations

import os
from typing import Annotated

import typer

from .output import EXIT_BAD_INPUT, EXIT_CONFIG, EXIT_REFUSED, fail
from .params import HOME
from .serve_verify import DEFAULT_FORWARDED_ALLOW_IPS, ProxySettingError, forwarded_allow_ips


def register(app: typer.Typer) -> None:
    @app.command("serve-reuse")
    def serve_reuse(
        host: Annotated[str, typer.Option("--host", help="address to listen on")] = "127.0.0.1",
        port: Annotated[int, typer.Option("--port", min=1, max=65535)] = 8082,
        workers: Annotated[int, typer.Option("--workers", min=1, max=64, help="worker processes")] = 1,
        forwarded: Annotated[str, typer.Option(
            "--forwarded-allow-ips", help="reverse proxies whose X-Forwarded-For is believed")]
        = DEFAULT_FORWARDED_ALLOW_IPS,
        home: HOME = None,
    ) -> None:
        """Serve the data-reuse API for departments (government network only; holds one key)."""
        from ledger.config import ConfigError, load_settings

        from ..reuse_signing import DataSignerMissing, current_data_signer

        try:
            settings = load_settings(home)
            proxies = forwarded_allow_ips(forwarded, production=settings.production)
        except (ProxySettingError, ConfigError) as exc:
            raise fail(str(exc), EXIT_CONFIG) from None
        if not settings.home.is_dir():
            raise fail(f"{settings.home} is not a zhengyin home: run `zhengyin init` (or point --home "
                       "at one)", EXIT_BAD_INPUT)
        from verify_api.reuse_app import app_from_environment, open_domain  # the documented upward import

        try:
            domain = open_domain(settings.home)
        except ConfigError as exc:
            raise fail(str(exc), EXIT_CONFIG) from None
        try:
            record = current_data_signer(domain)
            domain.keys.signer("data-service-signer", record.key_version)
        except DataSignerMissing as exc:
            raise fail(str(exc), EXIT_REFUSED) from None
        finally:
            domain.close()
        os.environ["ZHENGYIN_HOME"] = str(settings.home)
        import uvicorn

        uvicorn.run(f"{app_from_environment.__module__}:app_from_environment", factory=True, host=host,
                    port=port, workers=workers, proxy_headers=True, forwarded_allow_ips=proxies,
                    server_header=False, log_level="info")
