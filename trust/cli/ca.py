"""``zhengyin ca``: export, issue, renew, revoke, crl, list, show, verify."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from asn1crypto import pem
from rich.table import Table

from ca.authority import certificate_of, utc_now
from ca.certificates import load_certificate
from ca.crl import load_crl
from ca.errors import CaError, InvalidRequest
from ca.names import subject_name
from ca.validation import validate_path

from ..domain import TrustDomain
from .output import EXIT_FAILED, console, emit
from .params import HOME, JSON, parse_time_option

app = typer.Typer(help="The SM2 certificate authority of the home.", no_args_is_help=True)

OUT_FILE = Annotated[Path | None, typer.Option("--out", help="also write the certificate (PEM) here")]


def record_dict(record) -> dict:
    return {
        "serial": record.serial,
        "profile": record.profile,
        "subject": record.subject,
        "credit_code": record.credit_code,
        "key": f"{record.key_label}/v{record.key_version}" if record.key_label else None,
        "not_before": record.not_before.isoformat(),
        "not_after": record.not_after.isoformat(),
        "fingerprint_sm3": record.fingerprint,
        "status": "revoked" if record.revoked else "valid",
        "revoked_at": record.revoked_at.isoformat() if record.revoked_at else None,
        "revocation_reason": record.revocation_reason,
        "invalidity_date": record.invalidity_date.isoformat() if record.invalidity_date else None,
    }


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def _certificate_pem(record) -> bytes:
    return pem.armor("CERTIFICATE", record.der)


def _show_record(record, as_json: bool, verb: str, out: Path | None = None) -> None:
    if out is not None:
        _write(out, _certificate_pem(record))
    data = record_dict(record) | ({"written_to": str(out)} if out else {})
    emit(
        data,
        as_json,
        lambda: console.print(
            f"{verb} [bold]{record.subject}[/]\n  serial {record.serial}, profile {record.profile}, "
            f"valid until {record.not_after:%Y-%m-%d %H:%M:%S} UTC" + (f"\n  written to {out}" if out else "")
        ),
    )


@app.command()
def export(
    out: Annotated[Path, typer.Option("--out", help="directory to write into")],
    home: HOME = None,
    json_: JSON = False,
) -> None:
    """Write root.pem, issuing.pem, chain.pem, seal-makers.pem and the current CRLs
    (crl.pem, root-crl.pem); trust-anchors.pem and intermediates.pem with every live CA
    certificate, and after a `ca rotate` each CA key's CRL (crl-v1.pem, root-crl-v2.pem, …)."""
    domain = TrustDomain.open(home)
    ca = domain.ca
    issuing, root = ca.issuing(), ca.root()
    if issuing is None or root is None:
        raise CaError("this home has no CA yet: run `zhengyin init`")
    crl, root_crl = ca.current_crls()
    files = {
        "root.pem": _certificate_pem(root),
        "issuing.pem": _certificate_pem(issuing),
        "chain.pem": _certificate_pem(issuing) + _certificate_pem(root),
        "crl.pem": pem.armor("X509 CRL", crl.der),
        "root-crl.pem": pem.armor("X509 CRL", root_crl.der),
    }
    # What a relying party needs for documents signed before a CA rotation too.
    live = {which: ca.live_ca_certificates(which) for which in ("root", "issuing")}
    files["trust-anchors.pem"] = b"".join(_certificate_pem(r) for r in live["root"])
    files["intermediates.pem"] = b"".join(_certificate_pem(r) for r in live["issuing"])
    for which, prefix in (("issuing", "crl"), ("root", "root-crl")):
        versions = {r.key_version for r in live[which]}
        if len(versions) > 1:
            for record in live[which]:
                if f"{prefix}-v{record.key_version}.pem" not in files:
                    files[f"{prefix}-v{record.key_version}.pem"] = pem.armor(
                        "X509 CRL", ca.current_crl(which, issuer=record).der)
    makers = ca.certificates(profile="seal-maker")
    if makers:  # relying parties accept seals from these makers only (zhengyin verify --seal-maker)
        files["seal-makers.pem"] = b"".join(_certificate_pem(m) for m in makers)
    for name, data in files.items():
        _write(out / name, data)
    result = {
        "directory": str(out.resolve()),
        "files": sorted(files),
        "root_serial": root.serial,
        "issuing_serial": issuing.serial,
        "crl_number": crl.number,
        "crl_next_update": crl.next_update.isoformat(),
    }
    emit(
        result,
        json_,
        lambda: console.print(
            f"wrote {', '.join(sorted(files))} to [bold]{out}[/] (CRL number {crl.number}, "
            f"next update {crl.next_update:%Y-%m-%d %H:%M} UTC)"
        ),
    )


