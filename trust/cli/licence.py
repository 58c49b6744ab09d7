"""``zhengyin licence …`` and ``zhengyin verify-qr``: issuing e-licences and checking their QR codes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from ..domain import TrustDomain
from .output import EXIT_BAD_INPUT, EXIT_FAILED, console, emit, fail
from .params import AT, HOME, JSON, parse_time_option

app = typer.Typer(
    help="E-licences (电子证照): the catalogue, issuance and the licence library.", no_args_is_help=True
)


def record_dict(record) -> dict:
    return {
        "identifier": record.identifier,
        "type_code": record.type_code,
        "issuer_code": record.issuer_code,
        "licence_number": record.licence_number,
        "holder_name": record.holder_name,
        "status": record.status,
        "valid_from": record.valid_from.isoformat(),
        "valid_until": record.valid_until.isoformat() if record.valid_until else None,
        "ofd_sm3": record.ofd_sm3,
        "pdf_sm3": record.pdf_sm3,
        "previous_identifier": record.previous_identifier,
        "superseded_by": record.superseded_by,
    }


@app.command("types")
def types(home: HOME = None, json_: JSON = False) -> None:
    """The licence types this service issues, each with an example data object that validates."""
    from licences.catalogue import Catalogue

    listed = [
        {
            "code": t.code,
            "name": t.name,
            "english_name": t.english_name,
            "defining_authority": t.defining_authority,
            "page_size": t.page_size,
            "fields": t.fields,
            "example": dict(t.example),
        }
        for t in Catalogue.load()
    ]
    emit(
        listed,
        json_,
        lambda: [console.print(f"{t['code']}  {t['name']} ({t['english_name']})") for t in listed],
    )


def _read_data(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise fail(f"cannot read {path}: {exc.strerror}", EXIT_BAD_INPUT) from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise fail(f"{path} is not UTF-8 JSON: {exc}", EXIT_BAD_INPUT) from None
    if not isinstance(data, dict):
        raise fail(f"{path} must hold one JSON object (the licence data)", EXIT_BAD_INPUT)
    return data


@app.command("issue")
def issue(
    type_code: Annotated[str, typer.Option("--type", help="licence type code (zhengyin licence types)")],
    data_file: Annotated[Path, typer.Option("--data", help="the licence data as a JSON object")],
    out: Annotated[Path, typer.Option("--out", help="directory for the OFD and PDF")],
    issuer: Annotated[
        str | None,
        typer.Option("--issuer", help="the issuing department's credit code (default: the demo department)"),
    ] = None,
    home: HOME = None,
    json_: JSON = False,
) -> None:
    """Issue one licence: validate, allocate the identifier, render, seal OFD and PDF, record."""
    from licences.catalogue import LicenceDataError

    data = _read_data(data_file)
    try:  # before issuing: a licence recorded but never handed over must not happen
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".zhengyin-write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise fail(f"cannot write into {out}: {exc.strerror or exc}", EXIT_BAD_INPUT) from None
    if issuer is None:
        from keys_dev.domain import DEMO_DEPARTMENT_CODE

        issuer = DEMO_DEPARTMENT_CODE
    td = TrustDomain.open(home)
    try:
        try:
            issued = td.licence_desk.issue(type_code, data, issuer_code=issuer)
        except LicenceDataError as exc:
            problems = list(exc.errors)

            def render() -> None:
                for e in problems:
                    console.print(f"  {e.path}: {e.message_zh} / {e.message_en}", highlight=False)

            emit({"error": "invalid licence data", "errors": [e.as_dict() for e in problems]}, json_, render)
            raise typer.Exit(EXIT_BAD_INPUT) from None
    finally:
        td.close()
    stem = issued.identifier.replace(".", "_")
    ofd_path, pdf_path = out / f"{stem}.ofd", out / f"{stem}.pdf"
    ofd_path.write_bytes(issued.ofd)
    pdf_path.write_bytes(issued.pdf)
    result = {"identifier": issued.identifier, "ofd": str(ofd_path), "pdf": str(pdf_path), "qr": issued.qr}
    emit(
        result,
        json_,
        lambda: console.print(f"issued [bold]{issued.identifier}[/]\n  {ofd_path}\n  {pdf_path}"),
    )


@app.command("show")
def show(identifier: str, home: HOME = None, json_: JSON = False) -> None:
    """A licence's registry row, metadata and history."""
    td = TrustDomain.open(home)
    try:
        record = td.licences.find(identifier)
        events = [
            {
                "act": e.act,
                "from": e.from_status,
                "to": e.to_status,
                "actor": e.actor,
                "at": e.at.isoformat(),
                "reason": e.reason,
            }
            for e in td.licences.events(identifier)
        ]
    finally:
        td.close()
    data = record_dict(record) | {"metadata": record.licence_metadata, "events": events}
    emit(data, json_, lambda: console.print_json(json.dumps(data, ensure_ascii=False, default=str)))


