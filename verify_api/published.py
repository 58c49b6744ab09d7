"""Serving what ``zhengyin publish`` wrote: the trust list, its signature and the CRLs.

Stable URLs, cacheable: an ETag (SM3 of the bytes) answers ``If-None-Match`` with 304, and
``max-age`` runs to the file's own next update, but never longer than the configured cap — so
a revocation published early reaches clients within the cap, not at the old next update.
"""

from __future__ import annotations

import json
from datetime import datetime

from fastapi.responses import Response

from hsm.sm3 import sm3
from trust.trust_list import CRL_FILES, SIGNATURE_FILE, TRUST_LIST_FILE, parse_time

from .records import PublicRecords

#: URL path -> (file under <home>/public, media type).
PUBLISHED = {
    "/trust-list.json": (TRUST_LIST_FILE, "application/json"),
    "/trust-list.p7s": (SIGNATURE_FILE, "application/pkcs7-signature"),
    "/crl/root.crl": (CRL_FILES["root"], "application/pkix-crl"),
    "/crl/issuing.crl": (CRL_FILES["issuing"], "application/pkix-crl"),
}


def next_update(records: PublicRecords, name: str, data: bytes) -> datetime | None:
    """When the published file stops being current (None if that cannot be read: no caching)."""
    try:
        if name.endswith(".crl"):
            from ca.crl import load_crl

            return load_crl(data)["tbs_cert_list"]["next_update"].native
        # A signature's list is its namesake: trust-list.p7s <- trust-list.json, -7.p7s <- -7.json.
        listed = data if name.endswith(".json") else records.published(name.removesuffix(".p7s") + ".json")
        return parse_time(json.loads(listed or b"{}")["next_update"])
    except Exception:  # a damaged file is still served as it is (clients verify it), just not cached
        return None


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    """Whether an If-None-Match header names ``etag`` (weak or strong) or ``*``."""
    if not if_none_match:
        return False
    tags = [t.strip().removeprefix("W/") for t in if_none_match.split(",")]
    return "*" in tags or etag in tags


def published_response(records: PublicRecords, name: str, media_type: str, if_none_match: str | None,
                       now: datetime, max_cache: int) -> Response | None:
    """The file as a response (304 when the client's copy is current), or None if not published."""
    data = records.published(name)
    if data is None:
        return None
    until = next_update(records, name, data)
    max_age = 0 if until is None else max(0, min(max_cache, int((until - now).total_seconds())))
    etag = f'"{sm3(data).hex()[:32]}"'
    headers = {"ETag": etag, "Cache-Control": f"public, max-age={max_age}"}
    if etag_matches(if_none_match, etag):
        return Response(status_code=304, headers=headers)
    return Response(data, media_type=media_type, headers=headers)
