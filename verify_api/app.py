"""The public verification service: the QR landing page, document upload, licence status, and
the published trust list and CRLs.

It faces the internet. It holds no private key (:mod:`verify_api.records`), reads the home's
database and ``<home>/public`` only, discloses masked holder data only, answers every unknown or
mismatched lookup identically, limits each client address's rate, and never shows a traceback:
API paths (``/api/…`` and the published files) answer errors as
``{"error": {"code", "message"}}``, pages as a plain page in the visitor's language.

Endpoints
---------
``GET /healthz``
    liveness, without touching the database.
``GET /V/{payload}[?lang=en]``
    the page a phone opens from a licence QR code (rate-limited).
``GET /api/v1/licences/{identifier}/status``
    the licence's status for a holder of its QR payload: the nonce (32 hex digits, the QR's
    random part) in the ``X-Licence-Nonce`` header — preferred, as headers stay out of access
    logs — or the ``nonce`` query parameter. Unknown identifier and wrong nonce: the same 404
    (rate-limited).
``GET /upload``, ``POST /api/v1/verify``
    a document (multipart field ``file``) judged by the validation engine with the home's trust;
    JSON, or a page for ``Accept: text/html`` or the form's ``view=html`` (rate-limited, size
    limited while reading: 413). A licence document of the register comes with its status; an
    annotated copy (加注件) with its department, purpose and expiry
    (:mod:`verify_api.annotated_copies`) and its licence's status today.
``GET /trust-list.json``, ``/trust-list.p7s``, ``/crl/root.crl``, ``/crl/issuing.crl``
    what ``zhengyin publish`` wrote, with ETag and a max-age that never reaches past the
    file's next update.
``GET /trust-list-{version}.json``, ``/trust-list-{version}.p7s``
    one version's list and signature, never rewritten: read ``version`` from
    ``/trust-list.json`` and fetch its signature here to be sure the two match (the stable
    names are replaced one after the other while a publish lands).
``POST /ocsp``, ``GET /ocsp/{request}``
    OCSP from the responses ``zhengyin publish`` pre-produced (:mod:`verify_api.ocsp`).
``POST /api/v1/holder/presentations``, ``GET|POST /P/{token}``, ``GET /api/v1/presentations/{token}``
    live presentations (亮证) of a holder's licence: :mod:`verify_api.presentation_routes`.
``POST|GET /api/v1/holder/grants``, ``DELETE /api/v1/holder/grants/{id}``, ``GET /api/v1/holder/usage``
    the holder's grants to department clients and their licence's usage log (用证记录):
    :mod:`verify_api.holder_grants` (the departments' side is a separate app, :mod:`verify_api.reuse_app`).

Uploads are opened under the public package limits and at most ``max_validations`` are
judged at once per worker (:mod:`verify_api.documents`); past that, 503 with Retry-After.
Clients are rate-limited by address, IPv6 by /64 (:func:`verify_api.ratelimit.client_key`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path as FilePath
from typing import Annotated, Any, TypeVar

from fastapi import Depends, FastAPI, Header, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from hsm.sm3 import sm3
from ledger.config import ConfigError
from ledger.database import DatabaseError

from . import access_log, holder_auth, holder_grants, ocsp, pages, presentation_routes, texts
from .documents import ValidationsBusy, ValidationSlots, public_limits
from .headers import ResponseHeaders
from .licence_check import KeptAnswers, LicenceAnswer, check_qr, find_for_status
from .published import PUBLISHED, published_response
from .ratelimit import RateLimiter, client_key, retry_after
from .records import PublicRecords, drop_key_secrets
from .settings import VerifySettings
from .upload import UploadError, read_upload

PERMISSIONS_POLICY = ("camera=(), microphone=(), geolocation=(), payment=(), usb=(), interest-cohort=(), "
                      "browsing-topics=()")
NOT_FOUND_MESSAGE = "no licence matches this identifier and QR code"
BUSY_RETRY_SECONDS = 5
#: The upload's form, for the OpenAPI document (the body is parsed by verify_api.upload, streamed).
UPLOAD_BODY = {"required": True, "content": {"multipart/form-data": {"schema": {
    "type": "object", "required": ["file"], "properties": {
        "file": {"type": "string", "format": "binary", "description": "the OFD or PDF document"},
        "view": {"type": "string", "enum": ["json", "html"], "description": "html: a readable page"},
        "lang": {"type": "string", "enum": ["zh", "en"]}}}}}}
T = TypeVar("T")

#: Paths whose errors are JSON whatever the client accepts.
JSON_ONLY = ("/api/v1/licences/", "/crl/", "/trust-list", "/healthz", "/ocsp")


class ApiError(Exception):
    """An answer other than 200, carried to the one place that renders errors."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None):
        self.status, self.code, self.message, self.headers = status, code, message, headers or {}
        super().__init__(message)


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def _accepts_html(request: Request) -> bool:
    return "text/html" in request.headers.get("accept", "")


