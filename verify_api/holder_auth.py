"""Holder authentication for the public service: ``Authorization: Bearer zyh_<id>_<secret>``.

:func:`current_holder` is the FastAPI dependency of every holder endpoint (live presentations
here, consent and the usage log in the data-reuse routes). Each call first spends one token of
the client address's lookup bucket (:mod:`verify_api.ratelimit`), so credentials cannot be
guessed faster than licences can be looked up, then checks the token
(:meth:`licences.holders.HolderCredentials.authenticate`: hashed at rest, constant-time). Every
failure — no header, another scheme, a malformed, unknown, wrong, revoked token, a licence that
has ended — is the same 401 with the same body and ``WWW-Authenticate: Bearer``, so the answer
says nothing about what was guessed; why it failed is counted in the audit log only.

All of that happens before the body is read (:class:`trust.body_guard.BodyGuard` in front of
``/api/v1/holder/``): FastAPI parses a body before any dependency runs, so without the guard an
anonymous caller could make the service parse megabytes, or learn that its JSON was malformed,
before it heard 401. Behind the guard the holder is authenticated — and the rate-limit token
spent — once, from the headers; then at most :data:`MAX_BODY` bytes are read, by the declared
Content-Length and by counting a chunked body as it arrives (413 past it).

Counted failures (:class:`ledger.audit_tally.AuditTally`) are written when their window is due
even if no request comes to trigger it, and whatever is still counted at shutdown:
:func:`lifespan` runs both for every tally-keeping service made through :func:`keep`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import AsyncIterator
from typing import Annotated, Any, Protocol, TypeVar

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response
from starlette.types import Scope

from ledger.config import ConfigError
from ledger.database import DatabaseError
from licences.holders import GENERIC_MESSAGE, Holder, HolderAuthenticationFailed, HolderCredentials
from trust.body_guard import BodyGuard, BodyTooLarge

from .ratelimit import RateLimiter, client_key, retry_after
from .records import PublicRecords

RATE_LIMITED_MESSAGE = "too many requests from this address; try again later"
#: The holder endpoints' paths, all authenticated before their body is read.
PREFIX = "/api/v1/holder/"
#: The largest body a holder endpoint reads (a grant is a few hundred bytes).
MAX_BODY = 16 * 1024
log = logging.getLogger(__name__)
#: How often the counted failures are offered to the audit log (each tally writes when its
#: own window is due).
FLUSH_SECONDS = 15.0


class Tallying(Protocol):
    """A service that counts failures: HolderCredentials, Presentations, ClientRegistry."""

    def flush_due(self) -> None: ...
    def close(self) -> None: ...


T = TypeVar("T", bound=Tallying)


class HolderRefused(Exception):
    """A holder request refused before it reached its endpoint (401, or 429 when rate-limited)."""

    def __init__(self, status: int = 401, code: str = "holder_unauthenticated",
                 message: str = GENERIC_MESSAGE, headers: dict[str, str] | None = None):
        self.status, self.code, self.message = status, code, message
        self.headers = headers if headers is not None else {"WWW-Authenticate": 'Bearer realm="holder"'}
        super().__init__(message)


def install(app: FastAPI, records: PublicRecords, limiter: RateLimiter) -> None:
    """Make :func:`current_holder` work on ``app``: the limiter it spends from, the credentials
    it checks against (opened at the first holder request, not here), and its 401/429 answer."""
    app.state.holder_limiter = limiter
    app.state.holder_records = records
    app.state.holder_credentials = None
    app.state.holder_lock = threading.Lock()
    app.state.tallying = []

    @app.exception_handler(HolderRefused)
    async def refused(request: Request, exc: HolderRefused) -> JSONResponse:
        return refusal(exc)

    @app.exception_handler(BodyTooLarge)
    async def body_too_large(request: Request, exc: BodyTooLarge) -> JSONResponse:
        return too_large(exc.limit)

    app.add_middleware(BodyGuard, prefixes=(PREFIX,), limit=MAX_BODY, gate=gate, too_large=too_large)


def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    body: dict[str, Any] = {"error": {"code": code, "message": message}}
    return JSONResponse(body, status_code=status, headers=headers)


def refusal(exc: HolderRefused) -> JSONResponse:
    return _error(exc.status, exc.code, exc.message, exc.headers)


def too_large(limit: int) -> JSONResponse:
    return _error(413, "too_large", f"a request body may be at most {limit} bytes", {"Connection": "close"})


async def gate(scope: Scope) -> Response | None:
    """The guard's check of a holder request, from its headers: None (the holder is then in the
    request's state) or the answer that refuses it — 401, 429, or 503 while the database is down."""
    try:
        holder = await run_in_threadpool(authenticate, Request(scope))
    except HolderRefused as exc:
        return refusal(exc)
    except (SQLAlchemyError, DatabaseError, ConfigError):
        return _error(503, "unavailable", "the licence register cannot be reached; try again in a minute",
                      {"Retry-After": "30"})
    except Exception:  # never a traceback to the caller
        log.exception("holder authentication failed unexpectedly")
        return _error(500, "internal_error", "the service failed to answer; try again later")
    scope["state"] = {**scope.get("state", {}), "holder": holder}  # this request's own dict
    return None


