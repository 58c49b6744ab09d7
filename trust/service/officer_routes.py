"""``POST /api/v1/seals/{es_id}/rotate``: a security officer rotates one of the department's seal keys.

Only a security officer's API key may (``zhengyin service key create --ops rotate``, see
:mod:`.credentials`): a department's key is answered 403 ``operation_not_permitted`` and the
refusal is audited like every other. The officer's key names a department, like every key,
and acts only on that department's seals: another department's seal is ``seal_not_found``,
word for word what a missing one gets (and an audited refusal).

The rotation itself is :func:`seals.rotation.rotate_seal`, under the key's actor
(``api:<key id>``): new key version, certificate and seal version, the old certificate kept
valid unless ``revoke_old``. It is not idempotent by nature — each call makes another version
— so a client that may retry sends an ``Idempotency-Key``: the retry then gets the first
answer instead of a second rotation.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request
from pydantic import Field

from seals.lifecycle import SealNotFound
from seals.rotation import RotationIncomplete, rotate_seal

from .context import Caller, authenticated
from .credentials import OFFICER_ROLE
from .errors import ApiError, error_responses
from .idempotency import StoredResponse
from .licence_routes import AUTH, IDEMPOTENCY_KEY, JSON_BODY, PREFIX, REPLAYED_HEADER, answer
from .schemas import Strict

ROTATE = "rotate"
router = APIRouter(prefix=PREFIX, tags=["security officers"])


class RotateRequest(Strict):
    revoke_old: bool = Field(
        False,
        description="also revoke the old signer certificate(s), reason superseded; by default they stay "
        "valid until they expire, so documents signed before verify without a proof of their signing time",
    )
    reason: str | None = Field(None, max_length=500, description="why (seal history and audit log)")


class RotationResponse(Strict):
    es_id: str
    rotated_at: datetime
    old_version: int = Field(description="the seal version that signed until now (still verifies)")
    new_version: int = Field(description="the seal version that signs from now on")
    old_keys: list[str] = Field(description="key-store versions (label/vN) no longer signing")
    new_keys: list[str]
    old_certificates: list[str] = Field(description="serials (hex) of the old signer certificates")
    new_certificates: list[str]
    old_fingerprint_sm3: str = Field(description="SM3 (hex) of the old SESeal")
    new_fingerprint_sm3: str
    valid_start: datetime
    valid_end: datetime
    maker_serial: str
    old_keys_disabled: bool = Field(description="the old key versions no longer sign")
    old_certificates_revoked: bool
    warnings: list[str] = Field(
        default_factory=list,
        description="what was left undone in retiring the old version (a key not disabled, a certificate "
        "not revoked); the rotation itself is done",
    )


def _officer(caller: Caller, subject: str) -> None:
    if not caller.key.allows(ROTATE):
        caller.refuse(ROTATE, subject, "operation_not_permitted", role=caller.key.role)
        raise ApiError(
            "operation_not_permitted",
            "rotating a seal's key is a security officer's act: use a security officer's API key "
            f"(operations: {ROTATE}); this key's operations are {', '.join(caller.key.operations)}",
            {"operation": ROTATE, "required_role": OFFICER_ROLE, "role": caller.key.role},
        )


@router.post(
    "/seals/{es_id}/rotate",
    response_model=RotationResponse,
    responses={
        200: {"description": "the seal's new version signs from now on", "headers": REPLAYED_HEADER},
        **error_responses(
            *AUTH,
            *JSON_BODY,
            "seal_not_found",
            "seal_refused",
            "invalid_seal_request",
            "idempotency_key_reused",
            "invalid_idempotency_key",
            "request_in_progress",
        ),
    },
    summary="Rotate a seal's signer key (security officers): new key, certificate and seal version",
)
def rotate(
    es_id: Annotated[str, Path(max_length=14, description="the seal's esID")],
    body: RotateRequest,
    request: Request,
    caller: Annotated[Caller, Depends(authenticated)],
    idempotency_key: IDEMPOTENCY_KEY = None,
):
    subject = f"seal:{es_id}"
    _officer(caller, subject)
    seals = caller.domain.seals
    record = seals.find(es_id)
    if record.credit_code != caller.department:
        caller.refuse(ROTATE, subject, "another_department")
        raise SealNotFound(es_id)

    def act() -> StoredResponse:
        from ..dangerous_acts import request_superseded_revocations

        try:
            rotation, warnings = rotate_seal(seals, record.es_id, reason=body.reason), []
        except RotationIncomplete as exc:  # rotated all the same: say so, do not invite a retry
            rotation, warnings = exc.rotation, [str(exc)]
        # Revoking the old certificates is under dual control: filed for a second officer.
        revocations = request_superseded_revocations(caller.domain, rotation) if body.revoke_old else []
        return StoredResponse(200, rotation.as_dict() | {"warnings": warnings,
                                                         "revocation_requests": revocations})

    return answer(request, caller, idempotency_key, body.model_dump(), act)
