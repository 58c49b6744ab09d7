"""Per-department API keys: ``zy_<key id>_<secret>``, stored as the SM3 of the secret only.

A key names one department (the issuer's unified social credit code), the licence types it
may touch (codes, or ``*``) and the operations it may perform. The secret is 32 bytes from
:mod:`secrets`, shown once when the key is made and never stored, logged or audited.

Why plain SM3 and not HMAC-SM3 with a server pepper: the secret is 256 random bits, so a
stolen hash cannot be reversed by guessing — the attack a pepper (or a slow password hash)
defends against needs a low-entropy secret. A pepper would add a second secret to keep,
rotate and back up, whose loss locks every department out, for no gain. The hash is
domain-separated and bound to the key id (SM3 of ``"zhengyin-api-key\\0" ‖ key id ‖ "\\0" ‖
secret``), so a hash copied onto another key's row does not authenticate, and it is compared
in constant time (:mod:`ledger.bearer`, shared with the holder credentials). An unknown key
id is hashed and compared all the same, so
the answer's timing does not say which key ids exist.

Roles. A key's operations decide its role: a *department* key issues and manages licences and
seals documents (:data:`OPERATIONS`); a *security officer's* key performs the officers' acts on
the department's seals (:data:`OFFICER_OPERATIONS`: ``rotate``, a seal key rotation) and
nothing else. One key never holds both (separation of duties: the business system that
issues licences cannot rotate, and so replace, the keys that sign them), so
:meth:`ApiKeyRegistry.create` refuses a mixture.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from ca.errors import InvalidRequest
from ca.names import validate_credit_code
from ledger import bearer
from ledger.audit import AuditLog
from ledger.database import Database
from ledger.text import record_text

from .models import ApiKeyRecord

PREFIX = "zy"
KEY_ID_BYTES = 8
SECRET_BYTES = 32
OPERATIONS = ("issue", "read", "change", "renew", "suspend", "resume", "revoke", "cancel", "seal", "list")
#: What only a security officer's key may do (and all it may do).
OFFICER_OPERATIONS = ("rotate",)
ALL_OPERATIONS = (*OPERATIONS, *OFFICER_OPERATIONS)
DEPARTMENT_ROLE = "department"
OFFICER_ROLE = "security-officer"
ALL_TYPES = "*"
MAX_LABEL_CHARS = 200
MAX_REASON_CHARS = 500
_TOKEN = re.compile(rf"{PREFIX}_([0-9a-f]{{{2 * KEY_ID_BYTES}}})_([0-9a-f]{{{2 * SECRET_BYTES}}})")
API_KEY_PURPOSE = "zhengyin-api-key"


class CredentialError(Exception):
    """Base class of the API key registry's errors."""


class ApiKeyRequestError(CredentialError, ValueError):
    """A key cannot be made as asked (bad department code, unknown type or operation, …)."""


class ApiKeyNotFound(CredentialError, LookupError):
    def __init__(self, key_id: str):
        self.key_id = key_id
        super().__init__(f"no API key {key_id!r}; `zhengyin service key list` shows the keys")


class ApiKeyRefused(CredentialError):
    """The act is not allowed in the key's state (revoking a revoked key)."""


class AuthenticationFailed(CredentialError):
    """A request's key does not authenticate. ``reason`` is ``missing``, ``invalid`` (malformed,
    unknown or wrong secret: deliberately one answer), ``revoked`` or ``expired``."""

    def __init__(self, reason: str, message: str):
        self.reason = reason
        super().__init__(message)


@dataclass(frozen=True)
class ApiKey:
    """What a key may do; no secret in here."""

    key_id: str
    department: str
    types: tuple[str, ...]
    operations: tuple[str, ...]
    label: str
    created_at: datetime
    created_by: str
    expires_at: datetime | None
    revoked_at: datetime | None

    @classmethod
    def of(cls, record: ApiKeyRecord) -> ApiKey:
        return cls(
            record.key_id,
            record.department,
            tuple(record.types),
            tuple(record.operations),
            record.label,
            record.created_at,
            record.created_by,
            record.expires_at,
            record.revoked_at,
        )

    @property
    def actor(self) -> str:
        """Who acts, in the audit log and licence histories, when this key is used."""
        return f"api:{self.key_id}"

    def allows_type(self, type_code: str) -> bool:
        return ALL_TYPES in self.types or type_code in self.types

    def allows(self, operation: str) -> bool:
        return operation in self.operations

    @property
    def role(self) -> str:
        """``security-officer`` for a key with the officers' operations, else ``department``."""
        return OFFICER_ROLE if any(o in OFFICER_OPERATIONS for o in self.operations) else DEPARTMENT_ROLE

    def state(self, now: datetime) -> str:
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and now >= self.expires_at:
            return "expired"
        return "active"

    def as_dict(self, now: datetime | None = None) -> dict[str, Any]:
        return {
            "key_id": self.key_id,
            "department": self.department,
            "types": list(self.types),
            "operations": list(self.operations),
            "role": self.role,
            "label": self.label,
            "created_at": self.created_at.isoformat(),
            "created_by": self.created_by,
            "expires_at": self.expires_at.isoformat() if self.expires_at else None,
            "revoked_at": self.revoked_at.isoformat() if self.revoked_at else None,
            "state": self.state(now or datetime.now(UTC)),
        }


