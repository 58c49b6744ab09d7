"""Live presentations (亮证) through the public app, against a development home whose licences
were issued, renewed and revoked through the command line, and holder credentials handed out
with ``zhengyin licence holder-credential``: minting, the confirm page, consuming once, replay,
expiry (an injected clock), revocation of the licence and of the credential, enumeration, rate
limits, concurrency (SQLite and PostgreSQL), and no token in the access log or the audit log."""

from __future__ import annotations

import base64
import io
import json
import logging
import re
import threading
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from keys_dev.domain import DEMO_DEPARTMENT_CODE
from ledger.audit import AuditLog, AuditRecord
from ledger.config import ConfigError
from licences.holders import Holder, HolderCredentialRecord
from support.cli import run_cli
from trust.domain import TrustDomain
from verify_api import access_log
from verify_api.app import create_app
from verify_api.presentations import TOKEN, PresentationNotValid, Presentations
from verify_api.settings import VerifySettings

ROOMY = VerifySettings(rate_per_minute=10_000, burst=10_000)
CHECKED = re.compile(r'<time id="checked-at" datetime="[^"]*">[^<]*</time>')
#: Every bearer secret a test handles: none may appear in a log or the audit trail.
SECRETS: list[str] = []
PATHS: list[str] = []


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    path = tmp_path_factory.mktemp("presentation-home")
    code, _, err = run_cli(path, "init")
    assert code == 0, err
    return path


def _issue(home, licence_type: dict, out_dir) -> str:
    data = out_dir / f"{licence_type['code']}.json"
    data.write_text(json.dumps(licence_type["example"], ensure_ascii=False), encoding="utf-8")
    code, out, err = run_cli(home, "licence", "issue", "--type", licence_type["code"], "--data", str(data),
                             "--out", str(out_dir), "--json")
    assert code == 0, err + out
    return json.loads(out)["identifier"]


@pytest.fixture(scope="module")
def licences(home, tmp_path_factory) -> dict:
    code, out, err = run_cli(home, "licence", "types", "--json")
    assert code == 0, err
    types = {t["name"]: t for t in json.loads(out)}
    out_dir = tmp_path_factory.mktemp("issued")
    return {"business": _issue(home, types["营业执照"], out_dir),
            "food": _issue(home, types["食品经营许可证"], out_dir),
            "physician": _issue(home, types["医师执业证书"], out_dir),
            "business_example": types["营业执照"]["example"],
            "physician_example": types["医师执业证书"]["example"]}


def credential(home, identifier: str) -> tuple[str, str]:
    code, out, err = run_cli(home, "licence", "holder-credential", identifier, "--json")
    assert code == 0, err
    issued = json.loads(out)
    SECRETS.append(issued["token"])
    return issued["credential_id"], issued["token"]


@pytest.fixture(scope="module")
def app(home, licences):
    return create_app(home, ROOMY)


@pytest.fixture(scope="module")
def client(app) -> TestClient:
    return TestClient(app)


@pytest.fixture(scope="module")
def business(home, licences) -> tuple[str, str]:
    return credential(home, licences["business"])


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def mint(client, token: str) -> dict:
    response = client.post("/api/v1/holder/presentations", headers=_auth(token))
    assert response.status_code == 201, response.text
    body = response.json()
    SECRETS.append(body["url"].rsplit("/", 1)[1])
    return body


def _token(body: dict) -> str:
    return body["url"].rsplit("/P/", 1)[1]


def get(client, path: str, **kwargs):
    PATHS.append(path)
    return client.get(path, **kwargs)


def post(client, path: str, **kwargs):
    PATHS.append(path)
    return client.post(path, **kwargs)


class Clock:
    def __init__(self) -> None:
        self.at = datetime.now(UTC).replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.at


# ---- handing out credentials -----------------------------------------------------------------

