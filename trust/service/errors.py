"""Every failure of the signing service as ``{"error": {"code", "message", "details"}}``.

The codes are stable snake_case words a business system can branch on; :data:`CODES` is the
whole list with the HTTP status each one comes with, and the OpenAPI document is made from
it, so what the spec promises and what the service answers cannot drift apart. Domain errors
(licences, seals, ca, ofd, pdf) are translated by :func:`from_domain`; their messages are
written for the people who must act on them and carry no internals. Anything unforeseen is
``internal_error`` with an incident id that is logged with the traceback — never shown.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from pydantic import BaseModel, ConfigDict

log = logging.getLogger("zhengyin.service")
#: Seconds a 503 asks the caller to wait before retrying.
UNAVAILABLE_RETRY_AFTER = 5


class ErrorDetail(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str
    message: str
    details: Any = None


class ErrorBody(BaseModel):
    """The body of every error response."""

    model_config = ConfigDict(extra="forbid")

    error: ErrorDetail


#: code -> (HTTP status, what it means). The only place a code is defined.
CODES: dict[str, tuple[int, str]] = {
    "missing_credentials": (401, "no 'Authorization: Bearer <API key>' header"),
    "invalid_credentials": (401, "the API key is malformed, unknown or its secret is wrong"),
    "revoked_credentials": (401, "the API key has been revoked"),
    "expired_credentials": (401, "the API key has expired"),
    "operation_not_permitted": (
        403,
        "the API key's scopes do not include this operation, or the act is reserved "
        "(the 电子证照专用章 signs only through issuance, never an upload)",
    ),
    "licence_type_not_permitted": (403, "the API key's scopes do not include this licence type"),
    "issuer_not_allowed": (403, "this department may not issue this licence type (catalogue rule)"),
    "licence_not_found": (
        404,
        "no such licence of this department (another department's is answered the same)",
    ),
    "seal_not_found": (404, "no such seal of this department"),
    "bad_request": (400, "the request is malformed at the HTTP level (headers, body encoding)"),
    "not_found": (404, "no such endpoint"),
    "method_not_allowed": (405, "the endpoint does not take this HTTP method"),
    "request_in_progress": (409, "a request with this Idempotency-Key is still being processed"),
    "licence_state_conflict": (409, "the licence's status does not allow this act now"),
    "licence_exists": (
        409,
        "a licence with this source record, licence number or successor already exists (another "
        "department's licence is not named)",
    ),
    "no_licence_seal": (409, "the department has no usable 电子证照专用章"),
    "seal_not_usable": (409, "the seal may not sign now (suspended, revoked, expired, certificate)"),
    "seal_refused": (409, "the seal office refused the act in the seal's current state"),
    "payload_too_large": (413, "the request body is larger than this endpoint accepts"),
    "unsupported_media_type": (415, "the request's Content-Type is not the one this endpoint takes"),
    "unsupported_document": (415, "the uploaded file is neither an OFD package nor a PDF"),
    "invalid_request": (422, "the request does not match its schema (fields in details)"),
    "invalid_licence_data": (
        422,
        "the licence data has field errors (details: path, message_zh, message_en)",
    ),
    "invalid_identifier": (422, "the licence identifier is malformed or its check character is wrong"),
    "unknown_licence_type": (422, "no licence type has this code"),
    "invalid_metadata": (422, "the licence metadata rules refuse the data (e.g. a validity end in the past)"),
    "layout_failed": (422, "the licence data does not fit the type's layout"),
    "invalid_seal_request": (422, "the seal placement or seal choice is malformed"),
    "invalid_document": (422, "the uploaded OFD or PDF cannot be read or sealed"),
    "idempotency_key_reused": (422, "the Idempotency-Key was used before with a different request"),
    "invalid_idempotency_key": (
        422,
        "the Idempotency-Key header is empty, too long or has control characters",
    ),
    "internal_error": (500, "an unexpected failure; quote the incident id to the operators"),
    "service_unavailable": (503, "the database, audit log or key store cannot be reached; retry later"),
}


class ApiError(Exception):
    """An error response: its code decides the status."""

    def __init__(
        self, code: str, message: str, details: Any = None, *, headers: dict[str, str] | None = None
    ):
        if code not in CODES:
            raise ValueError(f"undeclared error code {code!r}")
        self.code, self.message, self.details, self.headers = code, message, details, headers or {}
        super().__init__(message)

    @property
    def status(self) -> int:
        return CODES[self.code][0]

    def body(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message, "details": self.details}}


def from_domain(exc: BaseException, *, department: str | None = None) -> ApiError | None:
    """The API error for a domain exception, or None if it is not one we expect. ``department``
    is the caller's (None before authentication): what another department holds is not named."""
    from sqlalchemy.exc import InterfaceError, OperationalError
    from sqlalchemy.exc import TimeoutError as PoolTimeout

    from ca.errors import CaError
    from hsm.errors import HsmError
    from ledger.audit import AuditError
    from ledger.config import ConfigError
    from ledger.database import DatabaseError
    from licences.catalogue import IssuerNotAllowed, LicenceDataError, UnknownLicenceType
    from licences.identifiers import IdentifierError
    from licences.issuance import NoLicenceSeal, NotTheIssuer
    from licences.layout import LayoutError
    from licences.lifecycle import LicenceExists, LicenceNotFound, LicenceRequestError, LicenceStateError
    from licences.metadata import MetadataError
    from ofd.errors import OfdError
    from pdf.errors import PdfError
    from seals.errors import SealError
    from seals.lifecycle import SealNotFound, SealNotUsable, SealRefused, SealRequestError

    from .credentials import AuthenticationFailed

    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, AuthenticationFailed):
        code = {
            "missing": "missing_credentials",
            "revoked": "revoked_credentials",
            "expired": "expired_credentials",
        }.get(exc.reason, "invalid_credentials")
        return ApiError(code, str(exc), headers={"WWW-Authenticate": "Bearer"})
    if isinstance(exc, NotTheIssuer):  # answered as a missing licence: nothing about the owner leaks
        return ApiError("licence_not_found", str(LicenceNotFound(exc.identifier)))
    if isinstance(exc, LicenceDataError):
        return ApiError(
            "invalid_licence_data",
            "the licence data has errors; every one is listed in details (每个字段错误见 details)",
            [e.as_dict() for e in exc.errors],
        )
    if isinstance(exc, LicenceExists) and not _held_by(exc.existing, department):
        # Another department's live licence has this number: say that it is taken, not by whom.
        return ApiError(
            "licence_exists",
            f"the {exc.field.replace('_', ' ')} {exc.value} is held by a live licence "
            "(该证照编号已有有效证照)",
            {"field": exc.field},
        )
    table: list[tuple[type[BaseException] | tuple[type[BaseException], ...], str]] = [
        (UnknownLicenceType, "unknown_licence_type"),
        (IssuerNotAllowed, "issuer_not_allowed"),
        (IdentifierError, "invalid_identifier"),
        (LicenceNotFound, "licence_not_found"),
        (LicenceStateError, "licence_state_conflict"),
        (LicenceExists, "licence_exists"),
        (MetadataError, "invalid_metadata"),
        (LayoutError, "layout_failed"),
        (LicenceRequestError, "invalid_request"),
        (NoLicenceSeal, "no_licence_seal"),
        (SealNotFound, "seal_not_found"),
        (SealNotUsable, "seal_not_usable"),
        (SealRefused, "seal_refused"),
        (SealRequestError, "invalid_seal_request"),
        ((SealError, OfdError, PdfError), "invalid_document"),
    ]
    for types, code in table:
        if isinstance(exc, types):
            return ApiError(code, str(exc), _details(exc))
    infrastructure = (DatabaseError, AuditError, HsmError, CaError, ConfigError)
    if isinstance(exc, (*infrastructure, OperationalError, InterfaceError, PoolTimeout)):
        # Infrastructure (a database down or locked, a pool exhausted, the key store away): the
        # message may name servers, paths or SQL, so it stays in the server log.
        return ApiError(
            "service_unavailable",
            "the service cannot complete the request now; retry later",
            headers={"Retry-After": str(UNAVAILABLE_RETRY_AFTER)},
        )
    return None


