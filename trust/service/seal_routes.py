"""``POST /api/v1/seal``: seal an uploaded OFD or PDF with one of the department's own seals.

The multipart body is parsed here, not by FastAPI's form handling, so that its shape is
bounded (one file, a handful of fields, small fields) besides its total size, which the
:mod:`.limits` middleware enforces while it is read. A seal of another department is
``seal_not_found``, as a missing one is. The sealed document is returned as bytes with the
input's media type; with an ``Idempotency-Key`` the sealed bytes are kept (24 h) in a
content-addressed document store under the home and the stored answer holds only their SM3
and media type, so that a retry gets the very same document instead of a second signature.

The department's 电子证照专用章 (licence seal) is refused here, by kind and by esID: it signs
only licences, through issuance, where the licence's identifier, registry row and QR code are
made with it. Stamping it on an arbitrary upload would make any document look like an
e-licence of the department. The refusal is 403 ``operation_not_permitted`` rather than
``seal_not_found``: the seal is the caller's own, so hiding that it exists protects nothing,
while "not found" would send the caller's developers looking for a seal that is there; the
answer says why and that issuance is the way.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException

from hsm.sm3 import sm3
from ofd.sealing import Placement
from seals.lifecycle import SealKind, SealNotFound

from ..signing import seal_document
from .context import Caller, authenticated, state_of
from .errors import ApiError, error_responses
from .idempotency import DOCUMENT_KEY, StoredResponse, fingerprint
from .licence_routes import AUTH, IDEMPOTENCY_KEY, MEDIA_TYPES, PREFIX, REPLAYED_HEADER
from .limits import BodyTooLarge

SEAL_PATH = f"{PREFIX}/seal"
MAX_FIELDS = 12
MAX_FIELD_BYTES = 1024
MAX_MM = 5000.0

router = APIRouter(prefix=PREFIX, tags=["documents"])


class SealForm(BaseModel):
    """The form fields besides ``file``."""

    model_config = ConfigDict(extra="forbid")

    es_id: str | None = Field(None, max_length=14, description="the seal's esID (one of es_id, kind)")
    kind: str | None = Field(
        None,
        max_length=32,
        description="or: a seal kind (official, licence, contract, "
        "finance, legal_representative): the department's first active seal of it",
    )
    signature: Literal["seal", "sign"] = Field(
        "seal",
        description="seal: OFD SES seal signature / PDF "
        "signature showing the seal; sign: GB/T 35275 SignedData",
    )
    page: int = Field(1, ge=1, le=100_000, description="page number, from 1")
    x: float | None = Field(None, ge=0, le=MAX_MM, description="stamp box left edge, mm from the left")
    y: float | None = Field(None, ge=0, le=MAX_MM, description="stamp box top edge, mm from the top")
    width: float | None = Field(None, gt=0, le=MAX_MM, description="mm (default: the seal picture's)")
    height: float | None = Field(None, gt=0, le=MAX_MM)


REQUEST_BODY = {
    "required": True,
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": ["file"],
                "properties": {
                    "file": {"type": "string", "format": "binary", "description": "the OFD or PDF"},
                    **SealForm.model_json_schema()["properties"],
                },
            }
        }
    },
}


async def _read_form(request: Request) -> tuple[bytes, SealForm]:
    try:
        form = await request.form(max_files=1, max_fields=MAX_FIELDS, max_part_size=MAX_FIELD_BYTES)
    except BodyTooLarge:
        raise
    except HTTPException as exc:  # python-multipart's complaint, as Starlette words it
        raise ApiError("invalid_request", f"the multipart body cannot be read: {exc.detail}") from None
    try:
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise ApiError(
                "invalid_request",
                "send the document as the multipart file field 'file'",
                [{"loc": ["body", "file"], "message": "Field required", "type": "missing"}],
            )
        items = [(k, v) for k, v in form.multi_items() if k != "file"]
        fields = dict(items)
        if any(not isinstance(v, str) for _, v in items) or len(fields) != len(items):
            raise ApiError("invalid_request", "only 'file' may be a file, and each field may appear once")
        try:
            params = SealForm.model_validate(fields)
        except ValidationError as exc:
            raise ApiError(
                "invalid_request",
                "the seal request's fields are invalid",
                [{"loc": ["body", *e["loc"]], "message": e["msg"], "type": e["type"]} for e in exc.errors()],
            ) from None
        if (params.es_id is None) == (params.kind is None):
            raise ApiError(
                "invalid_seal_request", "give exactly one of es_id (a seal) or kind (a kind of seal)"
            )
        data = await upload.read()
    finally:
        await form.close()
    if data[:4] == b"PK\x03\x04":
        return data, params
    if data[:5] == b"%PDF-":
        return data, params
    raise ApiError(
        "unsupported_document",
        "the file is neither an OFD package (a ZIP) nor a PDF by its first bytes",
        {"accepted": list(MEDIA_TYPES.values())},
    )


def _refuse_licence_seal(caller: Caller, subject: str) -> None:
    caller.refuse("seal", subject, "licence_seal_reserved")
    raise ApiError(
        "operation_not_permitted",
        "the 电子证照专用章 (licence seal) signs only licences, through issuance (POST /api/v1/licences); "
        "seal uploads with another of the department's seals (电子证照专用章仅用于签发证照)",
        {"operation": "seal", "seal_kind": SealKind.LICENCE.value},
    )


def _seal_of(caller: Caller, params: SealForm) -> str:
    """The esID to seal with: the department's own seal, by code or by kind — never its
    licence seal."""
    seals = caller.domain.seals
    if params.es_id is not None:
        record = seals.find(params.es_id)
        if record.credit_code != caller.department:
            caller.refuse("seal", f"seal:{params.es_id}", "another_department")
            raise SealNotFound(params.es_id)
        if SealKind.parse(record.kind) is SealKind.LICENCE:
            _refuse_licence_seal(caller, f"seal:{record.es_id}")
        return record.es_id
    kind = SealKind.parse(params.kind or "")
    if kind is SealKind.LICENCE:
        _refuse_licence_seal(caller, f"seal-kind:{kind.value}")
    found = seals.seals(caller.department, "active", kind=kind.value)
    if not found:
        raise ApiError("seal_not_found", f"the department has no active seal of kind {kind.value}")
    return found[0].es_id


@router.post(
    SEAL_PATH.removeprefix(PREFIX),
    response_class=Response,
    openapi_extra={"requestBody": REQUEST_BODY},
    summary="Seal an uploaded OFD or PDF with one of the department's seals",
    responses={
        200: {
            "description": "the sealed document, same format as uploaded",
            "headers": REPLAYED_HEADER,
            "content": {m: {"schema": {"type": "string", "format": "binary"}} for m in MEDIA_TYPES.values()},
        },
        **error_responses(
            *AUTH,
            "seal_not_found",
            "operation_not_permitted",
            "seal_not_usable",
            "seal_refused",
            "invalid_seal_request",
            "invalid_document",
            "unsupported_document",
            "unsupported_media_type",
            "payload_too_large",
            "bad_request",
            "idempotency_key_reused",
            "invalid_idempotency_key",
            "request_in_progress",
        ),
    },
)
async def seal(
    request: Request,
    caller: Annotated[Caller, Depends(authenticated)],
    idempotency_key: IDEMPOTENCY_KEY = None,
) -> Response:
    caller.require("seal")
    data, params = await _read_form(request)
    media = MEDIA_TYPES["pdf" if data[:5] == b"%PDF-" else "ofd"]

    sealed: bytes | None = None

    def act() -> StoredResponse:
        nonlocal sealed
        es_id = _seal_of(caller, params)
        placement = Placement(
            page=params.page - 1, x=params.x, y=params.y, width=params.width, height=params.height
        )
        sealed = seal_document(caller.domain, data, es_id, placement=placement, kind=params.signature)
        return StoredResponse(200, {"media_type": media})

    def run() -> tuple[bytes, str, bool]:
        if idempotency_key is None:
            act()
            return sealed, media, False
        store = state_of(request).idempotency

        def kept() -> StoredResponse:  # the bytes go to the document store, the row keeps the SM3
            answer = act()
            return StoredResponse(answer.status, answer.body | {DOCUMENT_KEY: store.documents.put(sealed)})

        digest = fingerprint(
            request.method, request.url.path, {"form": params.model_dump(), "file_sm3": sm3(data).hex()}
        )
        result, replayed = store.run(caller.key.key_id, idempotency_key, digest, kept)
        if not replayed:
            return sealed, media, False
        return store.documents.get(result.body[DOCUMENT_KEY]), result.body["media_type"], True

    document, media_type, replayed = await run_in_threadpool(run)
    extension = "pdf" if media_type == MEDIA_TYPES["pdf"] else "ofd"
    headers = {"Content-Disposition": f'attachment; filename="sealed.{extension}"'}
    if replayed:
        headers["Idempotent-Replayed"] = "true"
    return Response(document, media_type=media_type, headers=headers)