def _wants_page(request: Request) -> bool:
    """Errors as a page for a browser (which asks for text/html), except on the pure API paths."""
    return _accepts_html(request) and not request.url.path.startswith(JSON_ONLY)


def error_body(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


def create_app(home: str | FilePath | None = None, settings: VerifySettings | None = None, *,
               records: PublicRecords | None = None) -> FastAPI:
    """The public verification app for ``home`` (default ``$ZHENGYIN_HOME``).

    Nothing is opened here but the settings: the database is reached on the first lookup, so
    ``/healthz`` answers even while the database is down.
    """
    settings = settings or VerifySettings.from_environment()
    records = records or PublicRecords(home, trust_ttl=settings.trust_ttl)
    lookups = RateLimiter(settings.rate_per_minute, settings.burst, max_clients=settings.max_clients)
    uploads = RateLimiter(settings.upload_rate_per_minute, settings.upload_burst,
                          max_clients=settings.max_clients)
    slots = ValidationSlots(settings.max_validations)
    limits = public_limits(settings.max_upload)
    app = FastAPI(title="zhengyin public verification", version="1", docs_url=None, redoc_url=None,
                  lifespan=holder_auth.lifespan)  # counted holder failures: flushed, and written at exit
    app.state.records, app.state.settings = records, settings

    def limited(limiter: RateLimiter) -> Callable[[Request], Awaitable[None]]:
        async def check(request: Request) -> None:  # async: no thread-pool hop for a few additions
            wait = limiter.take(client_key(request.client.host if request.client else None))
            if wait:
                raise ApiError(429, "rate_limited", "too many requests from this address; try again later",
                               {"Retry-After": retry_after(wait)})
        return check

    lookup_limit = Depends(limited(lookups))
    rendered = KeptAnswers(size=1024)  # QR pages, by payload and language: see licence_page
    upload_limit = Depends(limited(uploads))
    holder_auth.install(app, records, lookups)
    presentation_routes.register(app, records, settings, lookup_limit)
    ocsp.register(app, records, settings)
    holder_grants.register(app, records)

    always = {"Content-Security-Policy": pages.CONTENT_SECURITY_POLICY, "X-Content-Type-Options": "nosniff",
              "Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY",
              "Permissions-Policy": PERMISSIONS_POLICY, "Cross-Origin-Opener-Policy": "same-origin"}
    defaults = {"Cache-Control": "no-store"}
    hsts = {"Strict-Transport-Security": "max-age=31536000; includeSubDomains"}

    def https(scope) -> bool:
        return settings.hsts == "always" or (settings.hsts == "auto" and scope.get("scheme") == "https")

    def secure(request: Request, response: Response) -> Response:
        """The same headers on an answer that bypasses the middleware (Starlette's outermost
        error handler answers a 500 outside every user middleware)."""
        response.headers.update(always | (hsts if https(request.scope) else {}))
        for name, value in defaults.items():
            response.headers.setdefault(name, value)
        return response

    def error_response(request: Request, status: int, code: str, message: str,
                       headers: dict[str, str] | None = None) -> Response:
        if _wants_page(request):
            lang = texts.language(request.query_params.get("lang"))
            response: Response = HTMLResponse(pages.render("error.html", lang, message=message),
                                              status_code=status, headers=headers)
        else:
            response = JSONResponse(error_body(code, message), status_code=status, headers=headers)
        return secure(request, response)

    app.add_middleware(ResponseHeaders, always=always, defaults=defaults, https_only=hsts, https=https)

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError):
        return error_response(request, exc.status, exc.code, exc.message, exc.headers)

    @app.exception_handler(UploadError)
    async def upload_error(request: Request, exc: UploadError):
        return error_response(request, exc.status, exc.code, exc.message,
                              {"Connection": "close"} if exc.status == 413 else None)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        message = {404: "there is nothing at this address", 405: "this address does not take that method"}
        return error_response(request, exc.status_code, code, message.get(exc.status_code, str(exc.detail)))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError):
        problems = "; ".join(f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg')}"
                             for e in exc.errors())
        return error_response(request, 400, "bad_request", f"the request is malformed: {problems}"[:500])

    @app.exception_handler(SQLAlchemyError)
    @app.exception_handler(DatabaseError)
    @app.exception_handler(ConfigError)
    async def unavailable(request: Request, exc: Exception):
        return error_response(request, 503, "unavailable", "the licence register cannot be reached; "
                              "try again in a minute", {"Retry-After": "30"})

    @app.exception_handler(Exception)
    async def internal(request: Request, exc: Exception):
        # Starlette's outermost handler: no traceback, no exception text (it may quote input).
        return error_response(request, 500, "internal_error", "the service failed to answer; try again later")

    # ---- routes --------------------------------------------------------------------------
    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/V/{payload}", response_class=HTMLResponse, dependencies=[lookup_limit])
    async def licence_page(payload: str, lang: Annotated[str | None, Query(max_length=8)] = None
                           ) -> HTMLResponse:
        """The QR landing page (Chinese; ``?lang=en`` for English)."""
        now = _now()
        answer = await _register_call(records, check_qr, records, payload, now)
        language = texts.language(lang)
        # The same answer at the same second is the same page: rendered once (answers are kept
        # while the register is unchanged, see check_qr, so a busy code's page is rendered once
        # a second, not once a request).
        key = (payload, language)
        found, page = rendered.get(key, answer, now)
        if not found:
            page = pages.render("licence.html", language, checked_at=now, licence=answer)
            if answer is not None:  # only an authentic code's page: junk must not push it out
                rendered.put(key, answer, now, page)
        return HTMLResponse(page)

    @app.get("/api/v1/licences/{identifier}/status", dependencies=[lookup_limit])
    async def licence_status(
        identifier: Annotated[str, Path(max_length=120)],
        nonce: Annotated[str | None, Query(max_length=64, description="the QR code's nonce, 32 hex digits")]
        = None,
        x_licence_nonce: Annotated[str | None, Header(max_length=64)] = None,
    ) -> JSONResponse:
        """A licence's status, for whoever holds its QR code (identifier + nonce)."""
        given = x_licence_nonce or nonce
        if not given:
            raise ApiError(400, "nonce_required", "give the QR code's nonce in the X-Licence-Nonce header or "
                           "the nonce query parameter")
        now = _now()
        answer = await _register_call(records, find_for_status, records, identifier, given, now)
        if answer is None:
            raise ApiError(404, "not_found", NOT_FOUND_MESSAGE)
        return JSONResponse(status_body(answer, now))

    @app.get("/upload", response_class=HTMLResponse)
    def upload_form(lang: Annotated[str | None, Query(max_length=8)] = None) -> HTMLResponse:
        language = texts.language(lang)
        return HTMLResponse(pages.render("upload.html", language,
                                         limit_mb=round(settings.max_upload / (1024 * 1024), 1)))

    @app.post("/api/v1/verify", dependencies=[upload_limit], openapi_extra={"requestBody": UPLOAD_BODY})
    async def verify_document(request: Request) -> Response:
        """Judge an OFD or PDF (multipart field ``file``): the validation report and, when the
        file is a licence document of this register, its registry status."""
        upload = await read_upload(request, settings.max_upload)
        try:
            with slots.take():
                result = await run_in_threadpool(_judge, records, upload.file, limits)
        except ValidationsBusy:
            raise ApiError(503, "busy", "the service is validating as many documents as it can; try "
                           "again in a few seconds", {"Retry-After": str(BUSY_RETRY_SECONDS)}) from None
        if upload.fields.get("view") == "html" or _accepts_html(request):
            language = texts.language(upload.fields.get("lang") or request.query_params.get("lang"))
            return HTMLResponse(pages.render("report.html", language, checked_at=result["checked_at"],
                                             report=result["report"], licence=result["licence"],
                                             reason=result["reason"], switch_href=_upload_switch(language),
                                             annotated_copy=result["annotated_copy"]))
        return JSONResponse(result["body"])

    for path, (name, media_type) in PUBLISHED.items():
        app.add_api_route(path, _published_route(records, settings, name, media_type), methods=["GET"],
                          include_in_schema=True, name=name)
    app.add_api_route("/crl/{which}-v{version:int}.crl", _rotated_crl_route(records, settings),
                      methods=["GET"], include_in_schema=True, name="crl-of-rotated-ca-key")
    for suffix, media_type in (("json", "application/json"), ("p7s", "application/pkcs7-signature")):
        app.add_api_route(f"/trust-list-{{version:int}}.{suffix}",
                          _versioned_route(records, settings, suffix, media_type), methods=["GET"],
                          include_in_schema=True, name=f"trust-list-version.{suffix}")
    return app


