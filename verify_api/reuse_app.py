"""The data-reuse service (免提交, 共享复用): the department-facing API, apart from the public app.

The public verification service faces the internet and holds no key; the answers departments
keep as evidence must be signed. So this is a second app (``zhengyin serve-reuse``), served on
the government network only, that holds exactly one key — the data-service signer
(:mod:`trust.reuse_signing`, label ``data-service-signer``) — through :class:`OneKeyStore`,
which refuses every other label and every act but signing. The rules are
:mod:`licences.reuse`'s; the holder's grants are made on the public app
(:mod:`verify_api.holder_grants`).

Authentication: ``Authorization: Bearer <client id>.<secret>`` (:mod:`licences.reuse_clients`;
HTTP basic is not accepted). One 401 for every failure. Rate limits per client address before
authentication and per client after it. All of it happens from the headers, before a byte of
the body is read (:class:`trust.body_guard.BodyGuard` in front of ``/api/``), and then at most
:data:`MAX_BODY` bytes are read — by the declared Content-Length and by counting a chunked body.

``POST /api/v1/reuse/licences/{identifier or licence number}``
    body ``{"purpose": "…", "fields": [...]?, "licence_type": "<type code>"?,
    "annotated_copy": {"format": "pdf" | "ofd", "valid_days": 1..90 (30)}?}``; the purpose
    (用证事由, 1-200 characters) is required (400 ``purpose_required``). 200:
    ``{"body": {...}, "signature": {...}}`` (:mod:`trust.reuse_signing` says how to check it
    offline), with ``"annotated_copy_content": "<base64>"`` beside them when a copy (加注件) was
    asked for: the signed body's ``annotated_copy`` gives its format, media type, SM3, expiry and
    size. A copy needs the data permission and the holder's grant of all fields for the purpose:
    otherwise 403 ``annotated_copy_not_granted`` (logged, also when the grant goes while the copy
    is made); a licence that is not valid now (suspended, expired) gets 409
    ``annotated_copy_licence_not_valid``, one recorded before annotated copies existed 409
    ``annotated_copy_unavailable``; without a usable seal 503 ``seal_unavailable`` (all logged).
    It is sealed with the data service's own seal (:mod:`trust.data_seal`: the seal lists the one
    key's certificate). Unknown and not-permitted licences: the same 404.
``GET /api/v1/reuse/grants``
    the grants holders have given this client that are active now (what it may ask for).
``GET /healthz``
    liveness, without the database.
"""

from __future__ import annotations

import functools
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Generic, Literal, TypeVar

from fastapi import Body, Depends, FastAPI, Request
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Scope

from ledger.config import ConfigError, load_settings
from ledger.database import DatabaseError
from licences.annotated_copy import (
    DEFAULT_VALID_DAYS,
    MAX_VALID_DAYS,
    MIN_VALID_DAYS,
    AnnotatedCopyError,
    CopySealUnavailable,
    SealBox,
)
from licences.reuse import (
    AnnotatedCopyLicenceNotValid,
    AnnotatedCopyNotGranted,
    AnnotatedCopyUnavailable,
    LicenceNotVisible,
    LicenceTypeRequired,
    ReuseDesk,
    ReuseRequest,
)
from licences.reuse_clients import ClientAuthenticationFailed, ClientRegistry, ClientView, ReuseRequestError
from licences.reuse_grants import HolderGrant
from seals.office import SigningIdentity
from trust.body_guard import BodyGuard, BodyTooLarge
from trust.data_seal import DataSealMissing, current_data_seal, seal_copy
from trust.domain import TrustDomain
from trust.reuse_signing import KEY_LABEL, DataSignerMissing, ResponseSigner, current_data_signer

from .headers import ResponseHeaders

if TYPE_CHECKING:
    from pages.model import Document
from .holder_auth import bearer_token, keep, lifespan
from .ratelimit import RateLimiter, client_key, retry_after
from .records import KeyOperationRefused

MAX_BODY = 64 * 1024
#: How a department client authenticates, for the OpenAPI document (checked by the guard).
CLIENT_BEARER = HTTPBearer(auto_error=False, scheme_name="departmentClient",
                           description="`<client id>.<secret>` from `zhengyin reuse client create`")
API_PREFIX = "/api/"
log = logging.getLogger(__name__)
NOT_FOUND_MESSAGE = "no licence you may read matches"
T = TypeVar("T")