@dataclass(frozen=True)
class NewApiKey:
    key: ApiKey
    token: str  # the whole ``zy_<id>_<secret>``: hand it over once, it is not kept

    def __repr__(self) -> str:  # never print the secret by accident
        return f"NewApiKey(key={self.key!r}, token='{PREFIX}_{self.key.key_id}_…')"


def key_id_of(token: str | None) -> str | None:
    """The key id of a well-formed token (nothing about whether it exists), else None."""
    match = _TOKEN.fullmatch((token or "").strip())
    return match.group(1) if match else None


def check_token_shape(token: str | None) -> str:
    """The token if it has the shape of a key; AuthenticationFailed (missing or invalid, the
    same answer as a wrong secret) otherwise. Touches no database: the first, cheap check."""
    if not token:
        raise AuthenticationFailed(
            "missing", "send the department's API key as 'Authorization: Bearer zy_<key id>_<secret>'"
        )
    if key_id_of(token) is None:
        raise AuthenticationFailed("invalid", "the API key is not valid")
    return token.strip()


def secret_hash(key_id: str, secret: str) -> str:
    """The stored form of a key's secret (see the module docstring for why SM3 suffices)."""
    return bearer.secret_hash(API_KEY_PURPOSE, key_id, secret)


def _names(what: str, values: Iterable[str]) -> tuple[str, ...]:
    out: list[str] = []
    for value in values:
        value = str(value).strip()
        if value and value not in out:
            out.append(value)
    if not out:
        raise ApiKeyRequestError(f"give at least one {what}")
    return tuple(out)


