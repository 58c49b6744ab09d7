"""The public verification service against a real development home: licences issued through the
command line, then suspended, revoked and renewed; the trust list and CRLs published; the app
driven through Starlette's TestClient exactly as a phone or a program would."""

from __future__ import annotations

import dataclasses
import io
import json
import re
import zipfile
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient

from ca.crl import load_crl
from ca.validation import validate_path
from keys_dev.domain import DEMO_DEPARTMENT_CODE
from licences.identifiers import LicenceIdentifier
from licences.qr_payload import decode_payload, encode_payload
from support.cli import run_cli
from trust.domain import TrustDomain
from trust.trust_list import verify_trust_list
from verify_api.app import create_app
from verify_api.settings import VerifySettings

BUSINESS, FOOD, PHYSICIAN = "business", "food", "physician"


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    path = tmp_path_factory.mktemp("verify-home")
    code, _, err = run_cli(path, "init")
    assert code == 0, err
    return path


def _issue(home, licence_type: dict, out_dir) -> dict:
    data = out_dir / f"{licence_type['code']}.json"
    data.write_text(json.dumps(licence_type["example"], ensure_ascii=False), encoding="utf-8")
    code, out, err = run_cli(home, "licence", "issue", "--type", licence_type["code"], "--data", str(data),
                             "--out", str(out_dir), "--json")
    assert code == 0, err + out
    return json.loads(out)


@pytest.fixture(scope="module")
def licences(home, tmp_path_factory) -> dict[str, dict]:
    """valid (营业执照), suspended (食品经营许可证), revoked and superseded (医师执业证书, issued
    three times)."""
    code, out, err = run_cli(home, "licence", "types", "--json")
    assert code == 0, err
    types = {t["name"]: t for t in json.loads(out)}
    out_dir = tmp_path_factory.mktemp("issued")
    result = {"valid": _issue(home, types["营业执照"], out_dir)}
    result["suspended"] = _issue(home, types["食品经营许可证"], out_dir)
    suspended = result["suspended"]["identifier"]
    code, _, err = run_cli(home, "licence", "suspend", suspended, "--reason", "核查中")
    assert code == 0, err
    result["revoked"] = _issue(home, types["医师执业证书"], out_dir)
    code, _, err = run_cli(home, "licence", "revoke", result["revoked"]["identifier"], "--reason", "违法执业")
    assert code == 0, err
    result["old"] = _issue(home, types["医师执业证书"], out_dir)
    td = TrustDomain.open(str(home))
    try:
        renewed = td.licence_desk.renew(result["old"]["identifier"], issuer_code=DEMO_DEPARTMENT_CODE,
                                        reason="换证")
    finally:
        td.close()
    result["current"] = {"identifier": renewed.identifier, "qr": renewed.qr}
    result["example"] = types["医师执业证书"]["example"]
    result["business_example"] = types["营业执照"]["example"]
    code, _, err = run_cli(home, "publish")
    assert code == 0, err
    return result


@pytest.fixture(scope="module")
def client(home, licences) -> TestClient:
    return TestClient(create_app(home, VerifySettings(rate_per_minute=10_000, burst=10_000,
                                                      upload_rate_per_minute=10_000, upload_burst=10_000)))


def _path(qr: str) -> str:
    return "/V/" + qr.split("/V/", 1)[1]


CHECKED = re.compile(r'<time id="checked-at" datetime="[^"]*">[^<]*</time>')


def _without_time(html: str) -> str:
    return CHECKED.sub("<time/>", html)


@pytest.fixture(scope="module")
def signer(home):
    """The demo department's QR signing identity (a test stands in for an issuer's own key)."""
    td = TrustDomain.open(str(home))
    identity, _ = td.licence_desk.licence_seal(DEMO_DEPARTMENT_CODE, datetime.now(UTC))
    yield identity
    td.close()


def _resigned(qr: str, signer, **changes) -> str:
    """The QR's claims with ``changes``, signed again with the issuer's genuine key."""
    claims = dataclasses.replace(decode_payload(qr).claims, **changes)
    return encode_payload(claims, signer.signer, "http://localhost:8081/V/")


# ---- the QR landing page ---------------------------------------------------------------------------

