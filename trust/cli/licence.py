"""``zhengyin licence …`` and ``zhengyin verify-qr``: issuing e-licences and checking their QR codes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from ..domain import TrustDomain
from .output import EXIT_BAD_INPUT, EXIT_CONFIG, EXIT_FAILED, console, emit, fail
from .params import AT, HOME, JSON, parse_time_option

app = typer.Typer(
    help="E-licences (电子证照): the catalogue, issuance and the licence library.", no_args_is_help=True
)


def record_dict(record) -> dict:
    """The licence row as the API shows it too (one summary: effective status, e.g. 05 for a
    licence past its validity that the sweep has not recorded yet)."""
    from datetime import UTC, datetime

    from licences.summary import licence_summary

    return licence_summary(record, datetime.now(UTC))


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


def _writable(out: Path) -> None:
    """Refuse an output directory that cannot be written, before anything is issued: a licence
    recorded but never handed over must not happen."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".zhengyin-write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise fail(f"cannot write into {out}: {exc.strerror or exc}", EXIT_BAD_INPUT) from None


def _issuer(issuer: str | None) -> str:
    if issuer is not None:
        return issuer
    from keys_dev.domain import DEMO_DEPARTMENT_CODE

    return DEMO_DEPARTMENT_CODE


def _at_desk(home: Path | None, json_: bool, act):
    """Run ``act(desk)`` on the home's licence desk; invalid licence data is listed field by
    field (exit 6), every other refusal goes to the exit table."""
    from licences.catalogue import LicenceDataError

    td = TrustDomain.open(home)
    try:
        try:
            return act(td.licence_desk)
        except LicenceDataError as exc:
            problems = list(exc.errors)

            def render() -> None:
                for e in problems:
                    console.print(f"  {e.path}: {e.message_zh} / {e.message_en}", highlight=False)

            emit({"error": "invalid licence data", "errors": [e.as_dict() for e in problems]}, json_, render)
            raise typer.Exit(EXIT_BAD_INPUT) from None
    finally:
        td.close()


def _hand_over(issued, out: Path, json_: bool, verb: str) -> None:
    """Write the OFD and PDF into ``out`` and print what was issued."""
    stem = issued.identifier.replace(".", "_")
    ofd_path, pdf_path = out / f"{stem}.ofd", out / f"{stem}.pdf"
    ofd_path.write_bytes(issued.ofd)
    pdf_path.write_bytes(issued.pdf)
    result = {"identifier": issued.identifier, "previous_identifier": issued.previous_identifier,
              "ofd": str(ofd_path), "pdf": str(pdf_path), "qr": issued.qr}
    replaced = f" (replaces {issued.previous_identifier})" if issued.previous_identifier else ""
    emit(
        result,
        json_,
        lambda: console.print(f"{verb} [bold]{issued.identifier}[/]{replaced}\n  {ofd_path}\n  {pdf_path}"),
    )


ISSUER = Annotated[
    str | None,
    typer.Option("--issuer", help="the issuing department's credit code (default: the demo department)"),
]
OUT = Annotated[Path, typer.Option("--out", help="directory for the OFD and PDF")]


@app.command("issue")
def issue(
    type_code: Annotated[str, typer.Option("--type", help="licence type code (zhengyin licence types)")],
    data_file: Annotated[Path, typer.Option("--data", help="the licence data as a JSON object")],
    out: OUT,
    issuer: ISSUER = None,
    home: HOME = None,
    json_: JSON = False,
) -> None:
    """Issue one licence: validate, allocate the identifier, render, seal OFD and PDF, record."""
    data = _read_data(data_file)
    _writable(out)
    code = _issuer(issuer)
    issued = _at_desk(home, json_, lambda desk: desk.issue(type_code, data, issuer_code=code))
    _hand_over(issued, out, json_, "issued")


@app.command("change")
def change(
    identifier: Annotated[str, typer.Argument(help="the licence to change (its current version)")],
    data_file: Annotated[Path, typer.Option("--data", help="the changed licence data, whole, as JSON")],
    reason: Annotated[str, typer.Option("--reason", help="why (goes into both versions' history)")],
    out: OUT,
    issuer: ISSUER = None,
    home: HOME = None,
    json_: JSON = False,
) -> None:
    """Change a valid licence (变更): its next version with the new data; the old one is superseded."""
    data = _read_data(data_file)
    _writable(out)
    code = _issuer(issuer)
    issued = _at_desk(home, json_,
                      lambda desk: desk.change(identifier, data, issuer_code=code, reason=reason))
    _hand_over(issued, out, json_, "changed: issued")