def test_cli_issues_lists_and_revokes_holder_credentials(home, licences):
    credential_id, token = credential(home, licences["food"])
    assert re.fullmatch(rf"zyh_{credential_id}_[0-9a-f]{{64}}", token)
    code, out, err = run_cli(home, "licence", "holder-credential", licences["food"], "--list", "--json")
    assert code == 0, err
    listed = json.loads(out)
    assert [c["credential_id"] for c in listed] == [credential_id] and token not in out
    code, out, err = run_cli(home, "licence", "holder-credential", licences["business"], "--revoke",
                             credential_id)
    assert code == 4 and "no holder credential" in err  # a credential of another licence: refused
    code, out, err = run_cli(home, "licence", "holder-credential", licences["food"], "--revoke",
                             credential_id, "--json")
    assert code == 0 and json.loads(out)["revoked"] is True, err
    code, out, err = run_cli(home, "licence", "holder-credential", licences["food"], "--revoke",
                             credential_id)
    assert code == 5 and "already revoked" in err
    code, out, err = run_cli(home, "licence", "holder-credential", "1.2.156.3005.2.bad")
    assert code == 6 and out == ""


# ---- minting -----------------------------------------------------------------------------------

def test_mint_gives_a_single_use_qr_under_the_public_base(client, business, licences):
    zxingcpp = pytest.importorskip("zxingcpp")
    from PIL import Image

    response = client.post("/api/v1/holder/presentations", headers=_auth(business[1]))
    assert response.status_code == 201 and response.headers["cache-control"] == "no-store"
    body = response.json()
    SECRETS.append(_token(body))
    assert body["url"].startswith("HTTP://LOCALHOST:8081/P/") and TOKEN.fullmatch(_token(body))
    assert body["licence_identifier"] == licences["business"] and body["lifetime_seconds"] == 120
    created, expires = (datetime.fromisoformat(body[k].replace("Z", "+00:00")) for k in ("created_at", "expires_at"))
    assert expires - created == timedelta(seconds=120)
    image = Image.open(io.BytesIO(base64.b64decode(body["qr_png"])))
    assert [r.text for r in zxingcpp.read_barcodes(image)] == [body["url"]]
    assert mint(client, business[1])["url"] != body["url"]  # a fresh token every time


def test_confirm_page_neither_consumes_nor_shows_anything(client, business, licences):
    token = _token(mint(client, business[1]))
    page = get(client, f"/P/{token}")
    assert page.status_code == 200 and f'action="/P/{token}?lang=zh"' in page.text
    name = licences["business_example"]["名称"]
    assert "营业执照" not in page.text and name[0] + "*" not in page.text
    assert get(client, f"/P/{token}").text == page.text  # a link scanner's fetch changes nothing
    assert get(client, "/P/" + "A" * 52).text.replace("A" * 52, token) == page.text  # same for any token
    assert post(client, f"/P/{token}").status_code == 200  # still unused


def test_opening_shows_live_presentation_and_masked_verdict_once(client, business, licences):
    token = _token(mint(client, business[1]))
    first = post(client, f"/P/{token}")
    assert first.status_code == 200
    html = first.text
    data = licences["business_example"]
    name, code = data["名称"], data["统一社会信用代码"]
    assert 'class="banner live"' in html and "持证人现场亮证" in html
    assert 'class="banner good"' in html and "证照真实有效" in html and "营业执照" in html
    assert f"{name[0]}{'*' * (len(name) - 2)}{name[-1]}" in html and name not in html and code not in html
    assert licences["business"] in html
    again = post(client, f"/P/{token}")
    assert again.status_code == 404
    assert "亮证码无效（已过期或已使用）" in again.text and 'class="banner bad"' in again.text
    assert "营业执照" not in again.text and name[0] + "*" not in again.text and licences["business"] not in again.text
    assert get(client, f"/api/v1/presentations/{token}").status_code == 404


