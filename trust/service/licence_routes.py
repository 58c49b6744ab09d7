"""``/api/v1/licences``: issue, read, list, change, renew and the lifecycle acts.

A department acts only on its own licences. The identifier itself names the issuer, so a
request about another department's licence is answered ``licence_not_found`` — word for word
what a missing licence gets — before the library is even asked: nothing can be learnt about
other departments' licences by trying identifiers.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import JSONResponse, Response

from licences.identifiers import LicenceIdentifier
from licences.lifecycle import LicenceNotFound
from licences.summary import licence_summary, parse_status_filter

from .context import Caller, authenticated, state_of
from .errors import ApiError, error_responses
from .idempotency import StoredResponse, fingerprint
from .schemas import (
    ChangeRequest,
    IssuedResponse,
    IssueRequest,
    LicencePage,
    LicenceSummary,
    LicenceView,
    OptionalReasonRequest,
    ReasonRequest,
    RenewRequest,
)

PREFIX = "/api/v1"
MEDIA_TYPES = {"ofd": "application/ofd", "pdf": "application/pdf"}
AUTH = (
    "missing_credentials",
    "invalid_credentials",
    "revoked_credentials",
    "expired_credentials",
    "operation_not_permitted",
)
OWN = (*AUTH, "licence_type_not_permitted", "invalid_identifier", "licence_not_found")
#: What every endpoint with a JSON body can answer before the endpoint itself runs.
JSON_BODY = ("bad_request", "unsupported_media_type", "payload_too_large")
ISSUING = (
    *JSON_BODY,
    "invalid_licence_data",
    "unknown_licence_type",
    "issuer_not_allowed",
    "invalid_metadata",
    "layout_failed",
    "licence_exists",
    "no_licence_seal",
    "seal_not_usable",
    "idempotency_key_reused",
    "invalid_idempotency_key",
    "request_in_progress",
)
IDEMPOTENCY_KEY = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        description=(
            "makes a retry safe: the first successful answer is stored for 24 h and returned again for "
            "the same key and body; the same key with another body is refused (idempotency_key_reused)"
        ),
    ),
]

REPLAYED_HEADER = {
    "Idempotent-Replayed": {
        "description": "`true` when this is the stored answer to an earlier request with the same "
        "Idempotency-Key (nothing new was made); absent otherwise",
        "schema": {"type": "string", "enum": ["true"]},
    }
}
LOCATION_HEADER = {
    "Location": {
        "description": "the new licence's URL (`/api/v1/licences/{identifier}`)",
        "schema": {"type": "string"},
    }
}
ISSUED_RESPONSE = {"description": "the licence issued", "headers": {**LOCATION_HEADER, **REPLAYED_HEADER}}

router = APIRouter(prefix=PREFIX, tags=["licences"])
CALLER = Annotated[Caller, Depends(authenticated)]


def links(identifier: str) -> dict[str, str]:
    base = f"{PREFIX}/licences/{identifier}"
    return {"self": base, "ofd": f"{base}/ofd", "pdf": f"{base}/pdf"}


def own_licence(caller: Caller, text: str, operation: str) -> LicenceIdentifier:
    """The identifier, if the caller may ``operation`` on it; another department's is 'not found'
    (and an audited refusal: someone tried a licence that is not theirs)."""
    caller.require(operation)
    identifier = LicenceIdentifier.parse(text.strip())
    subject = f"licence:{identifier.text}"
    if identifier.issuer_code != caller.department:
        caller.refuse(operation, subject, "another_department")
        raise LicenceNotFound(identifier.text)
    caller.require(operation, identifier.type_code, subject=subject)
    return identifier


def issued_body(issued) -> dict[str, Any]:
    return {
        "identifier": issued.identifier,
        "qr": issued.qr,
        "metadata": issued.metadata.as_dict(),
        "links": links(issued.identifier),
    }


def summary(record, now: datetime) -> dict[str, Any]:
    """The licence summary the command line shows too, with the API's links."""
    return licence_summary(record, now) | {"links": links(record.identifier)}


def answer(request: Request, caller: Caller, key: str | None, content: Any, act) -> JSONResponse:
    """Run ``act`` (returning a StoredResponse) once per Idempotency-Key, or simply once without one."""
    replayed = False
    if key is None:
        result = act()
    else:
        store = state_of(request).idempotency
        digest = fingerprint(request.method, request.url.path, content)
        result, replayed = store.run(caller.key.key_id, key, digest, act)
    headers = {"Idempotent-Replayed": "true"} if replayed else {}
    if result.status == 201 and "identifier" in result.body:
        headers["Location"] = links(result.body["identifier"])["self"]
    return JSONResponse(result.body, status_code=result.status, headers=headers)


@router.post(
    "/licences",
    status_code=201,
    response_model=IssuedResponse,
    responses={201: ISSUED_RESPONSE, **error_responses(*AUTH, "licence_type_not_permitted", *ISSUING)},
    summary="Issue a licence: sealed OFD and PDF with a QR code, recorded in the library",
)
def issue(body: IssueRequest, request: Request, caller: CALLER, idempotency_key: IDEMPOTENCY_KEY = None):
    caller.require("issue", body.type)

    def act() -> StoredResponse:
        issued = caller.domain.licence_desk.issue(
            body.type, body.data, issuer_code=caller.department, source_id=body.source_id
        )
        return StoredResponse(201, issued_body(issued))

    return answer(request, caller, idempotency_key, body.model_dump(), act)