@app.command("renew")
def renew(
    identifier: Annotated[str, typer.Argument(help="the licence to renew (valid or expired)")],
    out: OUT,
    data_file: Annotated[
        Path | None, typer.Option("--data", help="new licence data (default: the old data, a new validity)")
    ] = None,
    reason: Annotated[str | None, typer.Option("--reason", help="why (goes into the history)")] = None,
    issuer: ISSUER = None,
    home: HOME = None,
    json_: JSON = False,
) -> None:
    """Renew a licence (换证/延续): its next version with a new validity; the old one is superseded."""
    data = _read_data(data_file) if data_file is not None else None
    _writable(out)
    code = _issuer(issuer)
    issued = _at_desk(home, json_, lambda desk: desk.renew(identifier, data, issuer_code=code, reason=reason))
    _hand_over(issued, out, json_, "renewed: issued")


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
    status: Annotated[str | None, typer.Option(
        "--status", help="01 valid, 02 suspended, … (a code or a name; superseded for 99)")] = None,
    limit: Annotated[int, typer.Option(min=1, max=500)] = 50,
    page: Annotated[int, typer.Option(min=1)] = 1,
    home: HOME = None,
    json_: JSON = False,
) -> None:
    """One page of the licence library."""
    from licences.summary import parse_status_filter

    wanted = parse_status_filter(status) if status is not None else None
    td = TrustDomain.open(home)
    try:
        rows = [
            record_dict(r)
            for r in td.licences.licences(type_code=type_code, status=wanted, page=page, limit=limit)
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


def _expected_base(td: TrustDomain, base: str | None, certificates_given: bool) -> tuple[str | None, str]:
    """The verification base a code must open, and why there is none when there is none.

    ``--base`` decides when given. Otherwise the home's own base applies only when the home is
    configured (``zhengyin init`` wrote its zhengyin.toml) and its certificates are the ones
    judged: with ``--cert`` the codes are someone else's — another deployment's — and this
    home's address says nothing about where theirs must point."""
    if base is not None:
        return base, ""
    if certificates_given:
        return None, "--cert names the signers but no --base the public service they answer at"
    if not td.settings.config_path.exists():
        return None, f"the home {td.settings.home} is not configured (no {td.settings.config_path.name})"
    return td.qr_base, ""


def register(root: typer.Typer) -> None:
    @root.command("verify-qr")
    def verify_qr(
        text: Annotated[str, typer.Argument(help="the QR code's text (the URL it holds)")],
        cert: Annotated[
            list[Path] | None,
            typer.Option("--cert", help="published issuer certificates (PEM/DER); default: the home's"),
        ] = None,
        base: Annotated[
            str | None,
            typer.Option("--base", help="the public verification service's base the code must open, "
                                        "e.g. https://verify.example.gov.cn/V/ (default: the home's, "
                                        "unless --cert is given)"),
        ] = None,
        at: AT = None,
        home: HOME = None,
        json_: JSON = False,
    ) -> None:
        """Check a licence QR code offline: its signature, its signer, its validity and the
        address it opens (or says that the address was not judged)."""
        from ca.authority import certificate_of, utc_now
        from licences.qr_payload import QrPayloadError, verification_base, verify_qr_report

        try:
            certificates = [p.read_bytes() for p in cert or []]
        except OSError as exc:
            raise fail(f"cannot read a certificate: {exc.strerror or exc}", EXIT_BAD_INPUT) from None
        td = TrustDomain.open(home)
        try:
            # The code must open the public verification service (a valid payload behind
            # another address is a re-hosted, possibly phishing, QR code).
            expected_base, note = _expected_base(td, base, bool(certificates))
            if expected_base is not None:
                try:
                    verification_base(expected_base)
                except QrPayloadError as exc:
                    where = "--base" if base is not None else "the home's public URL ([public] url)"
                    raise fail(f"{where}: {exc}", EXIT_BAD_INPUT if base is not None else EXIT_CONFIG) \
                        from None
            if not certificates:
                # The home's signer certificates that are not revoked: a compromised key's QR codes
                # must not verify (a revoked signer is then simply unknown: INDETERMINATE).
                records = td.ca.certificates(profile="department-signer", include_revoked=False)
                certificates = [certificate_of(r).dump() for r in records]
        finally:
            td.close()
        report = verify_qr_report(text, certificates, parse_time_option(at, "--at") or utc_now(),
                                  expected_base=expected_base, base_note=note)
        emit(report, json_, lambda: console.print_json(json.dumps(report, ensure_ascii=False, default=str)))
        if not report.get("ok"):
            raise typer.Exit(EXIT_FAILED)