def test_valid_licence_page_shows_verdict_and_masked_holder_only(client, licences):
    page = client.get(_path(licences["valid"]["qr"]))
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    html = page.text
    assert 'class="banner good"' in html and "证照真实有效" in html and "banner bad" not in html
    data = licences["business_example"]
    name, code = data["名称"], data["统一社会信用代码"]
    assert name not in html and code not in html
    assert f"{name[0]}{'*' * (len(name) - 2)}{name[-1]}" in html
    assert f"{code[:4]}{'*' * (len(code) - 8)}{code[-4:]}" in html
    assert "营业执照" in html and "示例市市场监督管理局" in html and "有效" in html
    assert data["法定代表人"] not in html and data["住所"] not in html  # no other personal data
    assert re.search(r'<time id="checked-at" datetime="\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+08:00">', html)
    assert "<script" not in html and "http" not in html.split("<body>", 1)[1]  # no scripts, no external links


def test_person_holder_is_masked_as_the_spec_says(client, licences):
    html = client.get(_path(licences["current"]["qr"])).text
    name, code = licences["example"]["姓名"], licences["example"]["身份证号"]
    assert len(name) == 3 and f"{name[0]}*{name[2]}" in html and name not in html
    assert f"{code[:4]}**********{code[-4:]}" in html and code not in html


@pytest.mark.parametrize("which, words", [("suspended", "已暂停"), ("revoked", "已吊销")])
def test_suspended_and_revoked_get_a_red_banner_with_the_status(client, licences, which, words):
    html = client.get(_path(licences[which]["qr"])).text
    assert 'class="banner bad"' in html and "banner good" not in html
    assert "证照真实，但当前不是有效状态" in html and words in html


def test_superseded_version_names_the_current_one_and_its_status(client, licences):
    html = client.get(_path(licences["old"]["qr"])).text
    assert 'class="banner bad"' in html and "已被新版本取代" in html
    assert licences["current"]["identifier"] in html and "以新版本为准" in html
    assert "持证人已领取新版本证照" in html and "请让出示者出示新版本证照的二维码" in html
    english = client.get(_path(licences["old"]["qr"]) + "?lang=en").text
    assert "the holder has been issued a new licence" in english
    current = client.get(_path(licences["current"]["qr"])).text
    assert 'class="banner good"' in current


def test_english_switch(client, licences):
    path = _path(licences["valid"]["qr"])
    zh, en = client.get(path).text, client.get(path + "?lang=en").text
    assert '<html lang="zh-CN">' in zh and 'href="?lang=en"' in zh
    assert '<html lang="en">' in en and 'href="?lang=zh"' in en
    assert "Authentic and valid" in en
    assert "证照真实有效" not in en and "Checked at" in en
    revoked = client.get(_path(licences["revoked"]["qr"]) + "?lang=en").text
    assert "Authentic, but not valid now" in revoked and "revoked" in revoked


def test_unknown_identifier_wrong_nonce_and_forgery_get_one_generic_page(client, licences, signer):
    qr = licences["valid"]["qr"]
    claims = decode_payload(qr).claims
    parsed = LicenceIdentifier.parse(claims.identifier)
    unknown_id = LicenceIdentifier(parsed.type_code, parsed.issuer_code, 987654, 1).text
    wrong_nonce = _resigned(qr, signer, nonce=bytes(16))
    unknown = _resigned(qr, signer, identifier=unknown_id)
    genuine = _path(qr)
    at = len("/V/") + 70  # a character inside the data hash; the signature is left as it was
    forged = genuine[:at] + ("A" if genuine[at] != "A" else "B") + genuine[at + 1:]
    answers = [client.get(p) for p in (_path(wrong_nonce), _path(unknown), forged, "/V/NOTAPAYLOAD")]
    assert {a.status_code for a in answers} == {200}
    bodies = {_without_time(a.text) for a in answers}
    assert len(bodies) == 1, "the answers differ: an enumerator could tell them apart"
    body = bodies.pop()
    assert "无法确认" in body and 'class="banner bad"' in body and "banner good" not in body
    assert claims.identifier not in body and unknown_id not in body
    assert 'class="banner good"' in client.get(genuine).text  # the genuine QR still verifies


# ---- the status API ---------------------------------------------------------------------------------

