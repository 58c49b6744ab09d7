"""``zhengyin seal``: make, list, show, activate, suspend, resume, revoke, export."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from ca.authority import utc_now
from ca.validation import name_text
from hsm.errors import ASN1_PARSE_ERRORS
from seals.errors import SealFormatError
from seals.lifecycle import SealKind, SealRefused, SealRequestError
from seals.office import CERTIFICATE_REVOCATION_REASON, DEFAULT_VALID_DAYS
from seals.picture import SealPictureError, inspect_picture
from seals.seal import MAX_SEAL_SIZE, Seal, read_seal
from seals.verification import load_certificate, maker_signature_check, subject_text

from ..domain import TrustDomain
from .output import EXIT_FAILED, console, emit
from .params import HOME, JSON

app = typer.Typer(help="The seal registry: GB/T 38540 e-seals of the home's departments.",
                  no_args_is_help=True)

REASON = Annotated[str | None, typer.Option("--reason", help="why (recorded in the seal's history "
                                                               "and the audit log)")]
KINDS = ", ".join(k.value for k in SealKind)


def _iso(moment) -> str | None:
    return moment.isoformat() if moment is not None else None


def record_dict(record, now=None) -> dict[str, Any]:
    """One registry entry as the JSON of ``seal list`` and ``seal show``."""
    now = now or utc_now()
    return {
        "esid": record.es_id, "name": record.name, "type": record.seal_type, "kind": record.kind,
        "department": record.department, "credit_code": record.credit_code, "holder": record.holder,
        "status": record.status_at(now).value, "recorded_status": record.status,
        "status_changed_at": _iso(record.status_changed_at), "status_reason": record.status_reason,
        "applied_at": _iso(record.applied_at), "made_at": _iso(record.made_at),
        "valid_start": _iso(record.valid_start), "valid_end": _iso(record.valid_end),
        "fingerprint_sm3": record.fingerprint,
        "certificates": [c.serial for c in record.certificates],
        "picture": {"type": record.picture_type, "width_mm": record.width_mm, "height_mm": record.height_mm}
        if record.picture_type else None,
    }


def _certificate_dict(der: bytes) -> dict[str, Any]:
    cert = load_certificate(der)
    if cert is None:
        return {"readable": False, "size": len(der)}
    try:
        validity = cert["tbs_certificate"]["validity"]
        not_before, not_after = validity["not_before"].native, validity["not_after"].native
    except ASN1_PARSE_ERRORS:
        not_before = not_after = None
    try:
        issuer = name_text(cert.issuer)
    except ASN1_PARSE_ERRORS:
        issuer = "(undecodable issuer name)"
    return {"readable": True, "subject": subject_text(cert), "issuer": issuer,
            "serial": format(cert.serial_number, "x"),
            "not_before": _iso(not_before), "not_after": _iso(not_after)}


def _picture_dict(seal: Seal) -> dict[str, Any]:
    picture = seal.picture
    data: dict[str, Any] = {"type": picture.type, "width_mm": picture.width_mm,
                            "height_mm": picture.height_mm, "bytes": len(picture.data)}
    try:
        facts = inspect_picture(picture.type, picture.data)
    except SealPictureError as exc:
        return data | {"problem": str(exc)}
    return data | {"actual_type": facts.actual_type, "type_matches": facts.type_matches,
                   "width_px": facts.width_px, "height_px": facts.height_px}


def seal_dict(seal: Seal) -> dict[str, Any]:
    """What a seal says about itself, and whether its maker's signature verifies."""
    check = maker_signature_check(seal)
    return {
        "esid": seal.es_id, "name": seal.name, "type": seal.seal_type, "layout": seal.layout,
        "header_version": seal.header_version, "vid": seal.vid, "ber": seal.ber,
        "create_date": _iso(seal.create_date), "valid_start": _iso(seal.valid_start),
        "valid_end": _iso(seal.valid_end), "cert_list_type": seal.cert_list_type,
        "certificates": [_certificate_dict(c) for c in seal.certificates],
        "cert_digests": [{"algorithm": d.algorithm, "value": d.value.hex()} for d in seal.cert_digests],
        "picture": _picture_dict(seal),
        "maker": _certificate_dict(seal.maker_certificate) | {"algorithm": seal.maker_algorithm},
        "maker_signature": {"ok": check.ok, "detail": check.detail, "code": check.code},
        "size": len(seal.encoded),
    }


