"""Who is calling and with which trust domain: the per-request context of the signing service.

The app holds no global state: :class:`ServiceState` lives on ``app.state`` and owns the one
:class:`~trust.domain.TrustDomain` of the app (made on first use through the factory the app
was made with, closed when the app stops): one database engine, audit log, key store and
catalogue for every caller. Each request acts through a view of it
(:meth:`~trust.domain.TrustDomain.acting_as`) named ``api:<key id>``, so every act a key
causes — issuance, revocation, sealing, reads — is recorded under that name, and nothing per
key outlives its request (a revoked key leaves no engine, pool or cache behind).

Authentication happens before the request body is read (:func:`gate`, called by the
:mod:`.limits` middleware); the endpoint's dependency :func:`authenticated` picks up the key
the gate found.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.types import Scope

from ..domain import TrustDomain
from .credentials import ApiKey, ApiKeyRegistry, AuthenticationFailed, check_token_shape, key_id_of
from .errors import ApiError, api_error_for
from .idempotency import IdempotencyStore
from .refusals import RefusalAudit
from .settings import ServiceSettings

log = logging.getLogger("zhengyin.service")
SERVICE_ACTOR = "service:signing-api"
REQUIRED_TABLES = ("service_api_key", "service_idempotency", "licence", "seal")
#: Where stored idempotent /seal answers keep their documents, under the home.
SEALED_DOCUMENTS = ("service", "sealed")
ACCESS_REFUSED = "service.access.refused"
AUTH_REFUSED = "service.auth.refused"
#: Only documents the scheme in OpenAPI (components.securitySchemes.bearerAuth and each
#: operation's security); the header is read and checked by :func:`gate`.
BEARER = HTTPBearer(
    auto_error=False,
    scheme_name="bearerAuth",
    bearerFormat="zy_<key id>_<secret>",
    description="the department's API key (`zhengyin service key create`)",
)


class ServiceState:
    """Everything the app's requests share: the domain, the idempotency store, the refusal audit."""

    def __init__(self, factory: Callable[[str], TrustDomain], settings: ServiceSettings):
        self.settings = settings
        self._factory = factory
        self._domain: TrustDomain | None = None
        self._idempotency: IdempotencyStore | None = None
        self._ready = False
        self._lock = threading.Lock()
        self.refusals = RefusalAudit(lambda: self.base.audit)

    @property
    def base(self) -> TrustDomain:
        """The service's own domain (authentication, idempotency), checked once for its schema."""
        with self._lock:
            if self._domain is None:
                domain = self._factory(SERVICE_ACTOR)
                # Make the shared parts now, under the lock (cached_property is not thread-safe).
                domain.acting_as(SERVICE_ACTOR)
                self._domain = domain
            domain = self._domain
            if not self._ready:
                missing = [t for t in REQUIRED_TABLES if t not in domain.db.table_names()]
                if missing:
                    log.error(
                        "database %s lacks tables %s: run `zhengyin init` (it migrates)",
                        domain.db.safe_url,
                        ", ".join(missing),
                    )
                    raise ApiError(
                        "service_unavailable",
                        "the service's database is not set up; the operators must migrate it",
                    )
                self._ready = True
        return domain

    def acting_for(self, key: ApiKey) -> TrustDomain:
        """The domain as the key's actor, for one request."""
        return self.base.acting_as(key.actor)

    @property
    def registry(self) -> ApiKeyRegistry:
        base = self.base
        return ApiKeyRegistry(base.db, base.audit, actor=SERVICE_ACTOR)

    @property
    def idempotency(self) -> IdempotencyStore:
        base = self.base
        with self._lock:
            if self._idempotency is None:
                from licences.storage import DocumentStore

                self._idempotency = IdempotencyStore(
                    base.db,
                    ttl=self.settings.idempotency_ttl,
                    wait=self.settings.idempotency_wait,
                    documents=DocumentStore(base.settings.home.joinpath(*SEALED_DOCUMENTS)),
                )
            return self._idempotency

    def authenticate(self, token: str | None, path: str) -> ApiKey:
        """The key of ``token``; AuthenticationFailed otherwise (a revoked or expired key whose
        secret matched is an audit entry: someone holds a key that is out of force)."""
        try:
            return self.registry.authenticate(token)
        except AuthenticationFailed as exc:
            if exc.reason in ("revoked", "expired"):
                key_id = key_id_of(token) or "?"
                self.refusals.refused(
                    AUTH_REFUSED,
                    key_id=key_id,
                    actor=SERVICE_ACTOR,
                    subject=f"api-key:{key_id}",
                    details={"reason": exc.reason, "path": path},
                )
            raise

    def close(self) -> None:
        """At shutdown: write the pending refusal counts, then close the domain."""
        with self._lock:
            domain = self._domain
        if domain is None:
            return
        try:
            self.refusals.flush()
        except Exception:  # the database may be why we stop: the counts are in the server log
            log.exception("could not write the suppressed refusal counts")
        finally:
            with self._lock:
                self._domain, self._idempotency, self._ready = None, None, False
            domain.close()