def test_status_api_with_nonce_in_query_or_header(client, licences):
    claims = decode_payload(licences["suspended"]["qr"]).claims
    url = f"/api/v1/licences/{claims.identifier}/status"
    by_query = client.get(url, params={"nonce": claims.nonce.hex()})
    by_header = client.get(url, headers={"X-Licence-Nonce": claims.nonce.hex().upper()})
    for answer in (by_query, by_header):
        assert answer.status_code == 200
        body = answer.json()
        assert body["identifier"] == claims.identifier and body["status"] == "02"
        assert body["status_name"] == "suspended" and "checked_at" in body and "valid_until" in body
        assert "holder_name" not in body
    old = decode_payload(licences["old"]["qr"]).claims
    body = client.get(f"/api/v1/licences/{old.identifier}/status", params={"nonce": old.nonce.hex()}).json()
    assert body["status"] == "99" and body["status_name"] == "superseded"
    assert body["superseded_by"] == licences["current"]["identifier"]


def test_status_api_answers_unknown_and_wrong_nonce_identically(client, licences):
    claims = decode_payload(licences["valid"]["qr"]).claims
    parsed = LicenceIdentifier.parse(claims.identifier)
    unknown = LicenceIdentifier(parsed.type_code, parsed.issuer_code, 424242, 1).text
    answers = [
        client.get(f"/api/v1/licences/{claims.identifier}/status", params={"nonce": "ab" * 16}),
        client.get(f"/api/v1/licences/{unknown}/status", params={"nonce": claims.nonce.hex()}),
        client.get("/api/v1/licences/not-an-identifier/status", params={"nonce": "zz"}),
    ]
    assert {a.status_code for a in answers} == {404}
    assert len({a.content for a in answers}) == 1
    assert answers[0].json()["error"]["code"] == "not_found"
    missing = client.get(f"/api/v1/licences/{claims.identifier}/status")
    assert missing.status_code == 400 and missing.json()["error"]["code"] == "nonce_required"


# ---- uploads ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["pdf", "ofd"])
def test_upload_of_a_licence_gives_the_report_and_registry_status(client, licences, kind):
    data = open(licences["suspended"][kind], "rb").read()
    upload = {"file": (f"licence.{kind}", data, "application/octet-stream")}
    answer = client.post("/api/v1/verify", files=upload)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["report"]["indication"] == "TOTAL_PASSED" and body["report"]["kind"] == kind
    assert body["licence"]["identifier"] == licences["suspended"]["identifier"]
    assert body["licence"]["status_name"] == "suspended"


def _tampered_ofd(data: bytes) -> bytes:
    source = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            content = source.read(info)
            if info.filename.endswith("Content.xml") and b"<" in content:
                content = content.replace(b"</", b" </", 1)
            target.writestr(info, content)
    return out.getvalue()


def _tampered_pdf(data: bytes) -> bytes:
    position = data.index(b"/MediaBox")
    return data[:position] + b"/MediaBoy" + data[position + 9:]


@pytest.mark.parametrize("kind", ["pdf", "ofd"])
def test_tampered_upload_fails_with_the_reason_shown(client, licences, kind):
    data = open(licences["valid"][kind], "rb").read()
    tampered = _tampered_pdf(data) if kind == "pdf" else _tampered_ofd(data)
    upload = {"file": (f"x.{kind}", tampered, "application/octet-stream")}
    answer = client.post("/api/v1/verify", files=upload)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["report"]["indication"] == "TOTAL_FAILED" and body["licence"] is None
    failed = [c for s in body["report"]["signatures"] for c in s["checks"] if not c["passed"]]
    failed += [c for c in body["report"]["checks"] if not c["passed"]]
    assert failed
    page = client.post("/api/v1/verify", files=upload, data={"view": "html"})
    assert page.headers["content-type"].startswith("text/html")
    assert 'class="banner bad"' in page.text and "TOTAL_FAILED" in page.text
    assert failed[0]["detail"].split(":")[0][:40] in page.text.replace("&#39;", "'").replace("&quot;", '"')


def test_upload_page_and_readable_report(client, licences):
    form = client.get("/upload")
    assert form.status_code == 200 and 'enctype="multipart/form-data"' in form.text
    assert 'action="/api/v1/verify"' in form.text and "<script" not in form.text
    data = open(licences["valid"]["pdf"], "rb").read()
    page = client.post("/api/v1/verify", files={"file": ("a.pdf", data, "application/pdf")},
                       headers={"Accept": "text/html"})
    assert page.status_code == 200 and 'class="banner good"' in page.text
    assert licences["valid"]["identifier"] in page.text and "证照库状态" in page.text
    # the result came from a POST: its language switch leads to the form, never to a 405
    (switch,) = re.findall(r'<a class="lang" href="([^"]*)"', page.text)
    assert switch == "/upload?lang=en"
    followed = client.get(switch, headers={"Accept": "text/html"})
    assert followed.status_code == 200 and "Verify an e-licence file" in followed.text
    english = client.post("/api/v1/verify", files={"file": ("a.pdf", data, "application/pdf")},
                          data={"view": "html", "lang": "en"})
    assert re.findall(r'<a class="lang" href="([^"]*)"', english.text) == ["/upload?lang=zh"]