def test_a_presentation_whose_licence_cannot_be_read_shows_the_not_valid_page(app, client, business, monkeypatch):
    monkeypatch.setattr(app.state.records, "licence", lambda identifier: None)
    page = post(client, f"/P/{_token(mint(client, business[1]))}")
    assert page.status_code == 404 and 'class="banner bad"' in page.text and 'class="banner live"' not in page.text
    answer = get(client, f"/api/v1/presentations/{_token(mint(client, business[1]))}")
    assert answer.status_code == 404 and answer.json()["error"]["code"] == "presentation_not_valid"


def test_cli_answers_a_holder_credential_error_cleanly(home, licences, monkeypatch):
    from licences.holders import HolderCredentialError, HolderCredentials

    def unlucky(self, identifier, *, actor):
        raise HolderCredentialError("could not draw an unused credential id; try again")

    monkeypatch.setattr(HolderCredentials, "issue", unlucky)
    code, _, err = run_cli(home, "licence", "holder-credential", licences["food"])
    assert code == 1 and "could not draw an unused credential id" in err and "internal" not in err.lower()


def test_json_opening_consumes_once_and_carries_only_masked_data(client, business, licences):
    token = _token(mint(client, business[1]))
    response = get(client, f"/api/v1/presentations/{token}")
    assert response.status_code == 200
    body = response.json()
    licence = body["licence"]
    data = licences["business_example"]
    assert body["presented_live"] is True and licence["valid"] is True and licence["status_name"] == "valid"
    assert licence["identifier"] == licences["business"]
    assert licence["holder_name"] != data["名称"] and licence["holder_name"][0] == data["名称"][0]
    assert data["统一社会信用代码"] not in response.text and data["法定代表人"] not in response.text
    replay = get(client, f"/api/v1/presentations/{token}")
    assert replay.status_code == 404 and replay.json() == {
        "error": {"code": "presentation_not_valid", "message": "presentation not valid (expired or already used)"}}
    assert post(client, f"/P/{token}").status_code == 404


def test_expired_presentation_is_refused_and_the_lifetime_is_exact(app, client, business):
    clock = Clock()
    presentations = app.state.presentations()
    saved, presentations.now = presentations.now, clock
    try:
        late, in_time = _token(mint(client, business[1])), _token(mint(client, business[1]))
        clock.at += timedelta(seconds=119)
        assert get(client, f"/api/v1/presentations/{in_time}").status_code == 200
        clock.at += timedelta(seconds=1)  # exactly the lifetime: over
        assert get(client, f"/api/v1/presentations/{late}").status_code == 404
        clock.at -= timedelta(seconds=60)  # a refused try uses nothing up: back in its lifetime,
        assert get(client, f"/api/v1/presentations/{late}").status_code == 200  # it opens (once)
    finally:
        presentations.now = saved


def test_configured_lifetime_is_used(home, licences, business):
    client = TestClient(create_app(home, VerifySettings(rate_per_minute=10_000, burst=10_000,
                                                        presentation_seconds=60)))
    assert mint(client, business[1])["lifetime_seconds"] == 60


@pytest.mark.parametrize("value", ["59", "301", "0", "two minutes", "120.5"])
def test_lifetime_out_of_range_is_a_clear_config_error(value):
    with pytest.raises(ConfigError, match="ZHENGYIN_VERIFY_PRESENTATION_SECONDS"):
        VerifySettings.from_environment({"ZHENGYIN_VERIFY_PRESENTATION_SECONDS": value})
    assert VerifySettings.from_environment({}).presentation_seconds == 120
    assert VerifySettings.from_environment({"ZHENGYIN_VERIFY_PRESENTATION_SECONDS": "300"}).presentation_seconds \
        == 300


# ---- enumeration and refusals -----------------------------------------------------------------