@dataclass(frozen=True)
class Caller:
    """An authenticated request: the API key and the domain acting under its name."""

    key: ApiKey
    domain: TrustDomain
    refusals: RefusalAudit

    @property
    def department(self) -> str:
        return self.key.department

    def refuse(self, operation: str, subject: str, reason: str, **details: Any) -> None:
        """Record a refused access (403 scope, or the deliberate 404 of another department's
        licence or seal); rate-limited per key (see :mod:`.refusals`)."""
        self.refusals.refused(
            ACCESS_REFUSED,
            key_id=self.key.key_id,
            actor=self.key.actor,
            subject=subject,
            details={"operation": operation, "reason": reason, **details},
        )

    def require(self, operation: str, type_code: str | None = None, *, subject: str | None = None) -> None:
        if not self.key.allows(operation):
            self.refuse(operation, subject or f"department:{self.department}", "operation_not_permitted")
            raise ApiError(
                "operation_not_permitted",
                f"this API key may not {operation}; its operations are {', '.join(self.key.operations)}",
                {"operation": operation},
            )
        if type_code is not None and not self.key.allows_type(type_code):
            where = subject or f"licence-type:{type_code}"
            self.refuse(operation, where, "licence_type_not_permitted", type=type_code)
            raise ApiError(
                "licence_type_not_permitted",
                f"this API key may not act on licence type {type_code}",
                {"type": type_code, "permitted": list(self.key.types)},
            )

    def audit(self, action: str, subject: str, details: dict[str, Any]) -> None:
        self.domain.audit.record(action, actor=self.domain.actor, subject=subject, details=details)


def state_of(request: Request) -> ServiceState:
    return request.app.state.service


def bearer_token(headers: Headers) -> str | None:
    header = headers.get("authorization")
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else header  # a wrong scheme fails as invalid


def authenticated(
    request: Request, _documented: Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)]
) -> Caller:
    """The FastAPI dependency every /api/v1 endpoint takes: the key :func:`gate` authenticated
    before the body was read (authenticated here only if the gate did not run)."""
    state = state_of(request)
    key = getattr(request.state, "api_key", None)
    if key is None:
        key = state.authenticate(bearer_token(request.headers), request.url.path)
        request.state.api_key = key
    return Caller(key, state.acting_for(key), state.refusals)


async def gate(state: ServiceState, scope: Scope) -> ApiError | None:
    """Authenticate a request from its headers alone, before its body is read: the shape of
    the key first (no database), then the key itself (in a worker thread). None if it may go
    on — the key is then in the request's state — or the error to answer."""
    token = bearer_token(Headers(scope=scope))
    try:
        check_token_shape(token)
        key = await run_in_threadpool(state.authenticate, token, scope["path"])
    except Exception as exc:  # answered here: the body is never read for a refused request
        return api_error_for(exc, method=scope["method"], path=scope["path"])
    scope["state"] = {**scope.get("state", {}), "api_key": key}  # this request's own dict
    return None