def test_oversize_upload_is_refused_while_reading(home, licences):
    small = TestClient(create_app(home, VerifySettings(max_upload=4096)))
    data = open(licences["valid"]["pdf"], "rb").read()
    assert len(data) > 4096 + 16 * 1024
    declared = small.post("/api/v1/verify", files={"file": ("a.pdf", data, "application/pdf")})
    assert declared.status_code == 413 and declared.json()["error"]["code"] == "too_large"

    def chunks():  # no Content-Length: the limit must stop the stream itself
        boundary = b"--x\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.pdf\"\r\n\r\n"
        yield boundary
        for _ in range(64):
            yield b"%" * 1024
        yield b"\r\n--x--\r\n"

    streamed = small.post("/api/v1/verify", content=chunks(),
                          headers={"Content-Type": "multipart/form-data; boundary=x"})
    assert streamed.status_code == 413


def test_bad_uploads_are_clear_errors(client):
    not_multipart = client.post("/api/v1/verify", content=b"%PDF-1.7",
                                headers={"Content-Type": "application/pdf"})
    assert not_multipart.status_code == 415 and "multipart" in not_multipart.json()["error"]["message"]
    empty = client.post("/api/v1/verify", files={"other": ("a.txt", b"x", "text/plain")})
    assert empty.status_code == 400 and empty.json()["error"]["code"] == "bad_upload"
    garbage = client.post("/api/v1/verify", files={"file": ("a.pdf", b"hello world", "application/pdf")})
    assert garbage.status_code == 422 and garbage.json()["error"]["code"] == "unreadable_document"


# ---- published files ---------------------------------------------------------------------------------

def test_trust_list_is_served_and_verifies_offline_to_the_root(client, home):
    content, signature = client.get("/trust-list.json"), client.get("/trust-list.p7s")
    assert content.status_code == signature.status_code == 200
    assert content.headers["content-type"].startswith("application/json")
    assert content.content == (home / "public" / "trust-list.json").read_bytes()
    td = TrustDomain.open(str(home))
    try:
        issuing, root = td.ca.chain()
    finally:
        td.close()
    crls = [load_crl(client.get(f"/crl/{which}.crl").content) for which in ("root", "issuing")]
    result = verify_trust_list(content.content, signature.content, [root.dump()], crls=crls)
    assert result.ok, [c for c in result.checks if not c.ok]
    assert result.revocation_checked
    roles = {e["role"] for e in result.document["certificates"]}
    assert {"root", "issuing-ca", "seal-maker", "department-signer", "trust-list-signer"} <= roles
    now = datetime.now(UTC)
    for cert in result.certificates():
        path = validate_path(cert, trust_anchors=[root], intermediates=[issuing], at=now, revocation="off")
        assert path.ok, cert.subject.human_friendly


def test_each_version_is_served_as_a_matching_pair(client, home):
    """The stable names are replaced one after the other; the versioned pair never is."""
    version = client.get("/trust-list.json").json()["version"]
    listed, signed = client.get(f"/trust-list-{version}.json"), client.get(f"/trust-list-{version}.p7s")
    assert listed.status_code == signed.status_code == 200
    assert listed.content == client.get("/trust-list.json").content
    assert signed.content == client.get("/trust-list.p7s").content
    assert signed.headers["content-type"] == "application/pkcs7-signature"
    assert int(re.fullmatch(r"public, max-age=(\d+)", listed.headers["cache-control"])[1]) > 0
    for missing in (f"/trust-list-{version + 1}.json", "/trust-list-0.p7s"):
        answer = client.get(missing)
        assert answer.status_code == 404 and answer.json()["error"]["code"] == "not_published"