def holder_credentials(request: Request) -> HolderCredentials:
    """The app's :class:`HolderCredentials` (one per worker, made at first use)."""
    state = request.app.state
    if state.holder_credentials is None:
        with state.holder_lock:
            if state.holder_credentials is None:
                domain = state.holder_records.domain
                state.holder_credentials = keep(request.app, HolderCredentials(domain.db, domain.audit))
    return state.holder_credentials


def keep(app: FastAPI, service: T) -> T:
    """Have :func:`lifespan` flush and close ``service``'s counted failures; returns it."""
    if not hasattr(app.state, "tallying"):
        app.state.tallying = []
    app.state.tallying.append(service)
    return service


def _each(app: FastAPI, act: str) -> None:
    for service in list(getattr(app.state, "tallying", [])):
        try:
            getattr(service, act)()
        except Exception:  # the database may be why we stop: the counts are lost, say so
            log.exception("could not write the counted failures of %s", type(service).__name__)


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """While the app runs, write counted failures whose window is due every
    :data:`FLUSH_SECONDS`; at shutdown, write all that are still counted."""

    async def flushing() -> None:
        while True:
            await asyncio.sleep(FLUSH_SECONDS)
            await run_in_threadpool(_each, app, "flush_due")

    task = asyncio.create_task(flushing())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await run_in_threadpool(_each, app, "close")


def bearer_token(header: str | None) -> str:
    """The token of an ``Authorization: Bearer …`` header, or "" (which never authenticates)."""
    scheme, _, token = (header or "").strip().partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


#: How a holder authenticates, as the OpenAPI document says it (``securitySchemes``): the
#: credential is checked by the guard and :func:`authenticate`, not by this declaration.
HOLDER_BEARER = HTTPBearer(auto_error=False, scheme_name="holderCredential",
                           description="a holder credential bound to one licence "
                                       "(`zhengyin licence holder-credential`)")


def current_holder(request: Request,
                   _declared: Annotated[HTTPAuthorizationCredentials | None, Depends(HOLDER_BEARER)] = None
                   ) -> Holder:
    """The holder the guard authenticated for this request (or, on a path it does not cover,
    :func:`authenticate` now)."""
    holder = request.scope.get("state", {}).get("holder")
    return holder if isinstance(holder, Holder) else authenticate(request)


def authenticate(request: Request) -> Holder:
    """Spend the address's rate-limit token, then check the bearer token: the holder, or
    HolderRefused (401, one body for every failure; 429 past the client's rate)."""
    limiter: RateLimiter = request.app.state.holder_limiter
    wait = limiter.take(client_key(request.client.host if request.client else None))
    if wait:
        raise HolderRefused(429, "rate_limited", RATE_LIMITED_MESSAGE, {"Retry-After": retry_after(wait)})
    try:
        return holder_credentials(request).authenticate(bearer_token(request.headers.get("authorization")))
    except HolderAuthenticationFailed:
        raise HolderRefused() from None
