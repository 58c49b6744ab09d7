"""``zhengyin keys compromised --seal ESID --since TIME [--reissue]``: the compromise response.

Run once, it files the declaration for a second security officer (dual control): on approval
the seal's signer certificates are revoked (keyCompromise, invalidity date TIME) and the CRL
published. Run again (with the same TIME) it lists the affected licences — those the key signed
at or after TIME — and with ``--reissue`` re-keys the seal and issues each again as its next
version, with a progress bar and a report (trust/compromise.py). With dual control switched
off (development) one run does both.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from ..approvals import Approvals
from ..compromise import affected_licences, declared_certificates, reissue_affected
from ..dangerous_acts import SEAL_COMPROMISE
from ..domain import TrustDomain
from .approvals import emit_outcome
from .output import EXIT_FAILED, console, emit, errors
from .params import HOME, JSON, parse_time_option


def _render_affected(es_id: str, since: str, affected: list[dict]) -> None:
    console.print(f"{len(affected)} licence(s) signed with seal {es_id}'s compromised key at or after "
                  f"{since}:", highlight=False)
    for a in affected:
        note = f" (superseded by {a['superseded_by']})" if a["superseded_by"] else ""
        console.print(f"  {a['identifier']}  issued {a['issued_at'][:19]}  status {a['status']}{note}",
                      highlight=False)


def register(keys_app: typer.Typer) -> None:
    """Add ``compromised`` to ``zhengyin keys``."""
    keys_app.command("compromised")(compromised)


def compromised(
    seal: Annotated[str, typer.Option("--seal", metavar="ESID", help="the seal whose signer key leaked")],
    since: Annotated[str, typer.Option("--since", help="ISO 8601 time from which the key is known or "
                                                       "suspected to be compromised (the invalidity date)")],
    reissue: Annotated[bool, typer.Option(
        "--reissue", help="re-key the seal and re-issue every affected licence (after the declaration "
                          "is approved)")] = False,
    home: HOME = None,
    json_: JSON = False,
) -> None:
    """Declare a seal's key compromised since TIME; list (and --reissue) the licences it signed since."""
    when = parse_time_option(since, "--since")
    if when is None:  # --since is required; an empty value is no time either
        raise typer.BadParameter("give the time from which the key is compromised", param_hint="--since")
    domain = TrustDomain.open(home)
    try:
        _respond(domain, seal, when, reissue=reissue, json_=json_)
    finally:
        domain.close()


def _respond(domain: TrustDomain, seal: str, when: datetime, *, reissue: bool, json_: bool) -> None:
    record = domain.seals.find(seal)
    data: dict = {"esid": record.es_id, "since": when.isoformat()}
    if not declared_certificates(domain, record.es_id, when):
        outcome = Approvals(domain).request(SEAL_COMPROMISE.action, {"es_id": record.es_id,
                                                                      "since": when.isoformat()})
        if not outcome.executed:
            emit_outcome(outcome, json_,
                         f"declaring seal {record.es_id} compromised since {when.isoformat()}")
            if reissue and not json_:
                errors.print("re-issue after the approval: run this command again with --reissue",
                             highlight=False)
            return
        data["declaration"] = outcome.request.as_dict()
    affected = [a.as_dict() for a in affected_licences(domain, record.es_id, when)]
    data["affected"] = affected
    if not reissue:
        emit(data, json_, lambda: _render_affected(record.es_id, when.isoformat(), affected))
        return
    columns = (TextColumn("re-issuing"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.description}"))
    with Progress(*columns, console=errors, disable=json_ or not affected, transient=True) as bar:
        task = bar.add_task("", total=len(affected))

        def step(done: int, total: int, identifier: str, outcome: str) -> None:
            bar.update(task, completed=done, description=f"{identifier} {outcome}")

        report = reissue_affected(domain, record.es_id, when, progress=step)
    data["reissue"] = report.as_dict()

    def render() -> None:
        _render_affected(record.es_id, when.isoformat(), affected)
        if report.rotation:
            console.print(f"seal {record.es_id} re-keyed: certificate(s) "
                          f"{', '.join(report.rotation.get('new_certificates', []))}", highlight=False)
        for warning in report.warnings:
            errors.print(f"[yellow]warning[/]: {warning}", highlight=False)
        console.print(f"re-issued {len(report.reissued)}, skipped {len(report.skipped)}, "
                      f"failed {len(report.failed)}", highlight=False)
        for r in report.reissued:
            console.print(f"  {r['old']} -> {r['new']}", highlight=False)
        for r in report.skipped:
            console.print(f"  skipped {r['identifier']}: {r['reason']}", highlight=False)
        for r in report.failed:
            console.print(f"  [red]failed[/] {r['identifier']}: {r['error']}", highlight=False)

    emit(data, json_, render)
    if not report.complete:
        raise typer.Exit(EXIT_FAILED)