@router.get(
    "/licences",
    response_model=LicencePage,
    responses=error_responses(*AUTH, "licence_type_not_permitted"),
    summary="One page of the department's own licences",
)
def list_licences(
    caller: CALLER,
    type: Annotated[str | None, Query(max_length=21, description="licence type code")] = None,
    status: Annotated[
        str | None,
        Query(
            max_length=20,
            description="the effective status, as the summaries show it: a `status` code (01 valid, "
            "02 suspended, 03 cancelled, 04 deregistered, 05 expired, 06 transferred, 07 revoked, "
            "99 other) or a `status_name` (valid, …, revoked, other, superseded = 99)",
        ),
    ] = None,
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
):
    caller.require("list")
    if type is None and "*" not in caller.key.types:
        if len(caller.key.types) != 1:
            raise ApiError(
                "invalid_request",
                "this API key covers several licence types: give type=",
                {"types": list(caller.key.types)},
            )
        type = caller.key.types[0]
    if type is not None:
        caller.require("list", type)
    now = datetime.now(UTC)
    wanted = parse_status_filter(status) if status is not None else None
    rows = caller.domain.licences.licences(
        type_code=type, issuer_code=caller.department, status=wanted, page=page, limit=limit, now=now
    )
    caller.audit(
        "service.licence.list",
        f"department:{caller.department}",
        {"type": type, "status": status, "page": page, "limit": limit, "count": len(rows)},
    )
    return {"items": [summary(r, now) for r in rows], "page": page, "limit": limit}


@router.get(
    "/licences/{identifier}",
    response_model=LicenceView,
    responses=error_responses(*OWN),
    summary="A licence's metadata, status and history",
)
def show(identifier: str, caller: CALLER):
    ident = own_licence(caller, identifier, "read")
    library, now = caller.domain.licences, datetime.now(UTC)
    record = library.find(ident)
    history = [
        {
            "act": e.act,
            "from_status": e.from_status,
            "to_status": e.to_status,
            "actor": e.actor,
            "at": e.at.isoformat(),
            "reason": e.reason,
        }
        for e in library.events(ident)
    ]
    caller.audit("service.licence.read", f"licence:{ident.text}", {"part": "metadata"})
    return summary(record, now) | {
        "metadata": library.current_metadata(ident, now).as_dict(),
        "history": history,
    }


def _document_route(kind: str):
    def document(identifier: str, caller: CALLER) -> Response:
        ident = own_licence(caller, identifier, "read")
        data = caller.domain.licences.document(ident, kind)
        caller.audit("service.licence.read", f"licence:{ident.text}", {"part": kind})
        filename = ident.text.replace(".", "_") + "." + kind
        return Response(
            data,
            media_type=MEDIA_TYPES[kind],
            headers={"Content-Disposition": f'attachment; filename="{filename}"'},
        )

    document.__name__ = f"licence_{kind}"
    router.add_api_route(
        f"/licences/{{identifier}}/{kind}",
        document,
        methods=["GET"],
        response_class=Response,
        summary=f"The licence's signed {kind.upper()}, as stored",
        responses={
            200: {
                "content": {MEDIA_TYPES[kind]: {"schema": {"type": "string", "format": "binary"}}},
                "description": f"the {kind.upper()} bytes",
            },
            **error_responses(*OWN),
        },
    )


for _kind in MEDIA_TYPES:
    _document_route(_kind)


@router.post(
    "/licences/{identifier}/change",
    status_code=201,
    response_model=IssuedResponse,
    responses={201: ISSUED_RESPONSE, **error_responses(*OWN, "licence_state_conflict", *ISSUING)},
    summary="Change a licence: a new version with a new identifier; the old one is superseded",
)
def change(
    identifier: str,
    body: ChangeRequest,
    request: Request,
    caller: CALLER,
    idempotency_key: IDEMPOTENCY_KEY = None,
):
    ident = own_licence(caller, identifier, "change")

    def act() -> StoredResponse:
        issued = caller.domain.licence_desk.change(
            ident.text, body.data, issuer_code=caller.department, reason=body.reason
        )
        return StoredResponse(201, issued_body(issued))

    return answer(request, caller, idempotency_key, body.model_dump(), act)


@router.post(
    "/licences/{identifier}/renew",
    status_code=201,
    response_model=IssuedResponse,
    responses={201: ISSUED_RESPONSE, **error_responses(*OWN, "licence_state_conflict", *ISSUING)},
    summary="Renew a licence: a new version (new validity) linked to the old one",
)
def renew(
    identifier: str,
    body: RenewRequest,
    request: Request,
    caller: CALLER,
    idempotency_key: IDEMPOTENCY_KEY = None,
):
    ident = own_licence(caller, identifier, "renew")

    def act() -> StoredResponse:
        issued = caller.domain.licence_desk.renew(
            ident.text, body.data, issuer_code=caller.department, reason=body.reason
        )
        return StoredResponse(201, issued_body(issued))

    return answer(request, caller, idempotency_key, body.model_dump(), act)


def _act_route(act: str, model: type, summary_text: str):
    def run(identifier: str, body, caller: CALLER):
        ident = own_licence(caller, identifier, act)
        record = getattr(caller.domain.licences, act)(ident.text, body.reason)
        return summary(record, datetime.now(UTC))

    run.__annotations__["body"] = model
    run.__name__ = f"{act}_licence"
    router.add_api_route(
        f"/licences/{{identifier}}/{act}",
        run,
        methods=["POST"],
        response_model=LicenceSummary,
        responses=error_responses(*OWN, "licence_state_conflict", *JSON_BODY),
        summary=summary_text,
    )


_act_route("suspend", ReasonRequest, "Suspend a licence (02) until it is resumed")
_act_route("resume", OptionalReasonRequest, "Lift a suspension (back to 01)")
_act_route("revoke", ReasonRequest, "Revoke a licence (07, 吊销): final; its documents stay verifiable")
_act_route("cancel", ReasonRequest, "Cancel a licence (03, 撤销): final")
