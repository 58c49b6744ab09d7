"""OCSP for the public service (RFC 6960 over HTTP, RFC 5019 lightweight profile), without a key.

The service cannot sign, so it answers from the responses ``zhengyin publish`` pre-produced
(:mod:`trust.ocsp_publish`): the request's single CertID names the stored file (hash algorithm,
issuerKeyHash, serial), and the stored response is handed out only if its own CertID is the
request's — issuerNameHash included — so a CertID with the right key hash and a wrong name gets
nothing. SHA-1 (what RFC 5019 clients send) and SM3 CertIDs are both answered.

``POST /ocsp``
    the DER OCSPRequest as the body (``application/ocsp-request``), at most
    :data:`MAX_REQUEST_BYTES` (more: 413, read no further).
``GET /ocsp/{request}``
    the DER request base64-encoded (standard or URL-safe alphabet, padding optional) and
    URL-encoded (RFC 6960 appendix A.1): cacheable by any HTTP cache.

Answers: the stored response (``application/ocsp-response``) with ``ETag``, ``Last-Modified``
(its producedAt) and ``Cache-Control: max-age`` up to its nextUpdate, never past the
configured cap (a revocation published early reaches caches within the cap); 304 for a
current ``If-None-Match``. A request with a nonce gets the same response, without the nonce
(RFC 5019 §2.2.1). Other answers are unsigned OCSP error responses, never cached:
``malformedRequest`` for anything unreadable or with more than one CertID (RFC 5019 §2.1.1:
clients send one), ``unauthorized`` for a CertID nothing was published for, ``tryLater`` when
the stored response has passed its nextUpdate (``zhengyin publish`` has not run in time).

OCSP is not rate-limited: a serial number reveals no licence and every answer is a file read.
"""

from __future__ import annotations

import base64
import binascii
import email.utils
from datetime import UTC, datetime
from typing import Annotated
from urllib.parse import unquote

from asn1crypto import ocsp
from fastapi import FastAPI, Path, Request
from fastapi.responses import Response

from ca.ocsp import read_request, status_response
from hsm.sm3 import sm3
from trust.ocsp_publish import CERT_ID_HASHES, response_file

from .published import etag_matches
from .records import PublicRecords
from .settings import VerifySettings