def test_crls_served_are_the_published_ones_with_cache_headers(client, home):
    td = TrustDomain.open(str(home))
    try:
        latest = {which: td.ca.latest_crl(which).der for which in ("root", "issuing")}
    finally:
        td.close()
    for which in ("root", "issuing"):
        answer = client.get(f"/crl/{which}.crl")
        assert answer.status_code == 200 and answer.headers["content-type"] == "application/pkix-crl"
        assert answer.content == (home / "public" / "crl" / f"{which}.crl").read_bytes() == latest[which]
        max_age = int(re.fullmatch(r"public, max-age=(\d+)", answer.headers["cache-control"])[1])
        assert 0 < max_age <= 300
        again = client.get(f"/crl/{which}.crl", headers={"If-None-Match": answer.headers["etag"]})
        assert again.status_code == 304 and not again.content


def test_unpublished_files_are_a_json_404(tmp_path):
    code, _, err = run_cli(tmp_path, "init")
    assert code == 0, err
    fresh = TestClient(create_app(tmp_path))
    for path in ("/trust-list.json", "/trust-list.p7s", "/crl/root.crl", "/crl/issuing.crl"):
        answer = fresh.get(path)
        assert answer.status_code == 404 and answer.json()["error"]["code"] == "not_published"


# ---- limits, headers, failures -------------------------------------------------------------------------

def test_rate_limit_per_client_gives_429_with_retry_after(home, licences):
    strict = TestClient(create_app(home, VerifySettings(rate_per_minute=1, burst=2)))
    url = "/api/v1/licences/x/status?nonce=00"
    assert [strict.get(url).status_code for _ in range(2)] == [404, 404]
    limited = strict.get(url)
    assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
    assert limited.json()["error"]["code"] == "rate_limited"
    assert strict.get(_path(licences["valid"]["qr"])).status_code == 429  # the QR page shares the bucket
    assert strict.get("/healthz").status_code == 200  # not a lookup


def test_rate_limit_counts_an_ipv6_client_by_its_64(home, licences):
    app = create_app(home, VerifySettings(rate_per_minute=1, burst=2))
    url = "/api/v1/licences/x/status?nonce=00"
    hosts = ["2001:db8:5::1", "2001:db8:5::2", "2001:db8:5:0:ffff::3"]  # one /64: one bucket
    codes = [TestClient(app, client=(host, 40000)).get(url).status_code for host in hosts]
    assert codes == [404, 404, 429]
    assert TestClient(app, client=("2001:db8:6::1", 40000)).get(url).status_code == 404  # another /64


def test_security_headers_on_every_kind_of_answer(client, licences):
    paths = (_path(licences["valid"]["qr"]), "/api/v1/licences/x/status?nonce=0", "/nope", "/upload",
             "/trust-list.json", "/healthz")
    answers = [client.get(path) for path in paths]
    for answer in answers:
        headers = answer.headers
        assert headers["content-security-policy"].startswith("default-src 'none'")
        assert "script-src" not in headers["content-security-policy"]
        assert headers["x-content-type-options"] == "nosniff" and headers["x-frame-options"] == "DENY"
        assert headers["referrer-policy"] == "no-referrer" and "camera=()" in headers["permissions-policy"]
        assert "strict-transport-security" not in headers  # plain http here
    records = client.app.state.records
    secure = TestClient(create_app(records=records), base_url="https://verify.example")
    assert "max-age=" in secure.get("/healthz").headers["strict-transport-security"]


def test_html_errors_are_pages_and_api_errors_json(client):
    page = client.get("/nope", headers={"Accept": "text/html"})
    assert page.status_code == 404 and page.headers["content-type"].startswith("text/html")
    api = client.get("/api/v1/licences/x/status", headers={"Accept": "text/html"})
    assert api.status_code == 400 and api.json()["error"]["code"] == "nonce_required"


def test_healthz_without_the_database_and_no_traceback_when_it_is_down(home, licences, monkeypatch):
    monkeypatch.setenv("ZHENGYIN_DATABASE_URL", "postgresql+psycopg://nobody@127.0.0.1:1/none")
    down = TestClient(create_app(home), raise_server_exceptions=False)
    assert down.get("/healthz").json() == {"status": "ok"}
    identifier = licences["valid"]["identifier"]
    answer = down.get(f"/api/v1/licences/{identifier}/status?nonce=00")
    assert answer.status_code == 503 and answer.json()["error"]["code"] == "unavailable"
    assert answer.headers["retry-after"] == "30"
    page = down.get(_path(licences["valid"]["qr"]), headers={"Accept": "text/html"})
    assert page.status_code == 503 and page.headers["content-type"].startswith("text/html")
    assert "Traceback" not in page.text and "psycopg" not in page.text


