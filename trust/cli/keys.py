"""``zhengyin keys``: list, generate, rotate, disable/enable/destroy and import keys."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from hsm.keystore import KeyVersion

from ..domain import TrustDomain
from .output import EXIT_FAILED, console, emit
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
def rotate(label: str, home: HOME = None, json_: JSON = False) -> None:
    """Add a new version and make it current; older versions stay for verification."""
    _show(TrustDomain.open(home).keys.rotate(label), json_, "rotated to")


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
    """Erase a version's private part for good; its public key stays for verification."""
    if not yes:
        raise typer.BadParameter("destroying a key cannot be undone; repeat with --yes")
    _show(TrustDomain.open(home).keys.destroy(label, version), json_, "destroyed")


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