class OneKeyStore:
    """The key store as the data-reuse service sees it: the data-service signer's key, to sign
    with, and nothing else (no other label, no generate, rotate, import or destroy)."""

    def __init__(self, store: Any, label: str = KEY_LABEL):
        self._store, self.label = store, label

    def _only(self, label: str) -> None:
        if label != self.label:
            raise KeyOperationRefused(f"the data-reuse service holds only the {self.label} key")

    def signer(self, label: str, version: int | None = None):
        self._only(label)
        return self._store.signer(label, version)

    def public_key(self, label: str, version: int | None = None):
        self._only(label)
        return self._store.public_key(label, version)

    def exists(self, label: str) -> bool:
        return label == self.label and self._store.exists(label)

    def labels(self) -> list[str]:
        return [label for label in self._store.labels() if label == self.label]

    def other_labels(self) -> list[str]:
        """Keys the underlying store holds besides ours (production refuses to serve with any)."""
        return [label for label in self._store.labels() if label != self.label]

    def close(self) -> None:
        if hasattr(self._store, "close"):
            self._store.close()

    def __getattr__(self, name: str) -> Any:
        raise KeyOperationRefused(f"the data-reuse service may only sign (asked for {name!r})")


@dataclass(frozen=True)
class ReuseSettings:
    """``ZHENGYIN_REUSE_RATE`` (requests per minute per client, default 600) and
    ``ZHENGYIN_REUSE_BURST`` (default 100); the same per address before authentication."""

    rate_per_minute: float = 600.0
    burst: int = 100
    signer_ttl: float = 60.0

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> ReuseSettings:
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for name, key, kind, low, high in (("RATE", "rate_per_minute", float, 0.1, 1e6),
                                           ("BURST", "burst", int, 1, 1_000_000)):
            raw = (env.get(f"ZHENGYIN_REUSE_{name}") or "").strip()
            if not raw:
                continue
            try:
                value = kind(raw)
            except ValueError:
                raise ConfigError(f"ZHENGYIN_REUSE_{name} must be a {kind.__name__}, not {raw!r}") from None
            if not low <= value <= high:
                raise ConfigError(f"ZHENGYIN_REUSE_{name} must be from {low} to {high}, not {value}")
            values[key] = value
        return cls(**values)


class AnnotatedCopyBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    format: Literal["pdf", "ofd"] = Field(description="the copy's document format")
    valid_days: int = Field(default=DEFAULT_VALID_DAYS, ge=MIN_VALID_DAYS, le=MAX_VALID_DAYS, strict=True,
                            description="how many days the copy is good for")


class ReuseBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    purpose: str | None = Field(default=None, max_length=400,
                                description="用证事由 (required, 1-200 characters)")
    fields: list[Annotated[str, Field(max_length=100)]] | None = Field(
        default=None, max_length=100, description="the fields wanted (default: every granted field)")
    licence_type: str | None = Field(default=None, max_length=21,
                                     description="the licence type code, when asking by licence number")
    annotated_copy: AnnotatedCopyBody | None = Field(
        default=None, description="a purpose-limited annotated copy (加注件) of the licence, sealed")


class ReuseApiError(Exception):
    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None):
        self.status, self.code, self.message, self.headers = status, code, message, headers or {}
        super().__init__(message)


def open_domain(home: str | Path | None) -> TrustDomain:
    """The home as the data-reuse service opens it: the key store narrowed to one key; in
    production, refused (ConfigError) if the store holds any other key."""
    settings = load_settings(None if home is None else str(home))
    domain = TrustDomain(settings, "reuse-service")
    narrowed = OneKeyStore(domain.keys)
    domain.__dict__["keys"] = narrowed
    if settings.production and narrowed.other_labels():
        domain.close()
        raise ConfigError("the data-reuse service must hold only the data-service-signer key, but its "
                          f"key store also holds {', '.join(narrowed.other_labels())}: give it a key store "
                          "of its own (verify_api/DEPLOYMENT.md)")
    return domain


class _Timed(Generic[T]):
    """What ``load()`` gives, re-read every ``ttl`` seconds: the current signer certificate (a
    renewal is picked up) and the data service's seal (a new seal, a suspension or a revocation
    is seen within that time)."""

    def __init__(self, load: Callable[[], T], ttl: float):
        self.load, self.ttl = load, ttl
        self._value: tuple[T, float] | None = None
        self._lock = threading.Lock()

    def get(self) -> T:
        now = time.monotonic()
        cached = self._value
        if cached is not None and cached[1] > now:
            return cached[0]
        with self._lock:
            value = self.load()
            self._value = (value, now + self.ttl)
        return value


def _response_signer(domain: TrustDomain) -> ResponseSigner:
    record = current_data_signer(domain)
    return ResponseSigner(domain.keys.signer(KEY_LABEL, record.key_version), record.der)