async def _register_call(records: PublicRecords, call: Callable[..., T], *args: Any) -> T:
    """``call(*args)``, a register look-up: in the event loop itself when the register is a local
    SQLite file, in the thread pool when it is a database server.

    A QR check's look-up reads two rows of a local file (the OS's page cache, tens of
    microseconds); sending it to the thread pool cost more than the look-up — the hop, and the
    event loop waiting for the interpreter lock while a pool thread held it — and made the
    latency of every request of the worker depend on the pool's scheduling. A server database
    answers over the network, and a slow answer must not stop the worker's other requests."""
    if records.register_is_local:
        return call(*args)
    return await run_in_threadpool(call, *args)


def _upload_switch(language: str) -> str:
    """The result page's language switch: the upload form in the other language (the result
    itself came from a POST, which a link cannot repeat)."""
    return "/upload?lang=" + texts.TEXTS[language]["switch_lang"]


def _rotated_crl_route(records: PublicRecords, settings: VerifySettings):
    """The CRL of a CA key after a rotation (crl/issuing-v2.crl, …: ca.authority.crl_file_name);
    the first key's CRLs are the fixed /crl/root.crl and /crl/issuing.crl."""

    def serve(request: Request, which: str, version: int) -> Response:
        if which not in ("root", "issuing") or not 2 <= version < 10**6:
            raise ApiError(404, "not_published", "there is no such CRL")
        response = published_response(records, f"crl/{which}-v{version}.crl", "application/pkix-crl",
                                      request.headers.get("if-none-match"), _now(),
                                      settings.max_cache_seconds)
        if response is None:
            raise ApiError(404, "not_published", "there is no such CRL")
        return response

    return serve