def test_unknown_used_expired_and_malformed_answers_are_identical(app, client, business):
    used = _token(mint(client, business[1]))
    assert get(client, f"/api/v1/presentations/{used}").status_code == 200
    clock = Clock()
    presentations = app.state.presentations()
    saved, presentations.now = presentations.now, clock
    try:
        expired = _token(mint(client, business[1]))
        clock.at += timedelta(seconds=600)
        candidates = [used, expired, "A" * 52, "not-a-token", used.lower()]
        answers = [get(client, f"/api/v1/presentations/{t}") for t in candidates]
        pages = [post(client, f"/P/{t}") for t in candidates]
    finally:
        presentations.now = saved
    assert {(a.status_code, a.content) for a in answers} == {(404, answers[0].content)}
    assert {(p.status_code, CHECKED.sub("", p.text)) for p in pages} == {(404, CHECKED.sub("", pages[0].text))}
    assert {tuple(sorted((k, v) for k, v in a.headers.items() if k != "date")) for a in answers} == \
        {tuple(sorted((k, v) for k, v in answers[0].headers.items() if k != "date"))}


def test_every_holder_authentication_failure_is_the_same_401(home, client, business, licences):
    revoked_id, revoked = credential(home, licences["physician"])
    assert run_cli(home, "licence", "holder-credential", licences["physician"], "--revoke", revoked_id)[0] == 0
    wrong = business[1][:-1] + ("0" if business[1][-1] != "0" else "1")
    headers = [{}, {"Authorization": "Bearer"}, {"Authorization": "Bearer garbage"},
               {"Authorization": "Basic " + base64.b64encode(b"a:b").decode()}, _auth(wrong), _auth(revoked),
               {"Authorization": business[1]}]  # no scheme
    answers = [client.post("/api/v1/holder/presentations", headers=h) for h in headers]
    assert {(a.status_code, a.content, a.headers["www-authenticate"]) for a in answers} == \
        {(401, answers[0].content, 'Bearer realm="holder"')}
    assert answers[0].json() == {"error": {"code": "holder_unauthenticated",
                                           "message": "the holder credential is not valid"}}
    assert answers[0].headers["x-content-type-options"] == "nosniff"
    assert answers[0].headers["cache-control"] == "no-store"


def test_holder_requests_are_rate_limited_valid_or_not(home, licences, business):
    client = TestClient(create_app(home, VerifySettings(rate_per_minute=1, burst=3)))
    codes = [client.post("/api/v1/holder/presentations", headers=_auth("zyh_" + "0" * 16 + "_" + "1" * 64))
             .status_code for _ in range(3)]
    assert codes == [401, 401, 401]
    limited = client.post("/api/v1/holder/presentations", headers=_auth(business[1]))
    assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
    assert limited.json()["error"]["code"] == "rate_limited"


# ---- bound to the licence ---------------------------------------------------------------------

def test_renewed_licence_is_presented_at_its_current_version(home, client, licences):
    _, token = credential(home, licences["physician"])
    td = TrustDomain.open(str(home))
    try:
        renewed = td.licence_desk.renew(licences["physician"], issuer_code=DEMO_DEPARTMENT_CODE, reason="换证")
    finally:
        td.close()
    body = mint(client, token)
    assert body["licence_identifier"] == renewed.identifier != licences["physician"]
    html = post(client, f"/P/{_token(body)}").text
    assert renewed.identifier in html and "证照真实有效" in html


def test_revoking_the_licence_or_the_credential_stops_presentations(home, client, licences):
    # The food licence: one credential revoked by the issuing side after minting...
    credential_id, token = credential(home, licences["food"])
    minted = _token(mint(client, token))
    assert run_cli(home, "licence", "holder-credential", licences["food"], "--revoke", credential_id)[0] == 0
    assert get(client, f"/api/v1/presentations/{minted}").status_code == 404
    # ...and another one whose licence is then revoked.
    _, other = credential(home, licences["food"])
    pending = _token(mint(client, other))
    assert run_cli(home, "licence", "revoke", licences["food"], "--reason", "违法经营")[0] == 0
    assert client.post("/api/v1/holder/presentations", headers=_auth(other)).status_code == 401
    response = get(client, f"/api/v1/presentations/{pending}")  # minted before: shows the truth now
    assert response.status_code == 200 and response.json()["licence"]["status_name"] == "revoked"


