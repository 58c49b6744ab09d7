"""The signing service's FastAPI app, made by :func:`create_app` (no module-level state).

``create_app(domain_factory)`` takes a function from an actor name to a
:class:`~trust.domain.TrustDomain` — ``lambda actor: TrustDomain.open(home, actor=actor)`` —
so the same app serves a test home, a production home or several workers. The app calls it
once, for its own domain, and serves every caller through a view of that one
(:meth:`~trust.domain.TrustDomain.acting_as`); the domain is closed when the app stops.
Errors are translated in one place (:func:`~trust.service.errors.api_error_for`) into
:class:`~trust.service.errors.ErrorBody`; an unexpected one is logged with an incident id
and answered ``internal_error`` without any of its text.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from ..domain import TrustDomain
from .context import ServiceState, gate
from .errors import ApiError, api_error_for
from .licence_routes import PREFIX
from .licence_routes import router as licence_router
from .limits import BodyLimits, BodyTooLarge
from .officer_routes import router as officer_router
from .schemas import Health
from .seal_routes import SEAL_PATH
from .seal_routes import router as seal_router
from .settings import ServiceSettings, load_service_settings

log = logging.getLogger("zhengyin.service")
VERSION = "1"


def _respond(error: ApiError) -> JSONResponse:
    return JSONResponse(error.body(), status_code=error.status, headers=error.headers)


def _validation_details(exc: RequestValidationError) -> list[dict]:
    # Only location, message and type: pydantic's "input" and "ctx" may echo the request or
    # hold objects that are no JSON.
    return [
        {
            "loc": [p if isinstance(p, int | str) else str(p) for p in e.get("loc", ())],
            "message": str(e.get("msg", "")),
            "type": str(e.get("type", "")),
        }
        for e in exc.errors()
    ]


def install_error_handlers(app: FastAPI) -> None:
    async def api_error(_: Request, exc: ApiError) -> JSONResponse:
        return _respond(exc)

    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        return _respond(
            ApiError(
                "invalid_request",
                "the request does not match the endpoint's schema; see details",
                _validation_details(exc),
            )
        )

    async def http_error(_: Request, exc: HTTPException) -> JSONResponse:
        if isinstance(exc, BodyTooLarge):
            return _respond(exc.api_error())
        code = {
            404: "not_found",
            405: "method_not_allowed",
            413: "payload_too_large",
            415: "unsupported_media_type",
        }.get(exc.status_code, "bad_request")
        message = {
            "not_found": "no such endpoint",
            "method_not_allowed": "this endpoint does not take this HTTP method",
        }.get(code, str(exc.detail))
        return _respond(ApiError(code, message, headers=dict(exc.headers or {})))

    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        key = getattr(request.state, "api_key", None)
        return _respond(
            api_error_for(
                exc,
                method=request.method,
                path=request.url.path,
                department=key.department if key is not None else None,
            )
        )

    app.add_exception_handler(ApiError, api_error)
    app.add_exception_handler(RequestValidationError, invalid)
    app.add_exception_handler(HTTPException, http_error)
    # The domain's errors derive from these; registering them here (and not only Exception)
    # answers them inside the app instead of in Starlette's outermost error middleware.
    for base in _domain_bases():
        app.add_exception_handler(base, unexpected)
    app.add_exception_handler(Exception, unexpected)


def _domain_bases() -> tuple[type[Exception], ...]:
    from sqlalchemy.exc import SQLAlchemyError

    from ca.errors import CaError
    from hsm.errors import HsmError
    from ledger.audit import AuditError
    from ledger.config import ConfigError
    from ledger.database import DatabaseError
    from licences.lifecycle import LicenceError
    from licences.storage import DocumentError
    from ofd.errors import OfdError
    from pdf.errors import PdfError
    from seals.errors import SealError

    from .credentials import CredentialError

    return (
        CredentialError,
        LicenceError,
        SealError,
        OfdError,
        PdfError,
        CaError,
        HsmError,
        DatabaseError,
        AuditError,
        ConfigError,
        DocumentError,
        ValueError,
        LookupError,
        PermissionError,
        SQLAlchemyError,
    )


def create_app(
    domain_factory: Callable[[str], TrustDomain], *, settings: ServiceSettings | None = None
) -> FastAPI:
    """The signing service for the trust domains ``domain_factory(actor)`` opens."""
    settings = settings or load_service_settings()
    state = ServiceState(domain_factory, settings)

    @asynccontextmanager
    async def lifespan(_: FastAPI):
        yield
        state.close()

    app = FastAPI(
        title="zhengyin signing service (证印签发服务)",
        version=VERSION,
        description="Internal API for issuing departments: issue and manage e-licences, seal OFD/PDF "
        "documents. Authenticate with the department's API key: `Authorization: Bearer zy_<id>_<secret>`. "
        'Every error is `{"error": {"code", "message", "details"}}` with a stable code.',
        openapi_url="/openapi.json",
        docs_url="/docs",
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.service = state
    install_error_handlers(app)
    app.add_middleware(
        BodyLimits,
        prefix=PREFIX,
        json_limit=settings.max_json_bytes,
        upload_limit=settings.max_upload_bytes,
        upload_paths={SEAL_PATH},
        gate=lambda scope: gate(state, scope),
    )

    @app.get("/healthz", response_model=Health, tags=["service"], summary="Liveness (touches no database)")
    def healthz() -> dict:
        return {"status": "ok"}

    app.include_router(licence_router)
    app.include_router(seal_router)
    app.include_router(officer_router)
    return app


def app_from_environment() -> FastAPI:
    """The app for ``uvicorn --factory`` (``zhengyin serve``): the home from ``ZHENGYIN_HOME``."""
    import os

    home = os.environ.get("ZHENGYIN_HOME")
    return create_app(lambda actor: TrustDomain.open(home, actor=actor))
