"""The routes of live presentations (亮证), added to the public app by :func:`register`.

``POST /api/v1/holder/presentations`` (holder-authenticated, :func:`verify_api.holder_auth.current_holder`)
    mints a presentation of the holder's current licence version: the QR text
    ``<base>/P/<token>``, the QR code as a PNG (base64) and the expiry (lifetime
    ``ZHENGYIN_VERIFY_PRESENTATION_SECONDS``).
``GET /P/{token}``
    what a phone opens from the QR code: a page with one button, and nothing else. It does not
    consume the presentation, and does not even look it up: messenger apps and link scanners
    fetch URLs they see (WeChat, mail filters, chat previews), and a GET that used the code up
    would let any of them burn it before the verifier looks. The page is the same for every
    token, so it tells an enumerator nothing.
``POST /P/{token}``
    the button: consumes the presentation and shows that the licence was presented live, with
    the same masked verdict as the QR landing page (:func:`verify_api.licence_check.answer_for`,
    the ``licence.html`` template) — or, for an unknown, expired, used or revoked one, one red
    "not valid" page.
``GET /api/v1/presentations/{token}``
    the same for programs (a verifier's app that scanned the code calls it deliberately): JSON,
    and it consumes. A 404 with one body for every presentation that is not valid.

All but minting spend the client's lookup bucket; minting spends it through the holder check.
"""

from __future__ import annotations

import base64
import threading
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, FastAPI, Path, Query, Request
from fastapi.params import Depends as DependsParam
from fastapi.responses import HTMLResponse, JSONResponse

from licences.holders import Holder, HolderAuthenticationFailed
from pages.qr import qr_png

from . import pages, texts
from .holder_auth import HolderRefused, current_holder, holder_credentials, keep
from .licence_check import LicenceAnswer, answer_for
from .presentations import NOT_VALID_MESSAGE, PresentationNotValid, Presentations
from .records import PublicRecords
from .settings import VerifySettings

TokenPath = Annotated[str, Path(max_length=64, description="the presentation token from the QR code")]
Lang = Annotated[str | None, Query(max_length=8)]


def not_valid_body() -> dict[str, Any]:
    return {"error": {"code": "presentation_not_valid", "message": NOT_VALID_MESSAGE}}


def licence_view(answer: LicenceAnswer) -> dict[str, Any]:
    """The masked licence as JSON: what the landing page shows, nothing more."""
    return {
        "identifier": answer.identifier, "valid": answer.valid, "status": answer.status.value,
        "status_name": answer.status_name, "type_code": answer.type_code, "type_name": answer.type_name,
        "issuer_name": answer.issuer_name, "issuer_code": answer.issuer_code,
        "valid_from": answer.valid_from.isoformat(),
        "valid_until": answer.valid_until.isoformat() if answer.valid_until else None,
        "holder_name": answer.holder_name, "holder_code": answer.holder_code,
        "superseded_by": answer.successor.identifier if answer.successor else None,
    }


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def register(app: FastAPI, records: PublicRecords, settings: VerifySettings,
             lookup_limit: DependsParam) -> None:
    """Add the presentation routes to ``app`` (after :func:`verify_api.holder_auth.install`)."""
    made: list[Presentations] = []
    lock = threading.Lock()

    def presentations() -> Presentations:
        if not made:
            with lock:
                if not made:
                    domain = records.domain
                    made.append(keep(app, Presentations(domain.db, domain.audit,
                                                        lifetime=settings.presentation_seconds,
                                                        public_url=domain.settings.public_url)))
        return made[0]

    app.state.presentations = presentations

    def opened(token: str) -> tuple[LicenceAnswer, datetime, datetime] | None:
        """The consumed presentation's licence verdict, or None: not valid — and also when its
        licence can no longer be read (never a verdict page without a licence on it)."""
        try:
            result = presentations().consume(token)
        except PresentationNotValid:
            return None
        record = records.licence(result.licence_identifier)
        if record is None:
            return None
        return answer_for(records, record, result.opened_at), result.presented_at, result.opened_at

    @app.post("/api/v1/holder/presentations", status_code=201)
    def mint_presentation(request: Request,
                          holder: Annotated[Holder, Depends(current_holder)]) -> JSONResponse:
        """A single-use presentation QR code of the holder's current licence (亮证)."""
        try:
            identifier = holder_credentials(request).current_identifier(holder)
        except HolderAuthenticationFailed:
            raise HolderRefused() from None
        minted = presentations().mint(holder, identifier)
        body = {"url": minted.url, "qr_png": base64.b64encode(qr_png(minted.url)).decode("ascii"),
                "licence_identifier": minted.licence_identifier, "created_at": _iso(minted.created_at),
                "expires_at": _iso(minted.expires_at), "lifetime_seconds": settings.presentation_seconds}
        return JSONResponse(body, status_code=201)

    @app.get("/P/{token}", response_class=HTMLResponse, dependencies=[lookup_limit])
    def presentation_confirm(token: TokenPath, lang: Lang = None) -> HTMLResponse:
        """The page a scanned presentation code opens: one button that checks it (once)."""
        language = texts.language(lang)
        return HTMLResponse(pages.render("presentation_confirm.html", language, token=quote(token, safe=""),
                                         action_lang=language))

    @app.post("/P/{token}", response_class=HTMLResponse, dependencies=[lookup_limit])
    def presentation_page(token: TokenPath, lang: Lang = None) -> HTMLResponse:
        """Consume the presentation and show the licence's verdict, presented live."""
        language = texts.language(lang)
        result = opened(token)
        if result is None:
            page = pages.render("presentation_invalid.html", language, checked_at=presentations().now())
            return HTMLResponse(page, status_code=404)
        answer, presented_at, opened_at = result
        return HTMLResponse(pages.render("presentation.html", language, checked_at=opened_at, licence=answer,
                                         presented=texts.china_time(presented_at)))

    @app.get("/api/v1/presentations/{token}", dependencies=[lookup_limit])
    def presentation_status(token: TokenPath) -> JSONResponse:
        """Consume the presentation: the licence presented live and its masked verdict (JSON)."""
        result = opened(token)
        if result is None:
            return JSONResponse(not_valid_body(), status_code=404)
        answer, presented_at, opened_at = result
        return JSONResponse({"presented_live": True, "presented_at": _iso(presented_at),
                             "checked_at": _iso(opened_at),
                             "licence": licence_view(answer)})
