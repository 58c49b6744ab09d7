"""``zhengyin init`` and ``zhengyin demo``."""

from __future__ import annotations

import typer

from ..bootstrap import initialise
from .output import console, emit
from .params import HOME, JSON


def register(app: typer.Typer) -> None:
    app.command()(init)


def init(home: HOME = None, json_: JSON = False) -> None:
    """Create a complete development trust domain in the home (idempotent)."""
    report = initialise(home)

    def render() -> None:
        console.print(f"home: [bold]{report.home}[/]")
        for item in report.created:
            console.print(f"  [green]created[/]  {item}")
        for item in report.existing:
            console.print(f"  [dim]exists[/]   {item}")

    emit(report.as_dict(), json_, render)
