"""Department clients of the data-reuse service (共享复用): who may ask, for which licence types,
for what (tables made by migration 0011).

A client is a department's business system. It authenticates with one bearer token
``<client id>.<secret>`` (``Authorization: Bearer …``; no HTTP basic); the secret is 256 random
bits, shown once when the client is made and stored only as a domain-separated SM3 bound to the
client id (:mod:`ledger.bearer` says why a random secret of that size needs no slow hash), so
a database dump gives nobody a working token.

Each client holds permissions per licence type and operation (:data:`OPERATIONS`):

``metadata``
    the licence's public metadata (type, issuer, status, validity) — never holder data;
``data``
    the metadata and, under a holder's grant, the granted fields of the licence data;
    it includes ``metadata``.

Making and revoking a client are audit entries; failed authentications are counted into the
audit log (:class:`ledger.audit_tally.AuditTally`), not written one row per guess.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import ForeignKey, String, select
from sqlalchemy.orm import Mapped, mapped_column

from ledger import bearer
from ledger.audit import AuditLog
from ledger.audit_tally import AuditTally
from ledger.database import Base, Database, UtcDateTime

from .identifiers import IdentifierError, validate_type_code

#: What a client may be permitted to do with one licence type.
OPERATIONS = ("metadata", "data")
CLIENT_ID = re.compile(r"dept-[0-9a-f]{16}")
TOKEN = re.compile(rf"(dept-[0-9a-f]{{16}})\.([0-9a-f]{{{2 * bearer.SECRET_BYTES}}})")
MAX_NAME = 200
PURPOSE = "zhengyin-reuse-client"


class ReuseError(Exception):
    """A data-reuse request or act that cannot be done; the message says why."""


class ReuseRequestError(ReuseError, ValueError):
    """Malformed input to a data-reuse act (a name, a permission, a client id)."""


class ClientNotFound(ReuseError, LookupError):
    """No department client with this id (or it was revoked, where that matters)."""


class ClientAuthenticationFailed(ReuseError):
    """The bearer token is malformed, unknown, wrong or revoked (one answer for all)."""


class DepartmentClient(Base):
    __tablename__ = "reuse_client"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    department_code: Mapped[str | None] = mapped_column(String(18))
    secret_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    created_by: Mapped[str] = mapped_column(String(200))
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    revoked_by: Mapped[str | None] = mapped_column(String(200))


class ReusePermission(Base):
    __tablename__ = "reuse_permission"

    client_id: Mapped[str] = mapped_column(ForeignKey("reuse_client.id"), primary_key=True)
    type_code: Mapped[str] = mapped_column(String(21), primary_key=True)
    operation: Mapped[str] = mapped_column(String(20), primary_key=True)


@dataclass(frozen=True)
class ClientView:
    """A client as listed and as authenticated: never its secret or its hash."""

    id: str
    name: str
    department_code: str | None
    created_at: datetime
    revoked_at: datetime | None
    permissions: frozenset[tuple[str, str]]  # (type code, operation)

    def may(self, type_code: str, operation: str) -> bool:
        """Whether this client may do ``operation`` on licences of ``type_code`` (data includes metadata)."""
        if operation == "metadata":
            return bool({(type_code, "metadata"), (type_code, "data")} & self.permissions)
        return (type_code, operation) in self.permissions

    @property
    def type_codes(self) -> frozenset[str]:
        return frozenset(code for code, _ in self.permissions)

    def as_dict(self) -> dict:
        return {"id": self.id, "name": self.name, "department_code": self.department_code,
                "created_at": self.created_at.isoformat(), "active": self.revoked_at is None,
                "revoked_at": self.revoked_at.isoformat() if self.revoked_at else None,
                "permissions": [{"type_code": t, "operation": o} for t, o in sorted(self.permissions)]}


def parse_permission(text: str) -> list[tuple[str, str]]:
    """``<type code>:<op>[,<op>…]`` as (type code, operation) pairs; ReuseRequestError otherwise."""
    type_code, sep, ops = str(text).strip().partition(":")
    if not sep:
        raise ReuseRequestError(f"permission {text!r}: write <licence type code>:<operation>[,<operation>] "
                                f"(operations: {', '.join(OPERATIONS)})")
    try:
        type_code = validate_type_code(type_code.strip().upper())
    except IdentifierError as exc:
        raise ReuseRequestError(f"permission {text!r}: {exc}") from None
    operations = [op.strip() for op in ops.split(",") if op.strip()]
    unknown = [op for op in operations if op not in OPERATIONS]
    if not operations or unknown:
        raise ReuseRequestError(f"permission {text!r}: operations are {', '.join(OPERATIONS)}, not "
                                f"{', '.join(unknown) or 'nothing'}")
    return [(type_code, op) for op in operations]


def _view(client: DepartmentClient, permissions: Iterable[ReusePermission]) -> ClientView:
    return ClientView(client.id, client.name, client.department_code, client.created_at, client.revoked_at,
                      frozenset((p.type_code, p.operation) for p in permissions))


class ClientRegistry:
    """Department clients: made, listed and revoked by the security officer (``zhengyin reuse
    client``), authenticated by the data-reuse service."""

    def __init__(self, db: Database, audit: AuditLog, *, failure_window: float = 60.0):
        self.db, self.audit = db, audit
        self.failures = AuditTally(audit, "reuse.client.auth_failed", actor="reuse-service",
                                   subject="reuse-clients", window=failure_window)

    def create(self, name: str, permissions: Iterable[tuple[str, str]], *, actor: str,
               department_code: str | None = None) -> tuple[ClientView, str]:
        """A new client and its bearer token (shown once: only its hash is stored)."""
        name = " ".join(str(name or "").split())
        if not name or len(name) > MAX_NAME:
            raise ReuseRequestError(f"a client needs a name of 1 to {MAX_NAME} characters")
        wanted = sorted(set(permissions))  # may be empty: a client that may read nothing (yet)
        for _, operation in wanted:
            if operation not in OPERATIONS:
                raise ReuseRequestError(f"unknown operation {operation!r}; operations are "
                                        f"{', '.join(OPERATIONS)}")
        if department_code is not None and not re.fullmatch(r"[0-9A-Z]{18}", department_code):
            raise ReuseRequestError("the department code is an 18-character unified social credit code")
        client_id, secret = "dept-" + secrets.token_hex(8), bearer.new_secret()
        token = f"{client_id}.{secret}"
        now = datetime.now(UTC)
        with self.db.transaction() as s:
            client = DepartmentClient(id=client_id, name=name, department_code=department_code,
                                      secret_hash=bearer.secret_hash(PURPOSE, client_id, secret),
                                      created_at=now, created_by=actor)
            s.add(client)
            s.flush()
            rows = [ReusePermission(client_id=client_id, type_code=t, operation=o) for t, o in wanted]
            s.add_all(rows)
            self.audit.record("reuse.client.create", actor=actor, subject=f"reuse-client:{client_id}",
                              details={"name": name, "department_code": department_code,
                                       "permissions": [f"{t}:{o}" for t, o in wanted]}, session=s)
            view = _view(client, rows)
        return view, token

    def list(self) -> list[ClientView]:
        with self.db.transaction() as s:
            clients = list(s.scalars(select(DepartmentClient).order_by(DepartmentClient.created_at,
                                                                       DepartmentClient.id)))
            permissions = list(s.scalars(select(ReusePermission)))
        by_client: dict[str, list[ReusePermission]] = {}
        for p in permissions:
            by_client.setdefault(p.client_id, []).append(p)
        return [_view(c, by_client.get(c.id, ())) for c in clients]

    def get(self, client_id: str) -> ClientView:
        """The client (revoked ones too); ClientNotFound if there is none."""
        if not isinstance(client_id, str) or not CLIENT_ID.fullmatch(client_id):
            raise ClientNotFound(f"no department client {client_id!r}")
        with self.db.transaction() as s:
            client = s.get(DepartmentClient, client_id)
            if client is None:
                raise ClientNotFound(f"no department client {client_id!r}")
            return _view(client, s.scalars(select(ReusePermission)
                                           .where(ReusePermission.client_id == client_id)))

    def revoke(self, client_id: str, *, actor: str) -> ClientView:
        """Revoke the client: its token stops working with the next request. ReuseError if revoked."""
        self.get(client_id)
        now = datetime.now(UTC)
        with self.db.transaction() as s:
            client = s.get(DepartmentClient, client_id, with_for_update=True)
            if client.revoked_at is not None:
                raise ReuseError(f"department client {client_id} was already revoked")
            client.revoked_at, client.revoked_by = now, actor
            self.audit.record("reuse.client.revoke", actor=actor, subject=f"reuse-client:{client_id}",
                              details={"name": client.name}, session=s)
        return self.get(client_id)

    def authenticate(self, token: str) -> ClientView:
        """The active client whose token this is; ClientAuthenticationFailed (one answer) otherwise.

        The stored hash is compared in constant time, against a stand-in for unknown ids; why
        it failed is counted in the audit log only."""
        match = TOKEN.fullmatch(token.strip()) if isinstance(token, str) else None
        client_id, secret = match.groups() if match else ("", "")
        client = None
        if match:
            with self.db.transaction() as s:
                client = s.get(DepartmentClient, client_id)
        right = bearer.matches(client.secret_hash if client else None, PURPOSE, client_id, secret)
        if not right or client is None or client.revoked_at is not None:
            reason = "malformed" if not match else "unknown" if client is None else \
                "wrong_secret" if not right else "revoked"
            self.failures.add(reason, f"reuse-client:{client_id}" if client is not None else None)
            raise ClientAuthenticationFailed("the department client's credentials are not valid")
        self.failures.flush()
        return self.get(client_id)

    def flush_due(self) -> None:
        """Write the counted failures if their window has passed (called periodically)."""
        self.failures.flush()

    def close(self) -> None:
        """Write the failures still counted to the audit log (at shutdown)."""
        self.failures.close()