class ApiKeyRegistry:
    """Makes, lists, revokes and checks API keys; every change is an audit entry."""

    def __init__(self, db: Database, audit: AuditLog, *, actor: str):
        self.db, self.audit, self.actor = db, audit, actor

    def create(
        self,
        department: str,
        types: Iterable[str],
        operations: Iterable[str],
        label: str,
        *,
        known_types: Collection[str],
        expires_at: datetime | None = None,
        now: datetime | None = None,
    ) -> NewApiKey:
        """A new key; the returned token is the only copy of its secret."""
        now = now or datetime.now(UTC)
        try:
            department = validate_credit_code(str(department).strip().upper())
        except InvalidRequest as exc:
            raise ApiKeyRequestError(f"department: {exc}") from None
        type_codes = _names("licence type (or *)", types)
        if ALL_TYPES in type_codes:
            type_codes = (ALL_TYPES,)
        else:
            unknown = [t for t in type_codes if t not in known_types]
            if unknown:
                raise ApiKeyRequestError(
                    f"unknown licence type {', '.join(unknown)}; known types: "
                    f"{', '.join(sorted(known_types))}"
                )
        ops = _names("operation", (o.lower() for o in operations))
        bad = [o for o in ops if o not in ALL_OPERATIONS]
        if bad:
            raise ApiKeyRequestError(f"unknown operation {', '.join(bad)}; use: {', '.join(OPERATIONS)} "
                                     f"(a department's key) or {', '.join(OFFICER_OPERATIONS)} (a security "
                                     "officer's key)")
        officer = [o for o in ops if o in OFFICER_OPERATIONS]
        if officer and len(officer) != len(ops):
            raise ApiKeyRequestError(
                f"{', '.join(officer)} is a security officer's operation and a security officer's key "
                f"has no other: make one key with --ops {','.join(officer)} and another for "
                f"{', '.join(o for o in ops if o not in OFFICER_OPERATIONS)}")
        label = record_text("label", label, MAX_LABEL_CHARS, ApiKeyRequestError)
        if expires_at is not None:
            if expires_at.tzinfo is None:
                raise ApiKeyRequestError("the expiry time needs a time zone (e.g. 2027-01-01T00:00:00Z)")
            if expires_at <= now:
                raise ApiKeyRequestError(f"the expiry time {expires_at.isoformat()} is not in the future")
        for _ in range(3):
            key_id, secret = secrets.token_hex(KEY_ID_BYTES), secrets.token_hex(SECRET_BYTES)
            record = ApiKeyRecord(
                key_id=key_id,
                secret_sm3=secret_hash(key_id, secret),
                department=department,
                types=list(type_codes),
                operations=list(ops),
                label=label,
                created_at=now,
                created_by=self.actor,
                expires_at=expires_at,
            )
            try:
                with self.db.transaction() as s:
                    s.add(record)
                    s.flush()
                    self.audit.record(
                        "service.key.create",
                        actor=self.actor,
                        subject=f"api-key:{key_id}",
                        details={
                            "department": department,
                            "types": list(type_codes),
                            "operations": list(ops),
                            "role": OFFICER_ROLE if officer else DEPARTMENT_ROLE,
                            "label": label,
                            "expires_at": expires_at.isoformat() if expires_at else None,
                        },
                        session=s,
                    )
            except IntegrityError:  # a key id drawn twice: 2^-64, but never reuse one
                continue
            return NewApiKey(ApiKey.of(record), f"{PREFIX}_{key_id}_{secret}")
        raise CredentialError("could not draw an unused key id; try again")

    def keys(self, department: str | None = None) -> list[ApiKey]:
        q = select(ApiKeyRecord).order_by(ApiKeyRecord.id)
        if department:
            q = q.where(ApiKeyRecord.department == department.strip().upper())
        with self.db.transaction() as s:
            found = [ApiKey.of(r) for r in s.scalars(q)]
            self.audit.record(
                "service.key.list",
                actor=self.actor,
                subject="api-keys",
                details={"department": department, "count": len(found)},
                session=s,
            )
        return found

    def find(self, key_id: str) -> ApiKey:
        with self.db.transaction() as s:
            record = s.scalars(select(ApiKeyRecord).where(ApiKeyRecord.key_id == str(key_id).strip())).first()
        if record is None:
            raise ApiKeyNotFound(str(key_id))
        return ApiKey.of(record)

    def revoke(self, key_id: str, reason: str | None = None, *, now: datetime | None = None) -> ApiKey:
        """Revoke a key at once: its next request is refused."""
        now = now or datetime.now(UTC)
        key_id = str(key_id).strip()
        if reason is not None:
            reason = record_text("reason", reason, MAX_REASON_CHARS, ApiKeyRequestError)
        with self.db.transaction() as s:
            record = s.scalars(select(ApiKeyRecord).where(ApiKeyRecord.key_id == key_id)).first()
            if record is None:
                raise ApiKeyNotFound(key_id)
            moved = s.execute(
                update(ApiKeyRecord)
                .where(ApiKeyRecord.id == record.id, ApiKeyRecord.revoked_at.is_(None))
                .values(revoked_at=now, revoked_reason=reason)
            )
            if moved.rowcount != 1:
                raise ApiKeyRefused(f"API key {key_id} is already revoked")
            self.audit.record(
                "service.key.revoke",
                actor=self.actor,
                subject=f"api-key:{key_id}",
                details={"department": record.department, "reason": reason},
                session=s,
            )
        return self.find(key_id)

    def authenticate(self, token: str | None, *, now: datetime | None = None) -> ApiKey:
        """The key a request's bearer token names, if its secret matches and it is in force."""
        if not token:
            check_token_shape(token)
        match = _TOKEN.fullmatch(token.strip())
        key_id, secret = match.groups() if match else ("", "")
        record = None
        if match:
            with self.db.transaction() as s:
                record = s.scalars(select(ApiKeyRecord).where(ApiKeyRecord.key_id == key_id)).first()
        stored = record.secret_sm3 if record is not None else None
        if not bearer.matches(stored, API_KEY_PURPOSE, key_id, secret) or record is None:
            raise AuthenticationFailed("invalid", "the API key is not valid")
        key = ApiKey.of(record)
        state = key.state(now or datetime.now(UTC))
        if state != "active":
            raise AuthenticationFailed(state, f"the API key {key_id} is {state}; ask for a new one")
        return key