def _read_file(path: Path) -> Seal:
    size = path.stat().st_size
    if size > MAX_SEAL_SIZE:
        raise SealRequestError(f"{path} is {size} bytes; a seal file is at most {MAX_SEAL_SIZE}")
    try:
        return read_seal(path.read_bytes())
    except SealFormatError as exc:
        raise SealFormatError(f"{path} is not a readable seal: {exc}") from None


def _looks_like_path(target: str) -> bool:
    return "/" in target or "\\" in target or target.lower().endswith((".esl", ".der", ".dat"))


def _render_record(record, verb: str, out: Path | None = None) -> None:
    line = (f"{verb} [bold]{record.name}[/] ({record.es_id})\n  {record.kind}, type {record.seal_type}, "
            f"status {record.status_at(utc_now()).value}")
    if record.valid_end is not None:
        line += f", valid {record.valid_start:%Y-%m-%d} .. {record.valid_end:%Y-%m-%d}"
    if out is not None:
        line += f"\n  written to {out}"
    console.print(line, highlight=False)


@app.command()
def make(
    department: Annotated[str, typer.Option("--department", help="department name as printed on the seal")],
    credit_code: Annotated[str, typer.Option("--credit-code", help="its unified social credit code")],
    kind: Annotated[str, typer.Option("--kind", help=KINDS)],
    name: Annotated[str | None, typer.Option("--name", help="seal name (default: department + kind, "
                                             "e.g. …电子证照专用章)")] = None,
    holder: Annotated[str | None, typer.Option("--holder", help="the legal representative's name "
                                               "(kind legal_representative only)")] = None,
    valid_days: Annotated[int, typer.Option("--valid-days", help="validity in days")] = DEFAULT_VALID_DAYS,
    no_activate: Annotated[bool, typer.Option("--no-activate", help="stop at made; activate later")] = False,
    out: Annotated[Path | None, typer.Option("--out", help="also write the seal (DER .esl) here")] = None,
    home: HOME = None, json_: JSON = False,
) -> None:
    """Apply for, approve, make and activate a seal in one go, each step recorded.

    In a real deployment the approval is another person's act, recorded under their name;
    this command records all steps under the caller, so use it only where one officer may.
    """
    office = TrustDomain.open(home).seals
    record = office.apply(department, credit_code, kind, name=name, holder=holder, valid_days=valid_days)
    office.approve(record.es_id, reason="approved by the maker (zhengyin seal make)")
    record = office.make(record.es_id)
    if not no_activate:
        record = office.activate(record.es_id)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(record.der)
    emit(record_dict(record) | ({"written_to": str(out)} if out else {}), json_,
         lambda: _render_record(record, "made", out))


@app.command("list")
def list_seals(
    department: Annotated[str | None, typer.Option("--department",
                                                   help="the department's credit code")] = None,
    status: Annotated[str | None, typer.Option("--status", help="applied, approved, made, active, "
                                               "suspended, revoked or expired")] = None,
    home: HOME = None, json_: JSON = False,
) -> None:
    """The registered seals, with their status now."""
    now = utc_now()
    rows = [record_dict(r, now) for r in TrustDomain.open(home).seals.seals(department, status, now=now)]

    def render() -> None:
        table = Table("esID", "name", "kind", "status", "valid until")
        for r in rows:
            table.add_row(r["esid"], r["name"], r["kind"], r["status"], (r["valid_end"] or "")[:10])
        console.print(table)

    emit(rows, json_, render)


