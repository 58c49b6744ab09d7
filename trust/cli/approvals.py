"""``zhengyin approvals``: the second security officer's desk (list, show, approve, reject).

The dangerous commands (``keys destroy``, ``ca revoke``, ``seal revoke``, ``keys
compromised``) file a request and print its id; another officer approves it here and the act
runs then (trust/approvals.py). Each officer acts as their own login (the domain's actor).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

import typer
from rich.table import Table

from ..approvals import ApprovalRequest, Approvals, Outcome
from ..domain import TrustDomain
from .output import console, emit
from .params import HOME, JSON

app = typer.Typer(help="Dual control: requests for dangerous acts awaiting a second officer.",
                  no_args_is_help=True)

REQUEST_ID = Annotated[str, typer.Argument(metavar="ID", help="the request's id, as its command printed it")]
REASON = Annotated[str | None, typer.Option("--reason", help="why (recorded in the audit log)")]


def _render(row: ApprovalRequest) -> None:
    data = row.as_dict()
    console.print(f"request [bold]{row.id}[/]: {row.action} {row.subject} — {data['status']}",
                  highlight=False)
    console.print(f"  requested by {row.requested_by} at {data['requested_at'][:19]}, "
                  f"expires {data['expires_at'][:19]}", highlight=False)
    for key, value in (row.parameters or {}).items():  # what exactly is (or was) approved
        shown = ", ".join(map(str, value)) if isinstance(value, list) else value
        console.print(f"  {key}: {shown}", highlight=False)
    if row.decided_by:
        console.print(f"  decided by {row.decided_by} at {(data['decided_at'] or '')[:19]}"
                      + (f" ({row.decision_reason})" if row.decision_reason else ""), highlight=False)
    if row.result:
        for key, value in row.result.items():
            if not isinstance(value, list | dict):
                console.print(f"  {key}: {value}", highlight=False)


def emit_outcome(outcome: Outcome, as_json: bool, what: str,
                 executed: Callable[[ApprovalRequest], None] | None = None) -> None:
    """What a dangerous command prints: the request filed (and how to approve it), or, with dual
    control off in development, the act's result."""
    row = outcome.request
    if outcome.executed:
        emit(row.as_dict(), as_json, (lambda: executed(row)) if executed else (lambda: _render(row)))
        return

    def render() -> None:
        console.print(f"{what}: request [bold]{row.id}[/] filed; it takes effect when a second security "
                      f"officer approves it with `zhengyin approvals approve {row.id}` "
                      f"(before {row.expires_at:%Y-%m-%d %H:%M} UTC)", highlight=False)

    emit(row.as_dict() | {"pending_approval": True}, as_json, render)


@app.command("list")
def list_requests(status: Annotated[str | None, typer.Option(
                      "--status", help="pending, approved, executed, failed, rejected or expired")] = None,
                  limit: int = typer.Option(100, min=1, max=10_000), home: HOME = None,
                  json_: JSON = False) -> None:
    """Requests, newest first (a pending request past its expiry shows as expired)."""
    domain = TrustDomain.open(home)
    try:
        rows = Approvals(domain).list(status=status, limit=limit)
    finally:
        domain.close()
    data = [r.as_dict() for r in rows]

    def render() -> None:
        table = Table("id", "action", "subject", "status", "requested by", "requested", "expires")
        for d in data:
            table.add_row(d["id"], d["action"], d["subject"], d["status"], d["requested_by"],
                          d["requested_at"][:19], d["expires_at"][:19])
        console.print(table)

    emit(data, json_, render)


@app.command()
def show(request_id: REQUEST_ID, home: HOME = None, json_: JSON = False) -> None:
    """One request, its parameters and outcome."""
    domain = TrustDomain.open(home)
    try:
        row = Approvals(domain).find(request_id)
    finally:
        domain.close()
    emit(row.as_dict(), json_, lambda: _render(row))


@app.command()
def approve(request_id: REQUEST_ID, reason: REASON = None, home: HOME = None, json_: JSON = False) -> None:
    """Approve another officer's request: the act runs now, once."""
    domain = TrustDomain.open(home)
    try:
        row = Approvals(domain).approve(request_id, reason=reason)
    finally:
        domain.close()
    emit(row.as_dict(), json_, lambda: _render(row))


@app.command()
def reject(request_id: REQUEST_ID, reason: REASON = None, home: HOME = None, json_: JSON = False) -> None:
    """Reject a pending request (the requester may withdraw their own)."""
    domain = TrustDomain.open(home)
    try:
        row = Approvals(domain).reject(request_id, reason=reason)
    finally:
        domain.close()
    emit(row.as_dict(), json_, lambda: _render(row))
