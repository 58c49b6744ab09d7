"""The holder's side of data reuse on the public app: grants (授权) and the usage log (用证记录).

Holders have no keys to offer, so these endpoints live on the public service and authenticate
the holder with their credential (:func:`verify_api.holder_auth.current_holder`). A holder
sees and acts on their own licence only — the grants and usage rows of its versions, the chain
of changes and renewals the credential follows (:mod:`licences.succession`), not those of another
licence that had the same number — and another holder's grant id reads exactly like one that
does not exist.

``POST /api/v1/holder/grants``
    ``{"client_id", "purpose", "valid_until", "fields": [...] | null}``: let one department
    client read this licence (the named fields, or all of them with null) for this purpose until
    then (at most a year). 201 with the grant.
``GET /api/v1/holder/grants``
    every grant on the licence, newest first, with its state (active, expired, revoked).
``DELETE /api/v1/holder/grants/{grant_id}``
    revoke it: the next department request is answered without it.
``GET /api/v1/holder/usage[?limit=N]``
    who read the licence, when, what, for which purpose and under which grant.

The grant endpoints write (the grant row and its audit entry): the public service's database
role needs INSERT/UPDATE on ``reuse_grant`` and INSERT on ``audit_log`` (DEPLOYMENT.md).
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Path, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from licences.holders import Holder, HolderAuthenticationFailed
from licences.registry import LicenceRecord
from licences.reuse_clients import ClientRegistry, ReuseRequestError
from licences.reuse_grants import GrantBook, GrantedLicence, GrantNotFound
from licences.succession import licence_versions
from licences.usage_log import usage_of_licence

from .holder_auth import HolderRefused, current_holder, holder_credentials
from .records import PublicRecords


class GrantRequest(BaseModel):
    """A holder's grant to a department client."""

    model_config = ConfigDict(extra="forbid")

    client_id: str = Field(max_length=40, description="the department client's id (dept-…)")
    purpose: str = Field(max_length=400, description="用证事由: the department must state exactly this")
    valid_until: datetime = Field(description="when the grant ends (ISO 8601 with a zone; at most a year)")
    fields: list[Annotated[str, Field(max_length=100)]] | None = Field(
        default=None, max_length=100, description="the licence data fields granted; null: all")


class GrantRefused(Exception):
    def __init__(self, status: int, code: str, message: str):
        self.status, self.code, self.message = status, code, message
        super().__init__(message)


def _licence(request: Request, records: PublicRecords, holder: Holder) -> LicenceRecord:
    """The version of the holder's licence in force now (HolderRefused if it has ended)."""
    try:
        identifier = holder_credentials(request).current_identifier(holder)
    except HolderAuthenticationFailed:
        raise HolderRefused() from None
    record = records.licence(identifier)
    if record is None:
        raise HolderRefused()
    return record


def register(app: FastAPI, records: PublicRecords) -> None:
    """Add the holder's grant and usage routes to ``app`` (after :func:`verify_api.holder_auth.install`)."""
    domain = records.domain
    book = GrantBook(domain.db, domain.audit)

    @app.exception_handler(GrantRefused)
    async def refused(request: Request, exc: GrantRefused) -> JSONResponse:
        return JSONResponse({"error": {"code": exc.code, "message": exc.message}}, status_code=exc.status)

    def client_names() -> dict[str, str]:
        return {c.id: c.name for c in ClientRegistry(domain.db, domain.audit).list()}

    @app.post("/api/v1/holder/grants", status_code=201, tags=["holder"])
    def create_grant(request: Request, grant: GrantRequest,
                     holder: Annotated[Holder, Depends(current_holder)]) -> JSONResponse:
        """Grant a department client access to this licence's data (all fields or the named ones)."""
        record = _licence(request, records, holder)
        if grant.valid_until.tzinfo is None:
            raise GrantRefused(400, "bad_request", "valid_until needs a time zone "
                               "(e.g. 2026-01-02T03:04:05Z)")
        field_names = _field_names(records, record)
        try:
            row = book.grant(GrantedLicence(record.type_code, record.licence_number, record.identifier,
                                            field_names),
                             grant.client_id, purpose=grant.purpose, valid_until=grant.valid_until,
                             fields=grant.fields, granted_by=holder.credential_id)
        except ReuseRequestError as exc:
            raise GrantRefused(400, "grant_refused", str(exc)) from None
        now = datetime.now(UTC)
        return JSONResponse(row.as_dict(now, client_names().get(row.client_id)), status_code=201)

    @app.get("/api/v1/holder/grants", tags=["holder"])
    def list_grants(request: Request, holder: Annotated[Holder, Depends(current_holder)]) -> dict[str, Any]:
        """Every grant on this licence, newest first."""
        record = _licence(request, records, holder)
        names, now = client_names(), datetime.now(UTC)
        return {"grants": [g.as_dict(now, names.get(g.client_id))
                           for g in book.for_licence(licence_versions(domain.db, record.identifier))]}

    @app.delete("/api/v1/holder/grants/{grant_id}", tags=["holder"])
    def revoke_grant(request: Request, grant_id: Annotated[str, Path(max_length=40)],
                     holder: Annotated[Holder, Depends(current_holder)]) -> dict[str, Any]:
        """Revoke one of this licence's grants; it stops working at once."""
        record = _licence(request, records, holder)
        try:
            row = book.revoke(grant_id, licence_versions(domain.db, record.identifier),
                              revoked_by=holder.credential_id)
        except GrantNotFound:
            raise GrantRefused(404, "not_found", "there is no such grant on your licence") from None
        return row.as_dict(datetime.now(UTC), client_names().get(row.client_id))

    @app.get("/api/v1/holder/usage", tags=["holder"])
    def usage(request: Request, holder: Annotated[Holder, Depends(current_holder)],
              limit: Annotated[int, Query(ge=1, le=500)] = 100) -> dict[str, Any]:
        """The usage log of this licence (用证记录): who read what, when, why, under which grant."""
        record = _licence(request, records, holder)
        rows = usage_of_licence(domain.db, licence_versions(domain.db, record.identifier), limit=limit)
        return {"usage": [row.as_dict(name) for row, name in rows]}


@functools.cache
def _catalogue():
    from licences.catalogue import Catalogue

    return Catalogue.load()


def _field_names(records: PublicRecords, record: LicenceRecord) -> list[str]:
    """The fields a holder may grant: the licence type's, or (a retired type) the licence's own."""
    from licences.catalogue import UnknownLicenceType

    try:
        return list(_catalogue().get(record.type_code).fields)
    except UnknownLicenceType:
        return list(record.data)