def test_internal_errors_show_no_traceback(home, licences, monkeypatch):
    app = create_app(home)
    broken = TestClient(app, raise_server_exceptions=False)

    def explode(*args, **kwargs):
        raise RuntimeError("secret internal detail")

    monkeypatch.setattr(app.state.records, "signer_certificates", explode)
    answer = broken.get(_path(licences["valid"]["qr"]))
    assert answer.status_code == 500 and "secret internal detail" not in answer.text
    assert "Traceback" not in answer.text and answer.json()["error"]["code"] == "internal_error"
    assert answer.headers["x-frame-options"] == "DENY"


def test_the_service_holds_no_key_store(client):
    from verify_api.records import KeyOperationRefused

    with pytest.raises(KeyOperationRefused):
        client.app.state.records.domain.keys.signer("dev-dept-signer")


# ---- the QR as a phone reads it ---------------------------------------------------------------------

@pytest.mark.interop
def test_qr_decoded_from_a_200_dpi_render_opens_the_page(client, licences):
    pypdfium2 = pytest.importorskip("pypdfium2")
    zxingcpp = pytest.importorskip("zxingcpp")
    document = pypdfium2.PdfDocument(licences["valid"]["pdf"])
    try:
        image = document[0].render(scale=200 / 72).to_pil()
    finally:
        document.close()
    found = [r.text for r in zxingcpp.read_barcodes(image) if r.format == zxingcpp.BarcodeFormat.QRCode]
    assert found == [licences["valid"]["qr"]]
    url = found[0]
    assert url.startswith("HTTP://LOCALHOST:8081/V/")
    page = client.get(url[len("HTTP://LOCALHOST:8081"):])
    assert page.status_code == 200 and 'class="banner good"' in page.text


def test_signer_certificates_come_from_the_ca_unrevoked(client, home):
    td = TrustDomain.open(str(home))
    try:
        expected = {r.serial for r in td.ca.certificates(profile="department-signer", include_revoked=False)}
    finally:
        td.close()
    served = {format(c.serial_number, "x") for c in client.app.state.records.signer_certificates()}
    assert served == expected and served


def test_openapi_spec_is_served_without_external_docs(client):
    spec = client.get("/openapi.json")
    assert spec.status_code == 200
    paths = spec.json()["paths"]
    expected = {"/V/{payload}", "/api/v1/licences/{identifier}/status", "/api/v1/verify", "/trust-list.json"}
    assert expected <= set(paths)
    assert client.get("/docs").status_code == 404  # the docs page would load scripts from a CDN


@pytest.mark.slow
def test_serve_verify_runs_the_app_under_uvicorn_with_two_workers(home, licences, tmp_path):
    """Two workers answer; the key passphrase given in the environment is dropped before they
    start; the access log holds neither the QR payload nor a nonce."""
    import os
    import signal
    import socket
    import subprocess
    import sys
    import time
    import urllib.request

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-c", "from trust.cli import main; main()", "serve-verify",
               "--home", str(home), "--port", str(port), "--workers", "2"]
    secret = "a-passphrase-the-public-side-must-not-keep"
    environment = {**os.environ, "ZHENGYIN_KEY_PASSPHRASE": secret, "VAULT_TOKEN": "hvs.secret-token"}
    log = tmp_path / "server.log"
    with log.open("wb") as sink:
        server = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT, env=environment,
                                  start_new_session=True)
    payload = _path(licences["valid"]["qr"])
    nonce = decode_payload(licences["valid"]["qr"]).claims.nonce.hex()
    try:
        deadline, answer = time.monotonic() + 60, None
        while time.monotonic() < deadline and answer is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as response:
                    answer = json.loads(response.read())
            except OSError:
                time.sleep(0.5)
        assert answer == {"status": "ok"}, f"no answer on port {port} (exit code {server.poll()})"
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{payload}", timeout=10) as page:
            assert 'class="banner good"' in page.read().decode()
        identifier = licences["valid"]["identifier"]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/licences/{identifier}/status?nonce={nonce}",
                                    timeout=10) as status:
            assert json.loads(status.read())["status"] == "01"
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
    written = log.read_text(encoding="utf-8", errors="replace")
    assert "ZHENGYIN_KEY_PASSPHRASE" in written and "VAULT_TOKEN" in written  # named as removed …
    assert secret not in written and "hvs.secret-token" not in written  # … never shown
    assert '"GET /V/' in written and payload[len("/V/"):][:8] in written  # the request is logged …
    assert payload[len("/V/"):] not in written and nonce not in written  # … without its secrets