REQUEST_TYPE = "application/ocsp-request"
RESPONSE_TYPE = "application/ocsp-response"
#: An RFC 5019 request (one CertID, perhaps a nonce) is about 120 bytes; allow signed ones too.
MAX_REQUEST_BYTES = 8 * 1024
MAX_GET_CHARS = 4 * ((MAX_REQUEST_BYTES + 2) // 3) + 16
#: issuerKeyHash length per CertID hash, and the longest serial RFC 5280 allows (20 octets).
DIGEST_SIZES = {"sha1": 20, "sm3": 32}
MAX_SERIAL_BITS = 160

_BINARY = {"schema": {"type": "string", "format": "binary"}}
_OCSP_RESPONSES = {200: {"description": "an OCSPResponse (DER): the stored answer, or an OCSP error status",
                         "content": {RESPONSE_TYPE: _BINARY}}}


class OversizedRequest(Exception):
    """The POST body is larger than :data:`MAX_REQUEST_BYTES`."""


def decode_get_request(encoded: str) -> bytes | None:
    """The DER request of ``GET /ocsp/{encoded}`` (base64 or base64url, URL-encoded), or None."""
    if not encoded or len(encoded) > MAX_GET_CHARS:
        return None
    text = unquote(encoded) if "%" in encoded else encoded  # a client that encoded twice
    text = text.strip().rstrip("=")
    if "-" in text or "_" in text:
        if "+" in text or "/" in text:
            return None  # two alphabets mixed: not something any client sends
        text = text.translate(str.maketrans("-_", "+/"))
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        return None


def _error(status: str, http_status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(status_response(status), status_code=http_status, media_type=RESPONSE_TYPE,
                    headers={"Cache-Control": "no-store", **(headers or {})})


def _stored_answer(stored: bytes, cert_id: ocsp.CertId) -> tuple[datetime, datetime] | None:
    """(producedAt, nextUpdate) of a stored response whose one CertID is ``cert_id``, else None."""
    try:
        basic = ocsp.OCSPResponse.load(stored)["response_bytes"]["response"].parsed
        data = basic["tbs_response_data"]
        (single,) = data["responses"]
        theirs = single["cert_id"]
        same = (theirs["hash_algorithm"]["algorithm"].native == cert_id["hash_algorithm"]["algorithm"].native
                and bytes(theirs["issuer_name_hash"]) == bytes(cert_id["issuer_name_hash"])
                and bytes(theirs["issuer_key_hash"]) == bytes(cert_id["issuer_key_hash"])
                and theirs["serial_number"].native == cert_id["serial_number"].native)
        next_update = single["next_update"].native
        if not same or next_update is None:
            return None
        return data["produced_at"].native, next_update
    except (ValueError, TypeError, KeyError):  # a damaged file is as good as none
        return None


def answer(records: PublicRecords, request: bytes | None, *, now: datetime, max_cache: int,
           if_none_match: str | None = None) -> Response:
    """The HTTP answer to one DER OCSPRequest (None: undecodable) from what was published."""
    summary = None if request is None else read_request(request, max_bytes=MAX_REQUEST_BYTES)
    if summary is None or len(summary.cert_ids) != 1:
        return _error("malformed_request")
    (cert_id,) = summary.cert_ids
    algorithm = cert_id["hash_algorithm"]["algorithm"].native
    key_hash, serial = bytes(cert_id["issuer_key_hash"]), cert_id["serial_number"].native
    if (algorithm not in CERT_ID_HASHES or len(key_hash) != DIGEST_SIZES[algorithm]
            or not 0 < serial < 1 << MAX_SERIAL_BITS):
        return _error("unauthorized")
    stored = records.published(response_file(algorithm, key_hash, serial))
    times = None if stored is None else _stored_answer(stored, cert_id)
    if stored is None or times is None:
        return _error("unauthorized")
    produced_at, next_update = times
    remaining = int((next_update - now).total_seconds())
    if remaining <= 0:
        return _error("try_later", headers={"Retry-After": "300"})
    etag = f'"{sm3(stored).hex()[:32]}"'
    headers = {"ETag": etag, "Last-Modified": email.utils.format_datetime(produced_at.astimezone(UTC),
                                                                          usegmt=True),
               "Cache-Control": f"public, max-age={min(max_cache, remaining)}, no-transform, must-revalidate"}
    if etag_matches(if_none_match, etag):
        return Response(status_code=304, headers=headers)
    return Response(stored, media_type=RESPONSE_TYPE, headers=headers)


async def _read_body(request: Request) -> bytes:
    """The body, stopping as soon as it passes :data:`MAX_REQUEST_BYTES`."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_REQUEST_BYTES:
        raise OversizedRequest
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_REQUEST_BYTES:
            raise OversizedRequest
    return bytes(body)


def register(app: FastAPI, records: PublicRecords, settings: VerifySettings) -> None:
    """Add ``POST /ocsp`` and ``GET /ocsp/{request}`` to the public app."""

    def now() -> datetime:
        return datetime.now(UTC).replace(microsecond=0)

    @app.post("/ocsp", response_class=Response, responses=_OCSP_RESPONSES, openapi_extra={
        "requestBody": {"required": True, "content": {REQUEST_TYPE: _BINARY}}})
    async def ocsp_post(request: Request) -> Response:
        """OCSP over POST: a DER OCSPRequest with one CertID (SHA-1 or SM3)."""
        try:
            body = await _read_body(request)
        except OversizedRequest:
            return _error("malformed_request", 413, {"Connection": "close"})
        return answer(records, body, now=now(), max_cache=settings.max_cache_seconds,
                      if_none_match=request.headers.get("if-none-match"))

    @app.get("/ocsp/{encoded:path}", response_class=Response, responses=_OCSP_RESPONSES)
    def ocsp_get(request: Request, encoded: Annotated[str, Path(
            description="the DER OCSPRequest, base64 (or base64url), URL-encoded")]) -> Response:
        """OCSP over GET (RFC 6960 appendix A.1): cacheable."""
        return answer(records, decode_get_request(encoded), now=now(), max_cache=settings.max_cache_seconds,
                      if_none_match=request.headers.get("if-none-match"))
