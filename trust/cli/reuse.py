"""``zhengyin reuse``: department clients of the data-reuse service and its signer; and
``zhengyin verify-reuse``: check a data-reuse answer offline.

``reuse client create|list|revoke`` and ``reuse signer`` run on the internal side (the security
officer's; ``signer`` uses the CA). ``verify-reuse`` is what a receiving department (or anyone
holding the answer) runs: it needs the published trust list, its signature, the root
certificate and the CRLs — nothing online.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from ..domain import TrustDomain
from .output import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_NOT_FOUND, EXIT_REFUSED, console, emit, errors, fail
from .params import AT, HOME, JSON, parse_time_option

app = typer.Typer(help="Data reuse by departments (免提交): clients and the service's signer.",
                  no_args_is_help=True)
client_app = typer.Typer(help="Department clients (client id + secret, permissions per licence type).",
                         no_args_is_help=True)
app.add_typer(client_app, name="client")
MAX_ANSWER = 16 * 1024 * 1024  # an answer may carry its annotated copy (base64)
MAX_COPY = 12 * 1024 * 1024


def _registry(td: TrustDomain):
    from licences.reuse_clients import ClientRegistry

    return ClientRegistry(td.db, td.audit)


@client_app.command("create")
def create(
    name: Annotated[str, typer.Option("--name", help="the department system's name")],
    allow: Annotated[list[str], typer.Option(
        "--allow", help="<licence type code>:<operation>[,<operation>] (metadata, data); repeatable")],
    department_code: Annotated[str | None, typer.Option("--department-code",
                                                        help="the department's credit code")] = None,
    home: HOME = None,
    json_: JSON = False,
) -> None:
    """Make a client; its token is printed once (only its hash is kept)."""
    from licences.reuse_clients import ReuseRequestError, parse_permission

    try:
        permissions = [p for text in allow for p in parse_permission(text)]
    except ReuseRequestError as exc:
        raise fail(str(exc), EXIT_BAD_INPUT) from None
    td = TrustDomain.open(home)
    try:
        view, token = _registry(td).create(name, permissions, actor=td.actor, department_code=department_code)
    except ReuseRequestError as exc:
        raise fail(str(exc), EXIT_BAD_INPUT) from None
    finally:
        td.close()
    emit({**view.as_dict(), "token": token}, json_, lambda: console.print(
        f"department client [bold]{view.id}[/] ({view.name}) made. Its token, shown only now:\n{token}\n"
        "Send it as `Authorization: Bearer <token>` to the data-reuse service.", highlight=False))


@client_app.command("list")
def list_clients(home: HOME = None, json_: JSON = False) -> None:
    """Every client, with its permissions (never a secret)."""
    td = TrustDomain.open(home)
    try:
        views = _registry(td).list()
    finally:
        td.close()

    def render() -> None:
        table = Table("id", "name", "active", "permissions")
        for v in views:
            table.add_row(v.id, v.name, "yes" if v.revoked_at is None else "revoked",
                          ", ".join(f"{t}:{o}" for t, o in sorted(v.permissions)))
        console.print(table)

    emit([v.as_dict() for v in views], json_, render)


@client_app.command("revoke")
def revoke(client_id: Annotated[str, typer.Argument(help="the client id (dept-…)")], home: HOME = None,
           json_: JSON = False) -> None:
    """Revoke a client: its token stops working with its next request (audited)."""
    from licences.reuse_clients import ClientNotFound, ReuseError

    td = TrustDomain.open(home)
    try:
        view = _registry(td).revoke(client_id, actor=td.actor)
    except ClientNotFound as exc:
        raise fail(str(exc), EXIT_NOT_FOUND) from None
    except ReuseError as exc:
        raise fail(str(exc), EXIT_REFUSED) from None
    finally:
        td.close()
    emit(view.as_dict(), json_,
         lambda: console.print(f"department client {view.id} revoked", highlight=False))


@app.command("signer")
def signer(
    credit_code: Annotated[str | None, typer.Option(
        "--credit-code", help="the data service organisation's unified social credit code, for its seal "
        "(default: the previous data-service seal's; in development a stand-in)")] = None,
    department: Annotated[str | None, typer.Option(
        "--department", help="the organisation's name on the seal (default: the previous seal's, or the "
        "signer certificate's organisation)")] = None,
    home: HOME = None,
    json_: JSON = False,
) -> None:
    """Make (or renew, within 30 days of expiry or after a revocation) the data-service signer's
    certificate through the CA, then the data service's seal (加注件 are sealed with it: made by
    the home's seal maker, listing that certificate, in the seal registry); a no-op while both
    are usable. A run that stopped half-way is finished by the next (the seal left applied for,
    approved or made is completed, not made again). Run `zhengyin publish` afterwards so the
    trust list names the certificate."""
    from ..data_seal import ensure_data_seal
    from ..reuse_signing import DataSignerMissing, ensure_data_signer

    td = TrustDomain.open(home)
    try:
        record = ensure_data_signer(td)
        outcome = ensure_data_seal(td, record, credit_code=credit_code, department=department)
    except DataSignerMissing as exc:
        raise fail(str(exc), EXIT_REFUSED) from None
    finally:
        td.close()
    seal = outcome.record
    valid_end = seal.valid_end.isoformat() if seal.valid_end else None
    notes = ""
    if outcome.finished:
        notes += f"; finished the application {outcome.finished} an earlier run left"
    if outcome.superseded:
        notes += f"; withdrew the unfinished application(s) {', '.join(outcome.superseded)}"
    emit({"serial": record.serial, "subject": record.subject, "not_before": record.not_before.isoformat(),
          "not_after": record.not_after.isoformat(), "key_version": record.key_version,
          "seal": {"esid": seal.es_id, "name": seal.name, "status": seal.status, "made": outcome.made,
                   "finished": outcome.finished, "superseded": list(outcome.superseded),
                   "valid_start": seal.valid_start.isoformat() if seal.valid_start else None,
                   "valid_end": valid_end}}, json_,
         lambda: console.print(f"data-service signer certificate {record.serial} valid until "
                               f"{record.not_after.isoformat()}; seal {seal.name} ({seal.es_id})"
                               f"{' made' if outcome.made else ''}, valid until {valid_end or '-'}{notes}",
                               highlight=False))


def _read(path: Path, what: str, limit: int = MAX_ANSWER) -> bytes:
    try:
        if path.stat().st_size > limit:
            raise fail(f"{what} {path} is larger than {limit} bytes", EXIT_BAD_INPUT)
        return path.read_bytes()
    except OSError as exc:
        raise fail(f"cannot read {what} {path}: {exc.strerror}", EXIT_BAD_INPUT) from None


def register(cli: typer.Typer) -> None:
    @cli.command("verify-reuse")
    def verify_reuse(
        answer: Annotated[Path, typer.Argument(help="the data-reuse answer (JSON, as the service sent it)")],
        trust_list: Annotated[Path | None, typer.Option(
            "--trust-list", help="trust-list.json (default: <home>/public/trust-list.json)")] = None,
        signature: Annotated[Path | None, typer.Option(
            "--trust-list-signature", help="its trust-list.p7s (default: next to the list)")] = None,
        anchor: Annotated[list[Path] | None, typer.Option(
            "--anchor", help="the root CA certificate (PEM or DER; default: the home's roots)")] = None,
        crl: Annotated[list[Path] | None, typer.Option(
            "--crl", help="root and issuing CRLs (default: crl/*.crl next to the list)")] = None,
        copy: Annotated[Path | None, typer.Option(
            "--copy", help="the annotated copy (加注件) kept with the answer: checked against the SM3 the "
            "signed body names")] = None,
        no_revocation: Annotated[bool, typer.Option(
            "--no-revocation", help="do not check the trust-list signer against CRLs (said in the output)")]
        = False,
        at: AT = None,
        home: HOME = None,
        json_: JSON = False,
    ) -> None:
        """Check a data-reuse answer offline: the trust list (signature, root, CRLs, freshness),
        then the answer's SM2 signature by a listed data-service signer, and an annotated copy (its
        content in the answer, and --copy) against the signed body. Exit 0 if it verifies, 1 if not."""
        from ca.crl import load_crl
        from ca.errors import CaError
        from ca.validation import load_certificates
        from ledger.config import load_settings

        from ..reuse_signing import verify_reuse_response
        from ..trust_list import public_dir, verify_trust_list

        when = parse_time_option(at, "--at")
        if trust_list is None:
            trust_list = public_dir(load_settings(home)) / "trust-list.json"
        signature = signature or trust_list.with_name("trust-list.p7s")
        crl_paths = crl if crl is not None else sorted((trust_list.parent / "crl").glob("*.crl"))
        try:
            envelope = json.loads(_read(answer, "answer").decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            raise fail(f"{answer} is not JSON: {exc}", EXIT_BAD_INPUT) from None
        try:
            anchors = [c for p in anchor or [] for c in load_certificates(_read(p, "root certificate"))]
            crls = [load_crl(_read(p, "CRL")) for p in crl_paths]
        except CaError as exc:
            raise fail(str(exc), EXIT_BAD_INPUT) from None
        if not anchors:
            anchors = _home_roots(home)
        if not anchors:
            raise fail("give the root CA certificate with --anchor", EXIT_BAD_INPUT)
        listing = verify_trust_list(_read(trust_list, "trust list"),
                                    _read(signature, "trust list signature"), anchors, at=when, crls=crls,
                                    revocation="off" if no_revocation else "require")
        copy_bytes = None if copy is None else _read(copy, "annotated copy", MAX_COPY)
        result = verify_reuse_response(envelope, listing.document, copy_bytes) if listing.ok else None
        ok = listing.ok and result is not None and result.ok
        data = {"ok": ok, "trust_list": {"ok": listing.ok, "checks": [c.as_dict() for c in listing.checks],
                                         "warnings": list(listing.warnings)},
                "answer": result.as_dict() if result else None}

        def render() -> None:
            for check in listing.checks if not listing.ok else (result.checks if result else ()):
                mark = "[green]ok[/]" if check.ok else "[bold red]FAILED[/]"
                console.print(f"{mark} {check.name}: {check.detail}", highlight=False)
            for warning in listing.warnings:
                errors.print(f"[yellow]warning:[/] {warning}", highlight=False)
            console.print("[green]the answer verifies[/]" if ok else
                          "[bold red]the answer does NOT verify[/]")

        emit(data, json_, render)
        if not ok:
            raise typer.Exit(EXIT_FAILED)


def _home_roots(home: str | None) -> list:
    """The home's root certificates, when there is an initialised home (a convenience)."""
    from ca.authority import certificate_of
    from ledger.config import CONFIG_FILE, load_settings

    if not (load_settings(home).home / CONFIG_FILE).is_file():
        return []
    td = TrustDomain.open(home)
    try:
        return [certificate_of(r) for r in td.ca.live_ca_certificates("root")]
    finally:
        td.close()
