"""Dual control (四眼原则): the dangerous acts wait for a second security officer.

Destroying a key version, revoking a CA or seal certificate (revoking a seal) and declaring a
seal key compromised cannot be undone, and one officer's stolen login must not be enough to
do them. So the command that asks for one does not act: it files an :class:`ApprovalRequest`
(who, what, with which parameters, when, valid for :data:`DEFAULT_VALIDITY`) and prints its id.
The act runs when a *different* officer approves it — once: approving is a conditional update
from ``pending`` that only one caller can win, so two approvers racing (or one approving
twice) execute it once. The requester's identity does not count as a second pair of eyes; an
expired request cannot be approved; any officer may reject a pending one (the requester
withdrawing it included). Every request, approval, rejection, expiry and execution is in the
audit log, with both officers' identities.

What the act does is checked twice: when it is requested (an unknown key, a certificate
already revoked, a bad reason — refused at once, nothing filed) and again by the act itself
when it runs, since the world may have moved in between (a failure then is recorded as the
request's outcome, ``failed``).

The acts and their checks are in :mod:`trust.dangerous_acts`; this module is the desk.

Who an officer is: the OS account (trust.domain.default_actor), and in production only the
accounts listed in ``[officers] names`` (never root) may request, approve or reject
(:func:`check_officer`).

In development a demo may switch dual control off (``ZHENGYIN_DUAL_CONTROL=off``): the act
then runs at once, and the audit log says it ran without a second officer. In production the
switch is refused: dual control is always on.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import JSON, String, Text, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from ledger.config import ConfigError, Settings
from ledger.database import Base, UtcDateTime

from .domain import TrustDomain

#: How long a request waits for its second officer.
DEFAULT_VALIDITY = timedelta(hours=24)
MAX_VALIDITY = timedelta(days=7)
MAX_REASON_CHARS = 500
DUAL_CONTROL_VARIABLE = "ZHENGYIN_DUAL_CONTROL"
_OFF = ("off", "0", "false", "no")
_SEE_LIST = "see `zhengyin approvals list`"

PENDING, APPROVED, EXECUTED, FAILED = "pending", "approved", "executed", "failed"
REJECTED, EXPIRED = "rejected", "expired"
STATUSES = (PENDING, APPROVED, EXECUTED, FAILED, REJECTED, EXPIRED)


class ApprovalError(Exception):
    """Base of the dual-control errors."""


class ApprovalNotFound(ApprovalError):
    def __init__(self, request_id: str):
        super().__init__(f"no approval request {request_id!r}: see `zhengyin approvals list`")


class ApprovalRefused(ApprovalError):
    """The request exists but cannot be approved or rejected (now, or by this officer)."""


class ApprovalRequestError(ApprovalError):
    """What was asked for cannot be done as given (unknown act, bad parameters)."""


class ApprovalRequest(Base):
    __tablename__ = "approval_request"

    id: Mapped[str] = mapped_column(String(16), primary_key=True)
    action: Mapped[str] = mapped_column(String(32), index=True)
    subject: Mapped[str] = mapped_column(String(300))
    parameters: Mapped[dict[str, Any]] = mapped_column(JSON)
    requested_by: Mapped[str] = mapped_column(String(200))
    requested_at: Mapped[datetime] = mapped_column(UtcDateTime)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime)
    status: Mapped[str] = mapped_column(String(16), index=True)
    #: ``action/subject`` while pending, else None (unique: one pending request per act).
    one_pending: Mapped[str | None] = mapped_column(String(340), unique=True)
    decided_by: Mapped[str | None] = mapped_column(String(200))
    decided_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    decision_reason: Mapped[str | None] = mapped_column(Text)
    executed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)

    def status_at(self, now: datetime) -> str:
        """The status as it stands at ``now``: a pending request past its expiry is expired."""
        return EXPIRED if self.status == PENDING and now >= self.expires_at else self.status

    def as_dict(self, now: datetime | None = None) -> dict[str, Any]:
        now = now or _now()

        def iso(moment: datetime | None) -> str | None:
            return moment.isoformat() if moment else None

        return {"id": self.id, "action": self.action, "subject": self.subject,
                "parameters": self.parameters, "status": self.status_at(now),
                "requested_by": self.requested_by, "requested_at": iso(self.requested_at),
                "expires_at": iso(self.expires_at), "decided_by": self.decided_by,
                "decided_at": iso(self.decided_at), "decision_reason": self.decision_reason,
                "executed_at": iso(self.executed_at), "result": self.result}


@dataclass(frozen=True)
class DangerousAct:
    """One kind of act under dual control: how to check a request for it and how to run it."""

    action: str
    describe: str
    #: (domain, parameters) -> (subject, normalised parameters); raises on what cannot be done.
    check: Callable[[TrustDomain, dict[str, Any]], tuple[str, dict[str, Any]]]
    #: (domain acting as both officers, parameters) -> a JSON-able result.
    run: Callable[[TrustDomain, dict[str, Any]], dict[str, Any]]


_ACTS: dict[str, DangerousAct] = {}


def register_act(act: DangerousAct) -> DangerousAct:
    """Put an act under dual control (the acts of this module register themselves below)."""
    _ACTS[act.action] = act
    return act


def act_named(action: str) -> DangerousAct | None:
    """The registered act ``action`` (the acts of trust.dangerous_acts register on first use)."""
    from . import dangerous_acts  # noqa: F401 - registers the acts this service has

    return _ACTS.get(action)


def _now() -> datetime:
    return datetime.now(UTC)


def dual_control_required(settings: Settings) -> bool:
    """True unless a development home switched it off; production refuses the switch."""
    value = os.environ.get(DUAL_CONTROL_VARIABLE, "on").strip().lower()
    if value not in (*_OFF, "on", "1", "true", "yes"):
        raise ConfigError(f"{DUAL_CONTROL_VARIABLE} must be on or off, not {value!r}")
    if value in _OFF:
        if settings.production:
            raise ConfigError("dual control cannot be switched off in production "
                              f"(unset {DUAL_CONTROL_VARIABLE})")
        return False
    return True


def reason_text(value: str | None) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > MAX_REASON_CHARS or not value.strip():
        raise ApprovalRequestError(f"a reason must be text of 1 to {MAX_REASON_CHARS} characters")
    return value.strip()


@dataclass(frozen=True)
class Outcome:
    """What asking for a dangerous act did: filed a request, or (dual control off) ran it."""

    request: ApprovalRequest
    executed: bool

    @property
    def result(self) -> dict[str, Any] | None:
        return self.request.result


#: The account that may never act as a security officer: it can become anyone.
SUPERUSER = "root"
CLI_PREFIX = "cli:"


def check_officer(settings: Settings, actor: str, *, deciding: bool) -> None:
    """In production, refuse an actor who is not a configured security officer.

    A command-line actor (``cli:<OS account>``, trust.domain.default_actor) must be listed in
    ``[officers] names`` and not root. A request may also come from the HTTP service under an
    officer's API key (``api:<key id>``: the service authenticated it and checked its role);
    deciding — approving or rejecting — is for a listed OS account only. In development
    anyone may act (tests and demos play the officers).
    """
    if not settings.production:
        return
    if not actor.startswith(CLI_PREFIX):
        if deciding or not actor.startswith("api:"):
            raise ApprovalRefused(f"{actor} cannot decide requests: a security officer approves or rejects "
                                  "them with `zhengyin approvals` under their own OS account")
        return
    account = actor[len(CLI_PREFIX):]
    if account == SUPERUSER or account == "0":
        raise ApprovalRefused("root cannot act as a security officer: run `zhengyin` under your own "
                              "OS account, listed in [officers] names")
    if not settings.officers:
        raise ApprovalRefused(f"no security officers are configured: list their OS accounts in [officers] "
                              f"names of {settings.config_path}")
    if account not in settings.officers:
        raise ApprovalRefused(f"the OS account {account!r} is not a security officer of this home "
                              f"([officers] names of {settings.config_path})")


class Approvals:
    """The approval desk of one domain: filing, approving, rejecting and listing requests."""

    def __init__(self, domain: TrustDomain):
        self.domain = domain
        self.db, self.audit, self.actor = domain.db, domain.audit, domain.actor

    def _officer(self, *, deciding: bool, subject: str = "approvals") -> None:
        try:
            check_officer(self.domain.settings, self.actor, deciding=deciding)
        except ApprovalRefused as exc:
            self.audit.record("approval.refused", actor=self.actor, subject=subject,
                              details={"why": str(exc)[:300]})
            raise

    # ---- asking ------------------------------------------------------------------------------
    def request(self, action: str, parameters: dict[str, Any], *, validity: timedelta = DEFAULT_VALIDITY,
                now: datetime | None = None) -> Outcome:
        """File a request for ``action`` (checked now); with dual control off, run it at once."""
        act = act_named(action)
        if act is None:
            raise ApprovalRequestError(f"{action!r} is not an act under dual control; "
                                       f"known: {', '.join(sorted(_ACTS))}")
        if not timedelta(minutes=1) <= validity <= MAX_VALIDITY:
            raise ApprovalRequestError("a request is valid for between a minute and seven days")
        required = dual_control_required(self.domain.settings)
        self._officer(deciding=False, subject=f"approval:{action}")
        subject, params = act.check(self.domain, dict(parameters))
        now = now or _now()
        row = ApprovalRequest(id=secrets.token_hex(8), action=action, subject=subject, parameters=params,
                              requested_by=self.actor, requested_at=now, expires_at=now + validity,
                              status=PENDING, one_pending=f"{action}/{subject}")
        try:
            with self.db.transaction() as s:
                s.add(row)
                s.flush()
                self.audit.record("approval.request", actor=self.actor, subject=f"approval:{row.id}",
                                  details={"action": action, "target": subject, "parameters": params,
                                           "expires_at": row.expires_at.isoformat(),
                                           "dual_control": required}, session=s)
        except IntegrityError:
            pending = self._pending_for(action, subject)
            which = f": {pending.id}, requested by {pending.requested_by}" if pending else ""
            raise ApprovalRefused(f"a request to {act.describe} {subject} is already pending{which}"
                                  ) from None
        if required:
            return Outcome(row, executed=False)
        # Development only: no second officer; the audit log says so.
        return Outcome(self._execute(row.id, approver=None, now=now), executed=True)

    def _pending_for(self, action: str, subject: str) -> ApprovalRequest | None:
        with self.db.transaction() as s:
            return s.scalars(select(ApprovalRequest).where(
                ApprovalRequest.one_pending == f"{action}/{subject}")).first()

    # ---- deciding ----------------------------------------------------------------------------
    def find(self, request_id: str) -> ApprovalRequest:
        if not isinstance(request_id, str) or not 1 <= len(request_id) <= 16:
            raise ApprovalNotFound(str(request_id)[:20])
        with self.db.transaction() as s:
            row = s.get(ApprovalRequest, request_id.strip().lower())
        if row is None:
            raise ApprovalNotFound(request_id)
        return row

    def list(self, *, status: str | None = None, limit: int = 100, now: datetime | None = None
             ) -> list[ApprovalRequest]:
        """Newest first; ``status`` as it stands now (a pending request past expiry is expired)."""
        if status is not None and status not in STATUSES:
            raise ApprovalRequestError(f"unknown status {status!r}; use one of {', '.join(STATUSES)}")
        now = now or _now()
        with self.db.transaction() as s:
            rows = list(s.scalars(select(ApprovalRequest).order_by(ApprovalRequest.requested_at.desc())
                                  .limit(max(1, min(limit, 10_000)) if status is None else 10_000)))
        if status is not None:
            rows = [r for r in rows if r.status_at(now) == status][:limit]
        return rows

    def approve(self, request_id: str, *, reason: str | None = None, now: datetime | None = None
                ) -> ApprovalRequest:
        """Approve as this domain's actor (not the requester) and run the act, once."""
        reason, now = reason_text(reason), now or _now()
        row = self._decidable(request_id, now)
        self._officer(deciding=True, subject=f"approval:{row.id}")
        if row.requested_by == self.actor:
            self.audit.record("approval.refused", actor=self.actor, subject=f"approval:{row.id}",
                              details={"why": "the requester cannot approve their own request"})
            raise ApprovalRefused(f"request {row.id} was filed by {row.requested_by}: a different security "
                                  "officer must approve it")
        with self.db.transaction() as s:
            claimed = s.execute(update(ApprovalRequest).where(
                ApprovalRequest.id == row.id, ApprovalRequest.status == PENDING,
                ApprovalRequest.expires_at > now).values(
                status=APPROVED, one_pending=None, decided_by=self.actor, decided_at=now,
                decision_reason=reason)).rowcount
            if claimed != 1:
                raise ApprovalRefused(f"request {row.id} was decided meanwhile: {_SEE_LIST}")
            self.audit.record("approval.approve", actor=self.actor, subject=f"approval:{row.id}", details={
                "action": row.action, "target": row.subject, "requested_by": row.requested_by,
                "reason": reason}, session=s)
        return self._execute(row.id, approver=self.actor, now=now)

    def reject(self, request_id: str, *, reason: str | None = None, now: datetime | None = None
               ) -> ApprovalRequest:
        """Reject a pending request (any officer, the requester withdrawing it included)."""
        reason, now = reason_text(reason), now or _now()
        row = self._decidable(request_id, now)
        self._officer(deciding=True, subject=f"approval:{row.id}")
        with self.db.transaction() as s:
            done = s.execute(update(ApprovalRequest).where(
                ApprovalRequest.id == row.id, ApprovalRequest.status == PENDING).values(
                status=REJECTED, one_pending=None, decided_by=self.actor, decided_at=now,
                decision_reason=reason)).rowcount
            if done != 1:
                raise ApprovalRefused(f"request {row.id} was decided meanwhile: {_SEE_LIST}")
            self.audit.record("approval.reject", actor=self.actor, subject=f"approval:{row.id}", details={
                "action": row.action, "target": row.subject, "requested_by": row.requested_by,
                "reason": reason}, session=s)
        return self.find(row.id)

    def _decidable(self, request_id: str, now: datetime) -> ApprovalRequest:
        row = self.find(request_id)
        status = row.status_at(now)
        if status == EXPIRED and row.status == PENDING:
            self._expire(row, now)
        if status != PENDING:
            by = f" by {row.decided_by}" if row.decided_by else ""
            raise ApprovalRefused(f"request {row.id} is {status}{by}; only a pending request can be decided"
                                  + ("; file a new one" if status == EXPIRED else ""))
        return row

    def _expire(self, row: ApprovalRequest, now: datetime) -> None:
        with self.db.transaction() as s:
            done = s.execute(update(ApprovalRequest).where(
                ApprovalRequest.id == row.id, ApprovalRequest.status == PENDING).values(
                status=EXPIRED, one_pending=None, decided_at=now)).rowcount
            if done == 1:
                self.audit.record("approval.expire", actor=self.actor, subject=f"approval:{row.id}", details={
                    "action": row.action, "target": row.subject, "requested_by": row.requested_by,
                    "expired_at": row.expires_at.isoformat()}, session=s)

    # ---- acting ------------------------------------------------------------------------------
    def _execute(self, request_id: str, *, approver: str | None, now: datetime) -> ApprovalRequest:
        row = self.find(request_id)
        act = act_named(row.action)
        if act is None:
            raise ApprovalRequestError(f"request {row.id} is for {row.action!r}, which this installation "
                                       "no longer has under dual control")
        both = f"{row.requested_by}, approved by {approver}" if approver else \
            f"{row.requested_by} (dual control off)"
        result: dict[str, Any]
        try:
            result = act.run(self.domain.acting_as(both[:200]), dict(row.parameters))
        except Exception as exc:
            self._finish(row, FAILED, {"error": f"{exc.__class__.__name__}: {exc}"[:1000]}, approver)
            raise
        return self._finish(row, EXECUTED, result, approver)

    def _finish(self, row: ApprovalRequest, status: str, result: dict[str, Any], approver: str | None
                ) -> ApprovalRequest:
        at = _now()
        with self.db.transaction() as s:
            s.execute(update(ApprovalRequest).where(ApprovalRequest.id == row.id).values(
                status=status, one_pending=None, executed_at=at, result=result,
                **({} if approver else {"decided_at": at,
                                        "decision_reason": "dual control off (development)"})))
            self.audit.record("approval.execute", actor=approver or row.requested_by,
                              subject=f"approval:{row.id}", details={
                                  "action": row.action, "target": row.subject, "outcome": status,
                                  "requested_by": row.requested_by, "approved_by": approver,
                                  "error": result.get("error") if status == FAILED else None}, session=s)
        return self.find(row.id)


# ---- parameters of the acts --------------------------------------------------------------
def text_param(params: dict[str, Any], name: str, limit: int = 300) -> str:
    value = params.get(name)
    if not isinstance(value, str) or not value.strip() or len(value) > limit:
        raise ApprovalRequestError(f"{name} must be text of 1 to {limit} characters")
    return value.strip()


def time_param(value: Any, name: str) -> datetime:
    try:
        when = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise ApprovalRequestError(f"{name} {value!r} is not an ISO 8601 time") from None
    if when.tzinfo is None:
        raise ApprovalRequestError(f"{name} needs a time zone (e.g. 2026-01-02T03:04:05Z)")
    return when.astimezone(UTC)