def _copy_seal(domain: TrustDomain) -> SigningIdentity:
    """The seal copies are sealed with (looked up only when a copy is asked for)."""
    return current_data_seal(domain, current_data_signer(domain))


def _sealer(data_seals: _Timed[SigningIdentity]) -> Callable[[Document, str, SealBox, datetime], bytes]:
    """What the desk seals a copy with: the current data-service seal, looked up when the copy is
    sealed — after the grant was found, so an unknown licence or a refused copy reads as it would
    with a seal — and CopySealUnavailable (logged by the desk, answered 503) when there is none."""
    def seal(document: Document, fmt: str, box: SealBox, when: datetime) -> bytes:
        try:
            identity = data_seals.get()
        except DataSealMissing as exc:
            raise CopySealUnavailable(str(exc)) from None
        return seal_copy(identity, document, fmt, box, when)

    return seal


def create_reuse_app(home: str | Path | None = None, settings: ReuseSettings | None = None, *,
                     domain: TrustDomain | None = None) -> FastAPI:
    """The department-facing data-reuse app for ``home`` (default ``$ZHENGYIN_HOME``)."""
    settings = settings or ReuseSettings.from_environment()
    domain = domain or open_domain(home)
    clients = ClientRegistry(domain.db, domain.audit)
    desk = ReuseDesk(domain.db, domain.audit, catalogue=domain.catalogue)
    signers = _Timed(functools.partial(_response_signer, domain), settings.signer_ttl)
    data_seals = _Timed(functools.partial(_copy_seal, domain), settings.signer_ttl)
    by_address = RateLimiter(settings.rate_per_minute, settings.burst)
    by_client = RateLimiter(settings.rate_per_minute, settings.burst)
    # lifespan: the counted authentication failures are written when due, and at shutdown.
    app = FastAPI(title="zhengyin data reuse (departments)", version="1", docs_url=None, redoc_url=None,
                  lifespan=lifespan)
    app.state.domain = domain
    keep(app, clients)

    def error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
        return JSONResponse({"error": {"code": code, "message": message}}, status_code=status,
                            headers=headers)

    def too_large(limit: int) -> JSONResponse:
        return error(413, "too_large", f"a request body may be at most {limit} bytes",
                     {"Connection": "close"})

    async def gate(scope: Scope) -> JSONResponse | None:
        """Authenticate from the headers (and spend the rate limits) before the body is read."""
        try:
            client = await run_in_threadpool(authenticate, Request(scope))
        except ReuseApiError as exc:
            return error(exc.status, exc.code, exc.message, exc.headers)
        except (SQLAlchemyError, DatabaseError, ConfigError):
            return error(503, "unavailable", "the licence register cannot be reached; try again in a minute",
                         {"Retry-After": "30"})
        except Exception:  # never a traceback to the caller
            log.exception("department client authentication failed unexpectedly")
            return error(500, "internal_error", "the service failed to answer; try again later")
        scope["state"] = {**scope.get("state", {}), "client": client}  # this request's own dict
        return None

    app.add_middleware(BodyGuard, prefixes=(API_PREFIX,), limit=MAX_BODY, gate=gate, too_large=too_large)

    always, defaults = {"X-Content-Type-Options": "nosniff"}, {"Cache-Control": "no-store"}
    app.add_middleware(ResponseHeaders, always=always, defaults=defaults)

    def secure(response: JSONResponse) -> JSONResponse:
        """The middleware's headers on an answer that bypasses it (Starlette's outermost error
        handler answers a 500 outside every user middleware)."""
        response.headers.update(always)
        for name, value in defaults.items():
            response.headers.setdefault(name, value)
        return response

    @app.exception_handler(BodyTooLarge)
    async def body_too_large(request: Request, exc: BodyTooLarge):
        return too_large(exc.limit)

    @app.exception_handler(ReuseApiError)
    async def api_error(request: Request, exc: ReuseApiError):
        return error(exc.status, exc.code, exc.message, exc.headers)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return error(exc.status_code, code, "there is nothing at this address" if exc.status_code == 404
                     else "this address does not take that method" if exc.status_code == 405 else "refused")

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError):
        problems = "; ".join(f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg')}"
                             for e in exc.errors())
        return error(400, "bad_request", f"the request is malformed: {problems}"[:500])

    @app.exception_handler(SQLAlchemyError)
    @app.exception_handler(DatabaseError)
    @app.exception_handler(ConfigError)
    async def unavailable(request: Request, exc: Exception):
        return error(503, "unavailable", "the licence register cannot be reached; try again in a minute",
                     {"Retry-After": "30"})

    @app.exception_handler(Exception)
    async def internal(request: Request, exc: Exception):
        # Starlette's outermost handler: no traceback, no exception text (it may quote input).
        return secure(error(500, "internal_error", "the service failed to answer; try again later"))

    def authenticated(request: Request,
                      _declared: Annotated[HTTPAuthorizationCredentials | None, Depends(CLIENT_BEARER)] = None
                      ) -> ClientView:
        """The client the guard authenticated for this request (or, off its paths, now)."""
        client = request.scope.get("state", {}).get("client")
        return client if isinstance(client, ClientView) else authenticate(request)

    def authenticate(request: Request) -> ClientView:
        wait = by_address.take(client_key(request.client.host if request.client else None))
        if wait:
            raise ReuseApiError(429, "rate_limited", "too many requests; try again later",
                                {"Retry-After": retry_after(wait)})
        try:
            client = clients.authenticate(bearer_token(request.headers.get("authorization")))
        except ClientAuthenticationFailed:
            raise ReuseApiError(401, "unauthenticated", "the department client's credentials are not valid",
                                {"WWW-Authenticate": 'Bearer realm="reuse"'}) from None
        wait = by_client.take(client.id)
        if wait:
            raise ReuseApiError(429, "rate_limited", "too many requests; try again later",
                                {"Retry-After": retry_after(wait)})
        return client

    authenticated_client = Depends(authenticated)

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/api/v1/reuse/licences/{reference}")
    def reuse_licence(reference: Annotated[str, PathParam(max_length=120)],
                      body: Annotated[ReuseBody | None, Body()] = None,
                      client: ClientView = authenticated_client) -> JSONResponse:
        """A licence's metadata (and, under the holder's grant, its granted data), signed."""
        body = body or ReuseBody()
        if body.purpose is None or not body.purpose.strip():
            raise ReuseApiError(400, "purpose_required", "state the purpose (用证事由) of this request in "
                                "the body's purpose field")
        try:
            signer = signers.get()
        except DataSignerMissing:
            raise ReuseApiError(503, "signer_unavailable", "the data service has no valid signing "
                                "certificate yet; try again later", {"Retry-After": "60"}) from None
        sealer = None if body.annotated_copy is None else _sealer(data_seals)
        copy = None if body.annotated_copy is None else body.annotated_copy.model_dump()
        request = ReuseRequest(reference, body.purpose, body.fields, body.licence_type, copy)
        try:
            answer = desk.answer(client, request, sign=signer, seal_copy=sealer)
        except LicenceNotVisible:
            raise ReuseApiError(404, "not_found", NOT_FOUND_MESSAGE) from None
        except AnnotatedCopyNotGranted as exc:
            raise ReuseApiError(403, "annotated_copy_not_granted", str(exc)) from None
        except AnnotatedCopyLicenceNotValid as exc:
            raise ReuseApiError(409, "annotated_copy_licence_not_valid", str(exc)) from None
        except AnnotatedCopyUnavailable as exc:
            raise ReuseApiError(409, "annotated_copy_unavailable", str(exc)) from None
        except CopySealUnavailable:
            raise ReuseApiError(503, "seal_unavailable", "the data service has no usable seal for "
                                "annotated copies yet; try again later, or ask without a copy",
                                {"Retry-After": "60"}) from None
        except AnnotatedCopyError:
            log.exception("an annotated copy could not be made")
            raise ReuseApiError(500, "annotated_copy_failed", "the annotated copy could not be made; ask "
                                "again later, or without a copy") from None
        except LicenceTypeRequired as exc:
            raise ReuseApiError(400, "licence_type_required", str(exc)) from None
        except ReuseRequestError as exc:
            raise ReuseApiError(400, "bad_request", str(exc)) from None
        return JSONResponse(answer)

    @app.get("/api/v1/reuse/grants")
    def grants(client: ClientView = authenticated_client) -> dict[str, Any]:
        """The holders' grants to this client that are active now."""
        now = datetime.now(UTC)
        with domain.db.transaction() as s:
            rows = list(s.scalars(select(HolderGrant).where(
                HolderGrant.client_id == client.id, HolderGrant.revoked_at.is_(None),
                HolderGrant.valid_until > now).order_by(HolderGrant.granted_at.desc())))
        return {"grants": [{key: value for key, value in g.as_dict(now, client.name).items()
                            if key not in ("revoked_at",)} for g in rows if g.usable(now)]}

    return app


def app_from_environment() -> FastAPI:
    """What ``zhengyin serve-reuse`` runs in each worker (the home from ``ZHENGYIN_HOME``)."""
    return create_reuse_app(os.environ.get("ZHENGYIN_HOME"), ReuseSettings.from_environment())