@app.command("list")
def list_(
    type_code: Annotated[str | None, typer.Option("--type")] = None,
    status: Annotated[str | None, typer.Option("--status", help="01 valid, 02 suspended, …")] = None,
    limit: Annotated[int, typer.Option(min=1, max=500)] = 50,
    page: Annotated[int, typer.Option(min=1)] = 1,
    home: HOME = None,
    json_: JSON = False,
) -> None:
    """One page of the licence library."""
    td = TrustDomain.open(home)
    try:
        rows = [
            record_dict(r)
            for r in td.licences.licences(type_code=type_code, status=status, page=page, limit=limit)
        ]
    finally:
        td.close()
    emit(
        rows,
        json_,
        lambda: [console.print(f"{r['identifier']}  {r['status']}  {r['holder_name']}") for r in rows],
    )


def _act(name: str, needs_reason: bool):
    def command(
        identifier: str,
        reason: Annotated[str | None, typer.Option("--reason")] = None,
        home: HOME = None,
        json_: JSON = False,
    ) -> None:
        if needs_reason and not reason:
            raise typer.BadParameter("give a --reason (it goes into the licence's history)")
        td = TrustDomain.open(home)
        try:
            act = getattr(td.licences, name)
            record = act(identifier, reason) if reason is not None or needs_reason else act(identifier)
        finally:
            td.close()
        emit(
            record_dict(record),
            json_,
            lambda: console.print(f"{name}: {record.identifier} → {record.status}"),
        )

    command.__doc__ = f"{name.capitalize()} a licence (recorded with who, when and why)."
    return command


for _name, _reason in (("suspend", True), ("resume", False), ("revoke", True), ("cancel", True)):
    app.command(_name)(_act(_name, _reason))


def register(root: typer.Typer) -> None:
    @root.command("verify-qr")
    def verify_qr(
        text: Annotated[str, typer.Argument(help="the QR code's text (the URL it holds)")],
        cert: Annotated[
            list[Path] | None,
            typer.Option("--cert", help="published issuer certificates (PEM/DER); default: the home's"),
        ] = None,
        at: AT = None,
        home: HOME = None,
        json_: JSON = False,
    ) -> None:
        """Check a licence QR code offline: its signature, its signer and its validity."""
        from ca.authority import certificate_of, utc_now
        from licences.qr_payload import verify_qr_report

        try:
            certificates = [p.read_bytes() for p in cert or []]
        except OSError as exc:
            raise fail(f"cannot read a certificate: {exc.strerror or exc}", EXIT_BAD_INPUT) from None
        if not certificates:
            # The home's signer certificates that are not revoked: a compromised key's QR codes
            # must not verify (a revoked signer is then simply unknown: INDETERMINATE).
            td = TrustDomain.open(home)
            try:
                records = td.ca.certificates(profile="department-signer", include_revoked=False)
                certificates = [certificate_of(r).dump() for r in records]
            finally:
                td.close()
        report = verify_qr_report(text, certificates, parse_time_option(at, "--at") or utc_now())
        emit(report, json_, lambda: console.print_json(json.dumps(report, ensure_ascii=False, default=str)))
        if not report.get("ok"):
            raise typer.Exit(EXIT_FAILED)