@app.command()
def issue(
    profile: Annotated[
        str, typer.Option("--profile", help="department-signer, seal-maker, time-stamping or ocsp-responder")
    ],
    key: Annotated[str | None, typer.Option("--key", help="label of a key in the home's key store")] = None,
    key_version: Annotated[int | None, typer.Option("--key-version")] = None,
    csr: Annotated[Path | None, typer.Option("--csr", help="PKCS#10 request (PEM or DER)")] = None,
    cn: Annotated[str | None, typer.Option("--cn", help="common name")] = None,
    org: Annotated[str | None, typer.Option("--org", help="organisation (department) name")] = None,
    ou: Annotated[str | None, typer.Option("--ou", help="organisational unit")] = None,
    credit_code: Annotated[
        str | None, typer.Option("--credit-code", help="unified social credit code (18 characters)")
    ] = None,
    out: OUT_FILE = None,
    home: HOME = None,
    json_: JSON = False,
) -> None:
    """Issue an end-entity certificate from the issuing CA, for a store key or a CSR."""
    if csr is not None and not csr.is_file():
        raise InvalidRequest(f"CSR file {csr} does not exist")
    subject = None
    if cn is not None:
        subject = subject_name(cn, organisation=org, organisational_unit=ou, credit_code=credit_code)
    elif org or ou or credit_code:
        raise InvalidRequest("--org, --ou and --credit-code need --cn")
    elif csr is None:
        raise InvalidRequest("a subject is needed: give --cn (and --org, --credit-code)")
    record = TrustDomain.open(home).ca.issue(
        profile,
        subject,
        key_label=key,
        key_version=key_version,
        csr=csr.read_bytes() if csr is not None else None,
    )
    _show_record(record, json_, "issued", out)


@app.command()
def renew(serial: str, out: OUT_FILE = None, home: HOME = None, json_: JSON = False) -> None:
    """Issue a new certificate for the same subject and key holder (the key's current version)."""
    _show_record(TrustDomain.open(home).ca.renew(serial), json_, "renewed", out)


@app.command()
def revoke(
    serial: str,
    reason: Annotated[
        str,
        typer.Option(
            "--reason", help="RFC 5280 reason, e.g. key_compromise, superseded, cessation_of_operation"
        ),
    ] = "unspecified",
    invalidity_date: Annotated[
        str | None,
        typer.Option("--invalidity-date", help="when the key is known or suspected to have been compromised"),
    ] = None,
    home: HOME = None,
    json_: JSON = False,
) -> None:
    """Revoke a certificate for good and publish the issuing CA's CRL at once; OCSP answers "revoked".

    Under dual control: files a request that a second security officer approves
    (`zhengyin approvals approve ID`); the certificate is revoked then."""
    from ..approvals import Approvals
    from ..dangerous_acts import CA_REVOKE
    from .approvals import emit_outcome

    when = parse_time_option(invalidity_date, "--invalidity-date")
    outcome = Approvals(TrustDomain.open(home)).request(CA_REVOKE.action, {
        "serial": serial, "reason": reason, "invalidity_date": when.isoformat() if when else None})
    emit_outcome(outcome, json_, f"revoking certificate {outcome.request.subject.removeprefix('cert:')}")


@app.command()
def crl(
    out: Annotated[Path | None, typer.Option("--out", help="write the CRL (PEM) here")] = None,
    which: Annotated[str, typer.Option("--ca", help="issuing or root")] = "issuing",
    home: HOME = None,
    json_: JSON = False,
) -> None:
    """Publish a new CRL of the issuing (or root) CA now."""
    record = TrustDomain.open(home).ca.publish_crl(which)
    if out is not None:
        _write(out, pem.armor("X509 CRL", record.der))
    entries = len(load_crl(record.der)["tbs_cert_list"]["revoked_certificates"])
    data = {
        "number": record.number,
        "entries": entries,
        "this_update": record.this_update.isoformat(),
        "next_update": record.next_update.isoformat(),
        "written_to": str(out) if out else None,
    }
    emit(
        data,
        json_,
        lambda: console.print(
            f"published CRL number [bold]{record.number}[/] with {entries} entries, next update "
            f"{record.next_update:%Y-%m-%d %H:%M} UTC" + (f"; written to {out}" if out else "")
        ),
    )


