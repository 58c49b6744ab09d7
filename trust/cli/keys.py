"""``zhengyin keys``: list, generate, rotate, disable/enable/destroy and import keys; rotate a
seal's key (``rotate --seal``) and list the keys the rotation policy says are due (``due``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from hsm.keystore import KeyVersion

from ..domain import TrustDomain
from .output import EXIT_FAILED, console, emit, errors
from .params import HOME, JSON

app = typer.Typer(help="Versioned SM2 keys in the home's key store.", no_args_is_help=True)


def key_dict(kv: KeyVersion) -> dict:
    return {"label": kv.label, "version": kv.version, "state": kv.state.value, "current": kv.current,
            "created": kv.created.isoformat(), "origin": kv.origin,
            "public_key": kv.public_key.encoded_point().hex()}


def _show(kv: KeyVersion, as_json: bool, verb: str) -> None:
    emit(key_dict(kv), as_json,
         lambda: console.print(f"{verb} [bold]{kv.label}[/] version {kv.version} ({kv.state.value})"))


@app.command("list")
def list_keys(home: HOME = None, json_: JSON = False) -> None:
    """Every version of every key, with its state; private parts are never shown."""
    domain = TrustDomain.open(home)
    rows = [key_dict(kv) for kv in domain.keys.list()]

    def render() -> None:
        table = Table("label", "version", "state", "current", "created", "origin")
        for r in rows:
            table.add_row(r["label"], str(r["version"]), r["state"], "*" if r["current"] else "",
                          r["created"][:19], r["origin"])
        console.print(table)

    emit(rows, json_, render)


@app.command()
def generate(label: str, home: HOME = None, json_: JSON = False) -> None:
    """Create a new key (version 1)."""
    _show(TrustDomain.open(home).keys.generate(label), json_, "generated")


@app.command()
def rotate(label: Annotated[str | None, typer.Argument(help="a raw key's label (or use --seal)")] = None,
           seal: Annotated[str | None, typer.Option(
               "--seal", metavar="ESID", help="rotate this seal's signer key: new key version, "
               "certificate and seal version, which signs from now on")] = None,
           revoke_old: Annotated[bool, typer.Option(
               "--revoke-old", help="with --seal: also revoke the old signer certificate(s) (reason "
               "superseded); by default they stay valid so that earlier documents verify without a "
               "proof of their signing time")] = False,
           reason: Annotated[str | None, typer.Option("--reason", help="with --seal: why (seal history, "
                                                      "audit log)")] = None,
           home: HOME = None, json_: JSON = False) -> None:
    """Add a new version of a key and make it current (older versions stay for verification);
    with --seal, rotate a seal's key: documents signed before keep verifying."""
    if (label is None) == (seal is None):
        raise typer.BadParameter("give exactly one of a key LABEL or --seal ESID")
    if seal is None:
        if revoke_old or reason is not None:
            raise typer.BadParameter("--revoke-old and --reason apply to --seal only")
        _show(TrustDomain.open(home).keys.rotate(label), json_, "rotated to")
        return
    from seals.rotation import RotationIncomplete, rotate_seal

    from ..dangerous_acts import request_superseded_revocations

    td = TrustDomain.open(home)
    left: list[str] = []
    revocations: list[dict] = []
    try:
        try:
            rotation = rotate_seal(td.seals, seal, reason=reason)
        except RotationIncomplete as exc:  # rotated: show it, say what is left, exit 1
            rotation, left = exc.rotation, [str(exc)]
        if revoke_old:  # revoking is under dual control: filed for a second officer
            revocations = request_superseded_revocations(td, rotation)
    finally:
        td.close()

    def render() -> None:
        console.print(f"seal [bold]{rotation.es_id}[/] rotated to version {rotation.new_version}: key "
                      f"{', '.join(rotation.new_keys)}, certificate {', '.join(rotation.new_certificates)}",
                      highlight=False)
        kept = "kept valid until it expires"
        if revocations:
            pending = [r["request_id"] for r in revocations if not r["executed"]]
            kept = (f"revocation (superseded) filed for a second officer: `zhengyin approvals approve "
                    f"{' / '.join(pending)}`") if pending else "revoked (superseded)"
        disabled = "disabled" if rotation.old_keys_disabled else "NOT disabled"
        console.print(f"old version {rotation.old_version}: key {', '.join(rotation.old_keys)} {disabled}, "
                      f"certificate {', '.join(rotation.old_certificates)} {kept}", highlight=False)
        console.print("run `zhengyin publish` so the trust list carries the new certificate", highlight=False)
        for warning in left:
            errors.print(f"[bold yellow]warning:[/] {warning}", highlight=False)

    emit(rotation.as_dict() | {"warnings": left, "revocation_requests": revocations}, json_, render)
    if left:
        raise typer.Exit(EXIT_FAILED)


