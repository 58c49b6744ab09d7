"""``zhengyin audit``: check the hash chain and read entries."""

from __future__ import annotations

import typer
from rich.table import Table

from ..domain import TrustDomain
from .output import EXIT_FAILED, console, emit
from .params import HOME, JSON

app = typer.Typer(help="The append-only, hash-chained audit log.", no_args_is_help=True)


@app.command()
def verify(home: HOME = None, json_: JSON = False) -> None:
    """Recompute the whole chain; exit 1 and name the first bad entry if it is broken."""
    report = TrustDomain.open(home).audit.verify()

    def render() -> None:
        if report.ok:
            console.print(f"[green]audit chain intact[/]: {report.entries} entries, "
                          f"head {report.head_hash}")
        else:
            console.print(f"[bold red]audit chain broken[/] at entry {report.broken_at}: {report.problem}")

    emit(report.as_dict(), json_, render)
    if not report.ok:
        raise typer.Exit(EXIT_FAILED)


@app.command("list")
def list_entries(limit: int = typer.Option(50, min=1, max=10_000), action: str | None = None,
                 subject: str | None = None, home: HOME = None, json_: JSON = False) -> None:
    """The newest entries first."""
    rows = TrustDomain.open(home).audit.entries(action=action, subject=subject, limit=limit)
    data = [{"seq": r.seq, "at": r.at.isoformat(), "actor": r.actor, "action": r.action,
             "subject": r.subject, "details": r.details, "hash": r.hash} for r in rows]

    def render() -> None:
        table = Table("seq", "at", "actor", "action", "subject")
        for d in data:
            table.add_row(str(d["seq"]), d["at"][:19], d["actor"], d["action"], d["subject"])
        console.print(table)

    emit(data, json_, render)