# ---- concurrency -------------------------------------------------------------------------------

def test_two_concurrent_openings_exactly_one_succeeds(db):
    now = datetime.now(UTC)
    with db.transaction() as s:
        s.add(HolderCredentialRecord(credential_id="c" * 16, secret_sm3="0" * 64, licence_identifier="L",
                                     type_code="T", licence_number="N", holder_code="H", created_at=now,
                                     created_by="test"))
    presentations = Presentations(db, AuditLog(db), lifetime=120, public_url="http://localhost:8081/")
    holder = Holder("c" * 16, "T", "N", "H")
    for _ in range(3):
        token = presentations.mint(holder, "L").url.rsplit("/", 1)[1]
        barrier, results = threading.Barrier(6), []

        def open_it(barrier=barrier, token=token, results=results) -> None:
            barrier.wait()
            try:
                presentations.consume(token)
                results.append("opened")
            except PresentationNotValid:
                results.append("refused")

        threads = [threading.Thread(target=open_it) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert sorted(results) == ["opened"] + ["refused"] * 5
    assert len(AuditLog(db).entries(action="licence.presentation.open")) == 3
    assert AuditLog(db).verify().ok


# ---- no secret in the logs ---------------------------------------------------------------------

def _access_line(path: str) -> str:
    """The line uvicorn's access logger writes for ``path``, through the filter serve-verify installs."""
    record = logging.LogRecord(access_log.ACCESS_LOGGER, logging.INFO, __file__, 0, '%s - "%s %s HTTP/%s" %d',
                               ("127.0.0.1:5000", "GET", path, "1.1", 200), None)
    access_log.RedactingFilter().filter(record)
    return record.getMessage()


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_a_real_serve_verify_access_log_holds_no_presentation_token(home, client, business):
    import os
    import subprocess
    import sys
    import time

    import httpx

    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ZHENGYIN_")} | {"PYTHONUNBUFFERED": "1"}
    server = subprocess.Popen(
        [sys.executable, "-c", "from trust.cli import main; main()", "serve-verify", "--port", str(port),
         "--home", str(home)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, text=True)
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        else:
            pytest.fail("serve-verify did not start")
        shown, programmatic = _token(mint(client, business[1])), _token(mint(client, business[1]))
        assert httpx.get(f"{base}/P/{shown}").status_code == 200
        assert httpx.post(f"{base}/P/{shown}").status_code == 200
        assert httpx.get(f"{base}/api/v1/presentations/{programmatic}").status_code == 200
        assert httpx.get(f"{base}/api/v1/presentations/{programmatic}").status_code == 404
    finally:
        server.terminate()
        output = server.communicate(timeout=30)[0]
    assert '"POST /P/' in output and '"GET /api/v1/presentations/' in output  # the log was written
    for token in (shown, programmatic):
        assert token not in output and token[8:20] not in output


def test_no_token_reaches_the_access_log_or_the_audit_log(home, client, business):
    # Runs last in this module: SECRETS and PATHS hold everything the tests above handled.
    token = _token(mint(client, business[1]))
    get(client, f"/P/{token}")
    get(client, f"/api/v1/presentations/{token}")
    assert len(SECRETS) > 10 and len(PATHS) > 10
    lines = "\n".join(_access_line(p) for p in PATHS)
    td = TrustDomain.open(str(home))
    try:
        with td.db.transaction() as s:
            audit = "\n".join(s.scalars(select(AuditRecord.payload)))
        assert td.audit.verify().ok
    finally:
        td.close()
    for secret in SECRETS:
        core = secret.rsplit("_", 1)[-1]
        assert core not in lines and core[:20] not in lines
        assert core not in audit and core[:20] not in audit
    assert "licence.presentation.mint" in audit and "licence.presentation.open" in audit
