"""``zhengyin licence batch``: bulk conversion of legacy licences (存量证照), see :mod:`trust.batch`."""

from __future__ import annotations

import os
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Annotated

import typer

from .output import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_REFUSED, console, emit, errors, fail
from .params import HOME, JSON

EXIT_INTERNAL = 70


def batch(
    file: Annotated[Path, typer.Argument(help="the legacy records: FILE.jsonl or FILE.csv")],
    type_code: Annotated[str, typer.Option("--type", help="licence type code (zhengyin licence types)")],
    issuer: Annotated[
        str | None,
        typer.Option("--issuer", help="the issuing department's credit code (default: the demo department)"),
    ] = None,
    workers: Annotated[
        int | None, typer.Option("--workers", min=1, max=64, help="worker processes (default: the cores)")
    ] = None,
    report: Annotated[
        Path | None,
        typer.Option("--report", help="the report of rejected records (JSONL; default <stem>.report.jsonl)"),
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="also write each licence's OFD and PDF into this directory")
    ] = None,
    home: HOME = None,
    json_: JSON = False,
) -> None:
    """Issue a licence for every record of a legacy register, exactly once, resumable after a crash.

    JSONL: one {"source_id": ..., "data": {...}} per line. CSV: a header with a source_id column
    and one column per field (nested fields as dotted names, an empty cell is an absent field).
    Exit 0 when every record is issued or was issued before, 1 when some were rejected (the
    report says which: line, source_id and every reason in Chinese and English)."""
    from trust.batch import BatchAborted, BatchInputError, BatchRequest, default_report, preflight, run_batch

    from ..domain import TrustDomain

    if issuer is None:
        from keys_dev.domain import DEMO_DEPARTMENT_CODE

        issuer = DEMO_DEPARTMENT_CODE
    domain = TrustDomain.open(home)
    resolved_home, actor = str(domain.settings.home), domain.actor
    domain.close()
    request = BatchRequest(path=file, home=resolved_home, type_code=type_code, issuer_code=issuer,
                           workers=workers or os.cpu_count() or 1, report=report or default_report(file),
                           out=out, actor=actor)
    try:
        lines = preflight(request)
        if json_:
            summary = run_batch(request)
        else:
            summary = _with_progress(request, lines, run_batch)
    except BatchInputError as exc:
        raise fail(str(exc), EXIT_BAD_INPUT) from None
    except BatchAborted as exc:
        raise fail(f"the batch stopped: {exc}; what was issued stays issued, run the same command again "
                   f"to resume (report: {request.report})",
                   EXIT_REFUSED if exc.refused else EXIT_INTERNAL) from None
    except BrokenProcessPool:
        raise fail("a worker process died (out of memory, or killed); what was issued stays issued, "
                   f"run the same command again to resume (report: {request.report})",
                   EXIT_INTERNAL) from None
    result = summary.as_dict() | {"workers": request.workers}

    def render() -> None:
        console.print(f"read {summary.read}: issued {summary.issued}, already issued {summary.already}, "
                      f"rejected {summary.rejected} in {summary.elapsed:.1f} s; report: {request.report}",
                      highlight=False)

    emit(result, json_, render)
    if summary.rejected:
        raise typer.Exit(EXIT_FAILED)


def _with_progress(request, lines: int, run):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    columns = (TextColumn("[bold]licences[/]"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=errors, transient=False) as bar:
        header = 1 if request.path.suffix.lower() == ".csv" else 0
        task = bar.add_task("batch", total=max(lines - header, 1))
        summary = run(request, progress=lambda n: bar.advance(task, n))
        bar.update(task, total=summary.read, completed=summary.read)
    return summary