def _versioned_route(records: PublicRecords, settings: VerifySettings, suffix: str, media_type: str):
    from trust.trust_list import versioned_names

    def serve(request: Request, version: int) -> Response:
        if not 1 <= version < 10**18:
            raise ApiError(404, "not_published", "there is no trust list of that version")
        name = versioned_names(version)[0 if suffix == "json" else 1]
        response = published_response(records, name, media_type, request.headers.get("if-none-match"),
                                       _now(), settings.max_cache_seconds)
        if response is None:
            raise ApiError(404, "not_published", f"trust list version {version} is not published (only the "
                           "newest versions are kept)")
        return response

    what = "signature" if suffix == "p7s" else "document"
    serve.__doc__ = f"One version's trust list {what}, never rewritten."
    return serve


def _published_route(records: PublicRecords, settings: VerifySettings, name: str, media_type: str):
    def serve(request: Request) -> Response:
        response = published_response(records, name, media_type, request.headers.get("if-none-match"),
                                       _now(), settings.max_cache_seconds)
        if response is None:
            raise ApiError(404, "not_published", f"{name} has not been published yet")
        return response

    serve.__doc__ = f"The published {name} (ETag, cacheable until its next update)."
    return serve


def status_body(answer: LicenceAnswer, now: datetime) -> dict[str, Any]:
    body: dict[str, Any] = {
        "identifier": answer.identifier,
        "status": answer.status.value,
        "status_name": answer.status_name,
        "valid_until": answer.valid_until.isoformat() if answer.valid_until else None,
        "checked_at": now.isoformat().replace("+00:00", "Z"),
    }
    if answer.successor:
        body["superseded_by"] = answer.successor.identifier
        body["superseded_by_status"] = answer.successor.status
    return body


def _first_failure(report) -> str | None:
    for signature in report.signatures:
        for check in signature.checks:
            if not check.ok:
                return f"{signature.id}: {check.name}: {check.detail}"
    for check in report.checks:
        if not check.ok:
            return f"{check.name}: {check.detail}"
    return None


def _judge(records: PublicRecords, data: bytes, limits) -> dict[str, Any]:
    from ofd.errors import OfdError
    from pdf.errors import PdfError
    from trust.report import printable
    from trust.validation import UnsupportedDocument

    from .annotated_copies import copy_status
    from .documents import validate_upload
    from .licence_check import answer_for

    trust = records.verification_trust()
    now = _now()
    try:
        report = validate_upload(data, trust, now, limits)
    except (OfdError, PdfError, UnsupportedDocument) as exc:
        raise ApiError(422, "unreadable_document", printable(f"the file cannot be read as a document: {exc}")
                       [:500]) from None
    digest = sm3(data).hex()
    record = records.find_by_document(digest)
    copy = copy_status(records, digest, now) if record is None else None
    if copy is not None and copy["licence"]:
        record = records.licence(copy["licence"])  # a copy is only as good as its licence today
    licence = answer_for(records, record, now) if record is not None else None
    body = {"report": report.as_dict(), "sm3": digest,
            "licence": None if licence is None else status_body(licence, now), "annotated_copy": copy}
    json.dumps(body, ensure_ascii=False)  # fail here, not half-way through a response
    return {"body": body, "report": report, "licence": licence, "checked_at": now,
            "reason": _first_failure(report), "annotated_copy": copy}


def app_from_environment() -> FastAPI:
    """What ``zhengyin serve-verify`` runs in each worker: the home from ``ZHENGYIN_HOME``, no
    key secret left in the environment (serve-verify drops them before uvicorn starts; a
    worker started some other way drops them here), QR payloads kept out of the access log."""
    drop_key_secrets()
    access_log.install()
    return create_app(os.environ.get("ZHENGYIN_HOME"), VerifySettings.from_environment())