@app.command("list")
def list_certificates(
    profile: Annotated[str | None, typer.Option("--profile")] = None, home: HOME = None, json_: JSON = False
) -> None:
    """Every certificate this CA issued, with its status."""
    rows = [record_dict(r) for r in TrustDomain.open(home).ca.certificates(profile=profile)]

    def render() -> None:
        table = Table("serial", "profile", "subject", "not after", "status")
        for r in rows:
            table.add_row(
                r["serial"][:16] + "…", r["profile"], r["subject"], r["not_after"][:10], r["status"]
            )
        console.print(table)

    emit(rows, json_, render)


@app.command()
def show(
    serial: str,
    pem_: Annotated[bool, typer.Option("--pem", help="print the certificate PEM")] = False,
    home: HOME = None,
    json_: JSON = False,
) -> None:
    """One certificate's registry entry (and its PEM)."""
    record = TrustDomain.open(home).ca.find(serial)
    data = record_dict(record) | ({"pem": _certificate_pem(record).decode()} if pem_ else {})

    def render() -> None:
        for k, v in record_dict(record).items():
            console.print(f"{k:>18}: {v}")
        if pem_:
            console.print(_certificate_pem(record).decode(), highlight=False)

    emit(data, json_, render)


@app.command()
def verify(
    certificate: Path,
    at: Annotated[str | None, typer.Option("--at", help="ISO 8601 time")] = None,
    home: HOME = None,
    json_: JSON = False,
) -> None:
    """Validate a certificate's path to this home's root, with the current CRL. Exit 1 if invalid."""
    if not certificate.is_file():
        raise InvalidRequest(f"certificate file {certificate} does not exist")
    ca = TrustDomain.open(home).ca
    ca.chain()  # a clear error on a home without a CA
    when = parse_time_option(at, "--at")
    # Every live CA certificate and each live CA key's CRL: after `ca rotate` the old ones still
    # vouch for what they signed.
    result = validate_path(
        load_certificate(certificate.read_bytes()),
        trust_anchors=[certificate_of(r) for r in ca.live_ca_certificates("root")],
        intermediates=[certificate_of(r) for r in ca.live_ca_certificates("issuing")],
        at=when or utc_now(),
        crls=[load_crl(c.der) for c in ca.live_crls().values()],
        revocation="require",
    )
    data = result.as_dict()

    def render() -> None:
        colour = "green" if result.ok else "red"
        console.print(f"[bold {colour}]{result.code}[/]")
        for check in result.checks:
            mark = "[green]ok[/]  " if check.ok else "[red]FAIL[/]"
            console.print(f"  {mark} {check.name}: {check.detail}", highlight=False)

    emit(data, json_, render)
    if not result.ok:
        raise typer.Exit(EXIT_FAILED)


@app.command()
def rotate(
    which: Annotated[str, typer.Argument(help="issuing or root")],
    home: HOME = None,
    json_: JSON = False,
) -> None:
    """Give the issuing (or root) CA a new key and certificate; the old one keeps vouching.

    Issuing: new certificates come from the new key; the old certificate stays listed in the
    trust list and its key keeps publishing the CRL of what it signed until it expires. Root: a
    new self-signed root and the issuing CA re-certified under it; relying parties trust both
    roots for the overlap. Run `zhengyin publish` afterwards so the trust list shows both.
    """
    rotation = TrustDomain.open(home).ca.rotate_ca(which)
    emit(rotation.as_dict(), json_, lambda: console.print(
        f"rotated the {which} CA: certificate [bold]{rotation.new.serial}[/] "
        f"({rotation.new.key_label}/v{rotation.new.key_version}) replaces {rotation.old.serial} for new "
        "issuance; the old one stays valid until it expires. Run `zhengyin publish` next."))