@app.command()
def show(target: Annotated[str, typer.Argument(help="a seal file (.esl) or a registered seal's esID")],
         home: HOME = None, json_: JSON = False) -> None:
    """A seal's fields, certificates, picture and whether its maker's signature verifies (exit 1 if not)."""
    path = Path(target)
    registry: dict[str, Any] = {}
    if path.is_file():
        seal, source = _read_file(path), {"source": "file", "file": str(path)}
    elif _looks_like_path(target):
        raise SealRequestError(f"seal file {target} does not exist")
    else:
        office = TrustDomain.open(home).seals
        record = office.find(target)
        registry = record_dict(record) | {"events": [
            {"from": e.from_status, "to": e.to_status, "actor": e.actor, "at": _iso(e.at), "reason": e.reason}
            for e in office.events(record.es_id)]}
        if record.der is None:
            emit({"source": "registry", "registry": registry}, json_, lambda: _render_record(record, "seal"))
            return
        seal, source = read_seal(record.der), {"source": "registry"}
    data = source | seal_dict(seal) | ({"registry": registry} if registry else {})

    def render() -> None:
        ok = data["maker_signature"]["ok"]
        console.print(f"[bold]{seal.name}[/] ({seal.es_id}), type {seal.seal_type}, {seal.layout} "
                      f"(header version {seal.header_version}, vid {seal.vid})", highlight=False)
        if registry:
            console.print(f"  registry: {registry['kind']}, status {registry['status']}, "
                          f"{registry['department']} {registry['credit_code']}", highlight=False)
        console.print(f"  valid {data['valid_start']} .. {data['valid_end']}", highlight=False)
        for cert in data["certificates"]:
            console.print(f"  signer: {cert.get('subject', '(unreadable)')}, serial {cert.get('serial')}, "
                          f"{cert.get('not_before')} .. {cert.get('not_after')}", highlight=False)
        for digest in data["cert_digests"]:
            console.print(f"  signer digest: {digest['algorithm']} {digest['value']}", highlight=False)
        picture = data["picture"]
        console.print(f"  picture: {picture['type']}, {picture['width_mm']} × {picture['height_mm']} mm"
                      + (f" ({picture['problem']})" if "problem" in picture else ""), highlight=False)
        console.print(f"  maker: {data['maker'].get('subject', '(unreadable)')}", highlight=False)
        mark = "[green]verifies[/]" if ok else "[red]DOES NOT VERIFY[/]"
        console.print(f"  maker signature {mark}: {data['maker_signature']['detail']}", highlight=False)

    emit(data, json_, render)
    if not data["maker_signature"]["ok"]:
        raise typer.Exit(EXIT_FAILED)


@app.command()
def activate(es_id: Annotated[str, typer.Argument(metavar="ESID")], home: HOME = None,
             json_: JSON = False) -> None:
    """Put a made seal (one from `seal make --no-activate`) into use."""
    record = TrustDomain.open(home).seals.activate(es_id)
    emit(record_dict(record), json_, lambda: _render_record(record, "activated"))


@app.command()
def suspend(es_id: Annotated[str, typer.Argument(metavar="ESID")], reason: REASON = None,
            home: HOME = None, json_: JSON = False) -> None:
    """Stop signing with a seal for now (resume undoes it)."""
    record = TrustDomain.open(home).seals.suspend(es_id, reason or "unspecified")
    emit(record_dict(record), json_, lambda: _render_record(record, "suspended"))


@app.command()
def resume(es_id: Annotated[str, typer.Argument(metavar="ESID")], reason: REASON = None,
           home: HOME = None, json_: JSON = False) -> None:
    """Let a suspended seal sign again."""
    record = TrustDomain.open(home).seals.resume(es_id, reason)
    emit(record_dict(record), json_, lambda: _render_record(record, "resumed"))


@app.command()
def revoke(
    es_id: Annotated[str, typer.Argument(metavar="ESID")], reason: REASON = None,
    certificate_reason: Annotated[str, typer.Option(
        "--certificate-reason", help="RFC 5280 reason for revoking its signer certificates "
        "(key_compromise after a compromise)")] = CERTIFICATE_REVOCATION_REASON,
    home: HOME = None, json_: JSON = False,
) -> None:
    """Withdraw a seal for good; its signer certificates are revoked too.

    Under dual control: files a request that a second security officer approves
    (`zhengyin approvals approve ID`); the seal is revoked then."""
    from ..approvals import Approvals
    from ..dangerous_acts import SEAL_REVOKE
    from .approvals import emit_outcome

    outcome = Approvals(TrustDomain.open(home)).request(SEAL_REVOKE.action, {
        "es_id": es_id, "reason": reason, "certificate_reason": certificate_reason})
    emit_outcome(outcome, json_, f"revoking seal {es_id}")


@app.command()
def export(es_id: Annotated[str, typer.Argument(metavar="ESID")],
           out: Annotated[Path, typer.Option("--out", help="the file to write (DER .esl)")],
           home: HOME = None, json_: JSON = False) -> None:
    """Write a made seal's SESeal (DER), exactly as its maker signed it."""
    record = TrustDomain.open(home).seals.find(es_id)
    if record.der is None:
        raise SealRefused(f"seal {record.es_id} is {record.status}: it has not been made yet")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(record.der)
    emit(record_dict(record) | {"written_to": str(out), "size": len(record.der)}, json_,
         lambda: _render_record(record, "exported", out))
