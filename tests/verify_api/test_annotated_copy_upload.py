"""An annotated copy (加注件) the data-reuse service served, uploaded to the PUBLIC service
(``POST /api/v1/verify``): the report judges its seal (TOTAL_PASSED), ``annotated_copy`` says
for whom, for what and until when, and ``licence`` is the licence's status in the register *today*
— revoked once the licence is revoked, though the copy's bytes have not changed. After the copy's
time the answer says it expired and the readable page shows the red expired banner. An ordinary
licence document has no ``annotated_copy``.

The home, its licences, the data-service signer and seal, and the department app are
test_annotated_copy_service's fixtures (one home per database).
"""

from __future__ import annotations

import base64
from datetime import datetime, timedelta

import pytest
import test_annotated_copy_service as copies
from fastapi.testclient import TestClient

import verify_api.app as public_app
from verify_api import texts
from verify_api.app import create_app
from verify_api.settings import VerifySettings

PURPOSE = copies.PURPOSE
BUSINESS = copies.BUSINESS
# the served copies' world, as test_annotated_copy_service builds it (module-scoped: one per database)
home, world, td, api = copies.home, copies.world, copies.td, copies.api


@pytest.fixture(scope="module")
def public(home, world):
    app = create_app(home, VerifySettings(rate_per_minute=1e6, burst=1_000_000, upload_rate_per_minute=1e6,
                                          upload_burst=1_000_000, trust_ttl=0))
    with TestClient(app) as client:
        yield client
    app.state.records.close()


def _serve(api, td, licence, fmt: str, valid_days: int) -> dict:
    """A copy of ``licence`` the department app serves to a client with a grant of all fields."""
    client_id, token, name = copies._client(td, [(BUSINESS, "data")])
    copies._grant(td, licence, client_id)
    response = copies._ask(api, token, licence.identifier, copy={"format": fmt, "valid_days": valid_days})
    assert response.status_code == 200, response.text
    answer = response.json()
    return {"content": base64.b64decode(answer["annotated_copy_content"]), "body": answer["body"],
            "client_name": name, "format": fmt}


def _upload(public, data: bytes, fmt: str, **form):
    response = public.post("/api/v1/verify", files={"file": (f"copy.{fmt}", data, "application/octet-stream")},
                           data=form)
    assert response.status_code == 200, response.text[:500]
    return response


def _expires(copy: dict) -> datetime:
    return datetime.fromisoformat(copy["body"]["annotated_copy"]["expires"].replace("Z", "+00:00"))


@pytest.fixture(scope="module", params=["pdf", "ofd"])
def fmt(request) -> str:
    return request.param


def test_an_uploaded_copy_is_recognised_with_its_licences_status(public, api, td, world, fmt):
    copy = _serve(api, td, world["a"], fmt, 7)
    body = _upload(public, copy["content"], fmt).json()
    assert body["report"]["indication"] == "TOTAL_PASSED", body["report"]
    assert body["report"]["kind"] == fmt
    annotated = body["annotated_copy"]
    assert annotated is not None
    assert (annotated["purpose"], annotated["client_name"], annotated["response_id"], annotated["format"]) == \
        (PURPOSE, copy["client_name"], copy["body"]["response_id"], fmt)
    assert annotated["expires"] == copy["body"]["annotated_copy"]["expires"] and annotated["expired"] is False
    assert annotated["licence"] == world["a"].identifier
    # the licence the copy is of, as the register has it now
    assert body["licence"]["identifier"] == world["a"].identifier
    assert body["licence"]["status_name"] == "valid"


def test_a_copy_of_a_licence_revoked_since_says_revoked(public, api, td, world):
    licence = world["r"]
    served = [_serve(api, td, licence, fmt, 7) for fmt in ("pdf", "ofd")]
    for copy in served:
        assert _upload(public, copy["content"], copy["format"]).json()["licence"]["status_name"] == "valid"
    td.licences.revoke(licence.identifier, "吊销营业执照（测试）")
    for copy in served:
        after = _upload(public, copy["content"], copy["format"]).json()
        assert after["report"]["indication"] == "TOTAL_PASSED"  # the seal is as good as it was
        assert after["annotated_copy"]["licence"] == licence.identifier
        assert after["annotated_copy"]["expired"] is False
        assert after["licence"]["identifier"] == licence.identifier
        assert after["licence"]["status_name"] == "revoked"


def test_after_its_time_the_copy_is_expired_and_the_page_says_so(public, api, td, world, fmt, monkeypatch):
    copy = _serve(api, td, world["a"], fmt, 1)
    expires = _expires(copy)
    words = texts.TEXTS["zh"]
    for moment, expired in ((expires - timedelta(minutes=1), False), (expires + timedelta(minutes=1), True)):
        monkeypatch.setattr(public_app, "_now", lambda moment=moment: moment)
        body = _upload(public, copy["content"], fmt).json()
        assert body["annotated_copy"]["expired"] is expired
        assert body["annotated_copy"]["expires"] == copy["body"]["annotated_copy"]["expires"]
        page = _upload(public, copy["content"], fmt, view="html")
        assert page.headers["content-type"].startswith("text/html")
        html = page.text
        assert words["copy_title"] in html and copy["client_name"] in html and PURPOSE in html
        assert ('id="copy-expired"' in html) is expired and (words["copy_expired"] in html) is expired
        if expired:
            assert '<section class="banner bad" role="alert" id="copy-expired">' in html


def test_an_ordinary_licence_upload_has_no_annotated_copy(public, world, fmt):
    licence = world["a"]
    data = licence.pdf if fmt == "pdf" else licence.ofd
    body = _upload(public, data, fmt).json()
    assert body["report"]["indication"] == "TOTAL_PASSED"
    assert body["annotated_copy"] is None
    assert body["licence"]["identifier"] == licence.identifier
    page = _upload(public, data, fmt, view="html").text
    assert texts.TEXTS["zh"]["copy_title"] not in page