@app.command()
def due(within: Annotated[int, typer.Option(
            "--within", min=0, max=36500, metavar="DAYS",
            help="also list keys that reach their maximum age within DAYS days")] = 0,
        home: HOME = None, json_: JSON = False) -> None:
    """The seal and CA keys older than the rotation policy allows ([rotation] in zhengyin.toml),
    or that will be within DAYS; exit 1 when any is due, 0 when none is."""
    from seals.rotation_policy import key_ages

    td = TrustDomain.open(home)
    try:
        policy = td.settings.rotation
        ages = key_ages(td.seals, policy)
    finally:
        td.close()
    listed = sorted((a for a in ages if a.due_within(within)), key=lambda a: a.due_at)
    data = {"within_days": within, "checked": len(ages), "due": [a.as_dict() for a in listed],
            "policy": {"seal_max_age_days": policy.seal_max_age_days,
                       "ca_max_age_days": policy.ca_max_age_days,
                       "seals": dict(policy.seal_overrides), "ca": dict(policy.ca_overrides)}}

    def render() -> None:
        if not listed:
            console.print(f"nothing due: {len(ages)} key(s) checked, none reaches its maximum age"
                          + (f" within {within} days" if within else ""), highlight=False)
            return
        console.print(f"{len(listed)} of {len(ages)} key(s) due for rotation:", highlight=False)
        for age in listed:
            when = "OVERDUE since" if age.overdue else "due"
            console.print(f"  {age.kind} {age.subject} ({age.name}): key {', '.join(age.keys)}, "
                          f"{age.age_days:.0f} days old, limit {age.max_age_days} days, {when} "
                          f"{age.due_at.date().isoformat()}; run: {age.command}", highlight=False)

    emit(data, json_, render)
    if listed:
        raise typer.Exit(EXIT_FAILED)


@app.command()
def disable(label: str, version: int, home: HOME = None, json_: JSON = False) -> None:
    """Stop a version from signing (it still verifies); reversible with enable."""
    _show(TrustDomain.open(home).keys.disable(label, version), json_, "disabled")


@app.command()
def enable(label: str, version: int, home: HOME = None, json_: JSON = False) -> None:
    """Allow a disabled version to sign again."""
    _show(TrustDomain.open(home).keys.enable(label, version), json_, "enabled")


@app.command()
def destroy(label: str, version: int,
            yes: bool = typer.Option(False, "--yes", help="confirm: the private part is erased for good"),
            home: HOME = None, json_: JSON = False) -> None:
    """Erase a version's private part for good; its public key stays for verification.

    Under dual control: files a request that a second security officer approves
    (`zhengyin approvals approve ID`); the key is destroyed then."""
    from ..approvals import Approvals
    from ..dangerous_acts import KEY_DESTROY
    from .approvals import emit_outcome

    if not yes:
        raise typer.BadParameter("destroying a key cannot be undone; repeat with --yes")
    outcome = Approvals(TrustDomain.open(home)).request(KEY_DESTROY.action,
                                                        {"label": label, "version": version})
    emit_outcome(outcome, json_, f"destroying {label} version {version}")


@app.command("import")
def import_key(label: str, file: Annotated[Path, typer.Argument(exists=True, dir_okay=False)],
               password_env: str = typer.Option(
                   None, help="name of the environment variable that holds the file's password"),
               new_version: bool = typer.Option(False, help="add to an existing label as a new version"),
               home: HOME = None, json_: JSON = False) -> None:
    """Import an SM2 key from PEM, PKCS#8 (encrypted or not), SEC1 or PKCS#12."""
    import os

    password = None
    if password_env:
        value = os.environ.get(password_env)
        if value is None:
            raise typer.BadParameter(f"environment variable {password_env} is not set")
        password = value.encode()
    kv = TrustDomain.open(home).keys.import_key(label, file.read_bytes(), password,
                                                 as_new_version=new_version)
    _show(kv, json_, "imported")


@app.command()
def rewrap(rotate_transit: bool = typer.Option(
               False, "--rotate-transit", help="first rotate the Vault Transit key that wraps the keys"),
           home: HOME = None, json_: JSON = False) -> None:
    """Rewrap every stored key under the newest Vault Transit key version (vault backend only).

    Run after rotating the Transit key (or pass --rotate-transit). When the report says
    "complete" (nothing skipped but fully destroyed versions) the Transit key's
    min_decryption_version can be raised to retire the old wrapping; otherwise the command
    lists what it could not rewrap and why, and exits with 1.
    """
    keys = TrustDomain.open(home).keys
    if getattr(keys, "backend", None) != "vault":
        raise typer.BadParameter("keys rewrap applies to the vault key backend (keys.backend = \"vault\"); "
                                 "this home uses the soft backend")
    if rotate_transit:
        keys.rotate_transit_key()
    result = keys.rewrap_all()
    data = {"transit_key": result.transit_key, "transit_version": result.transit_version,
            "rewrapped": [{"label": label, "version": v, "from_transit_version": t}
                          for label, v, t in result.rewrapped],
            "up_to_date": [{"label": label, "version": v} for label, v in result.up_to_date],
            "skipped": [{"label": label, "version": v, "reason": why} for label, v, why in result.skipped],
            "complete": result.complete}

    def render() -> None:
        console.print(f"transit key [bold]{result.transit_key}[/] is at version {result.transit_version}: "
                      f"{len(result.rewrapped)} rewrapped, {len(result.up_to_date)} already current, "
                      f"{len(result.skipped)} skipped")
        for label, version, why in result.skipped:
            console.print(f"  skipped {label} v{version}: {why}", highlight=False)
        if result.complete:
            console.print(f"the old wrapping can now be retired: set min_decryption_version="
                          f"{result.transit_version} on the Transit key")
        else:
            console.print("not complete: do not raise the Transit key's min_decryption_version yet")

    emit(data, json_, render)
    if not result.complete:
        raise typer.Exit(EXIT_FAILED)
