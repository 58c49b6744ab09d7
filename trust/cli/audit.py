"""``zhengyin audit``: check the hash chain, read entries, export them for an external auditor."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from ledger.audit import export_jsonl, verify_export

from ..domain import TrustDomain
from .output import EXIT_FAILED, console, emit
from .params import HOME, JSON, parse_time_option

app = typer.Typer(help="The append-only, hash-chained audit log.", no_args_is_help=True)


@app.command()
def verify(file: Annotated[Path | None, typer.Option(
               "--file", help="check an export (`audit export`) offline, not the home's database")] = None,
           head: Annotated[str | None, typer.Option(
               "--head", help="with --file: the head hash the source's `audit verify` printed")] = None,
           home: HOME = None, json_: JSON = False) -> None:
    """Recompute the whole chain; exit 1 and name the first bad entry if it is broken."""
    if file is not None:
        if not file.is_file():
            raise typer.BadParameter(f"{file} is not a file", param_hint="--file")
        with file.open(encoding="utf-8", errors="replace") as lines:
            report = verify_export(lines, expected_head=head)
    elif head is not None:
        raise typer.BadParameter("--head goes with --file", param_hint="--head")
    else:
        domain = TrustDomain.open(home)
        try:
            report = domain.audit.verify()
        finally:
            domain.close()

    def render() -> None:
        if report.ok:
            start = "" if report.first_seq is None else \
                f" from entry {report.first_seq} (after {report.after_hash})"
            console.print(f"[green]audit chain intact[/]: {report.entries} entries{start}, "
                          f"head {report.head_hash}", highlight=False)
        else:
            console.print(f"[bold red]audit chain broken[/] at entry {report.broken_at}: {report.problem}")

    emit(report.as_dict(), json_, render)
    if not report.ok:
        raise typer.Exit(EXIT_FAILED)


@app.command("list")
def list_entries(limit: int = typer.Option(50, min=1, max=10_000), action: str | None = None,
                 subject: str | None = None, home: HOME = None, json_: JSON = False) -> None:
    """The newest entries first."""
    domain = TrustDomain.open(home)
    try:
        rows = domain.audit.entries(action=action, subject=subject, limit=limit)
    finally:
        domain.close()
    data = [{"seq": r.seq, "at": r.at.isoformat(), "actor": r.actor, "action": r.action,
             "subject": r.subject, "details": r.details, "hash": r.hash} for r in rows]

    def render() -> None:
        table = Table("seq", "at", "actor", "action", "subject")
        for d in data:
            table.add_row(str(d["seq"]), d["at"][:19], d["actor"], d["action"], d["subject"])
        console.print(table)

    emit(data, json_, render)


@app.command()
def export(out: Annotated[Path, typer.Option("--out", help="the file to write")],
           since: Annotated[str | None, typer.Option(
               "--since", help="only entries from this ISO 8601 time")] = None,
           format_: Annotated[str, typer.Option("--format", help="jsonl (the only format)")] = "jsonl",
           home: HOME = None, json_: JSON = False) -> None:
    """Write the entries with their hash chain, for an auditor to re-verify offline
    (`zhengyin audit verify --file FILE --head HASH`, or SM3 by hand: see ledger.audit.export_jsonl)."""
    if format_ != "jsonl":
        raise typer.BadParameter("the only export format is jsonl", param_hint="--format")
    start = parse_time_option(since, "--since")
    domain = TrustDomain.open(home)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        partial = out.with_name(out.name + ".partial")
        with partial.open("w", encoding="utf-8") as handle:
            trailer = export_jsonl(domain.db, handle, since=start)
        partial.replace(out)  # a complete file or none
        domain.audit.record("audit.export", actor=domain.actor, subject="audit_log", details={
            "since": start.isoformat() if start else None, "entries": trailer["entries"],
            "head_hash": trailer["head_hash"], "first_seq": trailer["first_seq"], "file": str(out.resolve())})
    finally:
        domain.close()
    data = trailer | {"written_to": str(out)}
    emit(data, json_, lambda: console.print(
        f"exported {trailer['entries']} entries to [bold]{out}[/], head {trailer['head_hash']}",
        highlight=False))