def api_error_for(exc: BaseException, *, method: str, path: str, department: str | None = None) -> ApiError:
    """What the caller is told about ``exc``; an infrastructure failure is logged with its
    detail, an unexpected one with its traceback under an incident id the answer quotes."""
    known = from_domain(exc, department=department)
    if known is not None:
        if known.code == "service_unavailable" and known is not exc:
            log.error("%s %s: %s: %s", method, path, type(exc).__name__, exc)
        return known
    incident = uuid.uuid4().hex
    log.error("incident %s on %s %s", incident, method, path, exc_info=exc)
    return ApiError(
        "internal_error",
        f"the service failed unexpectedly (incident {incident}); the operators have the details",
        {"incident": incident},
    )


def _held_by(identifier: str | None, department: str | None) -> bool:
    """Whether the licence ``identifier`` (None: no licence named) is ``department``'s own."""
    if identifier is None:
        return True
    from licences.identifiers import IdentifierError, LicenceIdentifier

    try:
        return department is not None and LicenceIdentifier.parse(identifier).issuer_code == department
    except IdentifierError:
        return False


def _details(exc: BaseException) -> dict[str, Any] | None:
    """The machine-readable parts some domain errors carry (what a caller branches on)."""
    from licences.lifecycle import LicenceExists, LicenceStateError
    from licences.metadata import MetadataError
    from seals.lifecycle import SealNotUsable

    if isinstance(exc, LicenceStateError):
        return {"identifier": exc.identifier, "status": exc.status, "act": exc.act}
    if isinstance(exc, LicenceExists):
        return {"field": exc.field, "existing": exc.existing}
    if isinstance(exc, MetadataError):
        return {"problems": exc.problems}
    if isinstance(exc, SealNotUsable):
        return {"es_id": exc.es_id, "reason": exc.reason}
    return None


def error_responses(*codes: str) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI ``responses`` of an endpoint that can fail with ``codes`` (grouped by status,
    one example per code), plus the failures every endpoint has."""
    wanted = dict.fromkeys((*codes, "invalid_request", "internal_error", "service_unavailable"))
    by_status: dict[int, list[str]] = {}
    for code in wanted:
        by_status.setdefault(CODES[code][0], []).append(code)
    out: dict[int | str, dict[str, Any]] = {}
    for status, listed in sorted(by_status.items()):
        out[status] = {
            "model": ErrorBody,
            "description": "; ".join(f"`{c}`: {CODES[c][1]}" for c in listed),
            "content": {
                "application/json": {
                    "examples": {
                        c: {
                            "summary": CODES[c][1],
                            "value": {"error": {"code": c, "message": CODES[c][1], "details": None}},
                        }
                        for c in listed
                    }
                }
            },
        }
    return out
