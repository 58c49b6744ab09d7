"""``zhengyin serve`` (the signing service) and ``zhengyin service key …`` (its API keys).

Transport rule: in production (``ZHENGYIN_ENV=production``) the service binds a non-loopback
address only with TLS (``--tls-cert/--tls-key`` or ``ZHENGYIN_SERVICE_TLS_CERT/_KEY``):
API keys are bearer secrets, and sending them in clear across a network hands them to anyone
on the path. On loopback (a TLS-terminating proxy in front, or a local business system) plain
HTTP is allowed; in development a non-loopback bind without TLS is allowed with a warning.
"""

from __future__ import annotations

import ipaddress
import os
from typing import Annotated

import typer

from ..domain import TrustDomain
from .output import EXIT_BAD_INPUT, EXIT_CONFIG, EXIT_NOT_FOUND, EXIT_REFUSED, console, emit, errors, fail
from .params import HOME, JSON, parse_time_option

service_app = typer.Typer(help="The signing service's API keys and settings.", no_args_is_help=True)
key_app = typer.Typer(help="Per-department API keys (zy_<key id>_<secret>).", no_args_is_help=True)
service_app.add_typer(key_app, name="key")


def is_loopback(host: str) -> bool:
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a name: it may resolve to anything


def _registry(td: TrustDomain):
    from ..service.credentials import ApiKeyRegistry

    if "service_api_key" not in td.db.table_names():
        raise fail(
            f"the database of {td.settings.home} has no API key table; run `zhengyin init` "
            "(it migrates the database)",
            EXIT_CONFIG,
        )
    return ApiKeyRegistry(td.db, td.audit, actor=td.actor)


def _guard(action):
    from ..service.credentials import ApiKeyNotFound, ApiKeyRefused, ApiKeyRequestError

    try:
        return action()
    except ApiKeyRequestError as exc:
        raise fail(str(exc), EXIT_BAD_INPUT) from None
    except ApiKeyNotFound as exc:
        raise fail(str(exc), EXIT_NOT_FOUND) from None
    except ApiKeyRefused as exc:
        raise fail(str(exc), EXIT_REFUSED) from None


def _split(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


@key_app.command("create")
def create(
    department: Annotated[str, typer.Option("--department", help="the department's credit code")],
    types: Annotated[str, typer.Option("--types", help="licence type codes, comma-separated, or *")],
    ops: Annotated[
        str,
        typer.Option(
            "--ops",
            help="operations, comma-separated: issue, read, change, renew, "
            "suspend, resume, revoke, cancel, seal, list; or rotate alone (a security officer's key: "
            "POST /api/v1/seals/{es_id}/rotate)",
        ),
    ],
    label: Annotated[str, typer.Option("--label", help="what the key is for (shown in key list)")],
    expires: Annotated[str | None, typer.Option("--expires", help="ISO 8601 expiry with a zone")] = None,
    home: HOME = None,
    json_: JSON = False,
) -> None:
    """Make an API key. The key is printed once: it is stored only as a hash."""
    from licences.catalogue import Catalogue

    expires_at = parse_time_option(expires, "--expires")
    known = [t.code for t in Catalogue.load()]
    td = TrustDomain.open(home)
    try:
        registry = _registry(td)
        made = _guard(
            lambda: registry.create(
                department, _split(types), _split(ops), label, known_types=known, expires_at=expires_at
            )
        )
    finally:
        td.close()
    data = made.key.as_dict() | {"key": made.token}

    def render() -> None:
        console.print(
            f"API key [bold]{made.key.key_id}[/] for {made.key.department} "
            f"({', '.join(made.key.operations)} on {', '.join(made.key.types)}):"
        )
        console.print(made.token, highlight=False, soft_wrap=True)
        console.print("this is the only time the key is shown: hand it over now", highlight=False)

    emit(data, json_, render)


@key_app.command("list")
def list_keys(
    department: Annotated[str | None, typer.Option("--department")] = None,
    home: HOME = None,
    json_: JSON = False,
) -> None:
    """The API keys (never their secrets)."""
    td = TrustDomain.open(home)
    try:
        keys = [k.as_dict() for k in _registry(td).keys(department)]
    finally:
        td.close()
    emit(
        keys,
        json_,
        lambda: [
            console.print(
                f"{k['key_id']}  {k['state']:8}  {k['department']}  {','.join(k['operations'])}  "
                f"{','.join(k['types'])}  {k['label']}",
                highlight=False,
            )
            for k in keys
        ],
    )


@key_app.command("revoke")
def revoke(
    key_id: str,
    reason: Annotated[str | None, typer.Option("--reason")] = None,
    home: HOME = None,
    json_: JSON = False,
) -> None:
    """Revoke an API key: its next request is refused."""
    td = TrustDomain.open(home)
    try:
        registry = _registry(td)
        key = _guard(lambda: registry.revoke(key_id, reason))
    finally:
        td.close()
    emit(key.as_dict(), json_, lambda: console.print(f"revoked API key {key.key_id}"))


def register(root: typer.Typer) -> None:
    root.add_typer(service_app, name="service")

    @root.command("serve")
    def serve(
        host: Annotated[str, typer.Option(help="address to bind")] = "127.0.0.1",
        port: Annotated[int, typer.Option(min=1, max=65535)] = 8080,
        workers: Annotated[int, typer.Option(min=1, max=64, help="worker processes")] = 1,
        tls_cert: Annotated[
            str | None, typer.Option("--tls-cert", envvar="ZHENGYIN_SERVICE_TLS_CERT")
        ] = None,
        tls_key: Annotated[str | None, typer.Option("--tls-key", envvar="ZHENGYIN_SERVICE_TLS_KEY")] = None,
        home: HOME = None,
    ) -> None:
        """Run the issuer-facing signing service (HTTP API, OpenAPI at /openapi.json)."""
        import uvicorn

        from ..service.settings import load_service_settings

        if (tls_cert is None) != (tls_key is None):
            raise fail("give both --tls-cert and --tls-key, or neither", EXIT_BAD_INPUT)
        for path in (tls_cert, tls_key):
            if path is not None and not os.path.isfile(path):
                raise fail(f"{path} is not a readable file", EXIT_BAD_INPUT)
        td = TrustDomain.open(home)
        try:
            settings = td.settings
            load_service_settings()  # a wrong ZHENGYIN_SERVICE_* stops the start, not the first request
            if not is_loopback(host) and tls_cert is None:
                if settings.production:
                    raise fail(
                        f"refusing to serve API keys in clear on {host} in production: give "
                        "--tls-cert and --tls-key, or bind 127.0.0.1 behind a TLS proxy",
                        EXIT_CONFIG,
                    )
                errors.print(
                    f"[yellow]warning:[/] {host} is not loopback and there is no TLS: API keys travel "
                    "in clear (development only)",
                    highlight=False,
                )
            td.db.migrate()  # once, here, before the workers start
        finally:
            td.close()
        os.environ["ZHENGYIN_HOME"] = str(settings.home)
        scheme = "https" if tls_cert else "http"
        console.print(
            f"zhengyin signing service on {scheme}://{host}:{port}/ (home {settings.home}, "
            f"{workers} worker{'s' if workers > 1 else ''})",
            highlight=False,
        )
        uvicorn.run(
            "trust.service.app:app_from_environment",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            ssl_certfile=tls_cert,
            ssl_keyfile=tls_key,
            server_header=False,
            log_level="info",
        )
