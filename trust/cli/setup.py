"""``zhengyin init`` and ``zhengyin demo``."""

from __future__ import annotations

import typer

from ..bootstrap import initialise
from .output import EXIT_FAILED, console, emit
from .params import HOME, JSON


def register(app: typer.Typer) -> None:
    app.command()(init)
    app.command()(demo)


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


def demo(home: HOME = None, json_: JSON = False) -> None:
    """The main job on embedded defaults: build the dev domain, export it, check it independently."""
    from ..demo import run_demo

    report = run_demo(home)

    def render() -> None:
        console.print(f"home: [bold]{report.init.home}[/] "
                      f"({len(report.init.created)} items created, {len(report.init.existing)} existing)")
        for step in report.steps:
            mark = "[green]ok[/]  " if step.ok else "[red]FAIL[/]"
            console.print(f"  {mark} {step.name}: {step.detail}", highlight=False)
        console.print("[bold green]demo passed[/]" if report.ok else "[bold red]demo failed[/]")

    emit(report.as_dict(), json_, render)
    if not report.ok:
        raise typer.Exit(EXIT_FAILED)
