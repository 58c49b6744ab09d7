"""The signing service over HTTP against a real development home: API keys and their scopes,
departments kept apart, issuance whose documents verify, idempotency, errors, limits, sealing
uploads, and an OpenAPI document that lists every error the service was seen to answer."""

from __future__ import annotations

import itertools
import json
import threading
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from starlette.routing import Match

from ca.names import credit_code_check_character
from keys_dev.domain import DEMO_DEPARTMENT_CODE
from licences.metadata import LicenceStatus
from support.cli import run_cli
from trust.domain import TrustDomain
from trust.service.app import create_app
from trust.service.credentials import ApiKeyRegistry
from trust.service.settings import MIB, ServiceSettings
from trust.validation import validate_document

BUSINESS = "11100000MB0000019L001"
FOOD = "11100000MB0000019L002"
OTHER_DEPARTMENT = "11350100MB0000035H"
ALL_OPS = ["issue", "read", "change", "renew", "suspend", "resume", "revoke", "cancel", "seal", "list"]
SETTINGS = ServiceSettings(max_json_bytes=1 * MIB, max_upload_bytes=2 * MIB)
_serial = itertools.count(1)
#: Every error answer seen in this module: (method, path, status, body) — for the OpenAPI test.
SEEN: list[tuple[str, str, int, dict]] = []


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    path = tmp_path_factory.mktemp("service-home")
    code, _, err = run_cli(path, "init")
    assert code == 0, err
    for kind in ("licence", "official"):
        code, _, err = run_cli(
            path,
            "seal",
            "make",
            "--department",
            "示例市卫生健康委员会",
            "--credit-code",
            OTHER_DEPARTMENT,
            "--kind",
            kind,
        )
        assert code == 0, err
    return path


@pytest.fixture(scope="module")
def domain(home):
    td = TrustDomain.open(str(home), actor="test:service")
    yield td
    td.close()


@pytest.fixture(scope="module")
def app(home):
    return create_app(lambda actor: TrustDomain.open(str(home), actor=actor), settings=SETTINGS)


@pytest.fixture(scope="module")
def client(app):
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


SECRETS: list[str] = []


@pytest.fixture(scope="module")
def make_key(domain):
    registry = ApiKeyRegistry(domain.db, domain.audit, actor="test:keys")
    known = [t.code for t in domain.licence_desk.catalogue]

    def make(department=DEMO_DEPARTMENT_CODE, types=("*",), ops=ALL_OPS, **kw) -> str:
        made = registry.create(department, types, ops, "test key", known_types=known, **kw)
        SECRETS.append(made.token)
        return made.token

    make.registry = registry
    return make


@pytest.fixture(scope="module")
def demo_key(make_key):
    return make_key()


@pytest.fixture(scope="module")
def other_key(make_key):
    return make_key(OTHER_DEPARTMENT)


def business_data(**changes) -> dict:
    first17 = f"91350102MA8T{next(_serial):05d}"
    data = {
        "统一社会信用代码": first17 + credit_code_check_character(first17),
        "名称": "示例市闽江云数科技有限公司",
        "类型": "有限责任公司（自然人投资或控股）",
        "法定代表人": "陈志远",
        "经营范围": "软件开发；信息系统集成服务。",
        "注册资本": "500万元人民币",
        "成立日期": "2019-06-18",
        "营业期限": "2019年06月18日至长期",
        "住所": "示例省示例市鼓楼区五四路158号",
    }
    data.update(changes)
    return data


def call(client, method: str, path: str, key: str | None = None, **kw):
    headers = dict(kw.pop("headers", {}))
    if key is not None:
        headers["Authorization"] = f"Bearer {key}"
    response = client.request(method, path, headers=headers, **kw)
    if response.status_code >= 400:
        body = response.json()
        assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"}, body
        assert "Traceback" not in response.text and 'File "' not in response.text
        SEEN.append((method, path, response.status_code, body))
    return response


def issue(client, key, data=None, type_code=BUSINESS, **kw):
    return call(
        client,
        "POST",
        "/api/v1/licences",
        key,
        json={"type": type_code, "data": data or business_data()},
        **kw,
    )


@pytest.fixture(scope="module")
def issued(client, demo_key):
    response = issue(client, demo_key)
    assert response.status_code == 201, response.text
    return response.json()


def code_of(response) -> str:
    return response.json()["error"]["code"]


# ---- health and authentication ---------------------------------------------------------------------


def test_healthz_answers_without_a_database(tmp_path):
    def no_domain(actor):
        raise AssertionError("healthz must not open a trust domain")

    with TestClient(create_app(no_domain, settings=SETTINGS)) as c:
        response = c.get("/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


def test_missing_wrong_and_malformed_keys_are_401(client, demo_key):
    response = call(client, "GET", "/api/v1/licences")
    assert response.status_code == 401 and code_of(response) == "missing_credentials"
    assert response.headers["www-authenticate"] == "Bearer"
    key_id = demo_key.split("_")[1]
    wrong_secret = f"zy_{key_id}_{'0' * 64}"
    unknown_id = f"zy_{'a' * 16}_{demo_key.split('_')[2]}"
    answers = [
        call(client, "GET", "/api/v1/licences", k) for k in (wrong_secret, unknown_id, "zy_x_y", "Basic")
    ]
    assert {r.status_code for r in answers} == {401}
    # One answer for every bad key: nothing says which key ids exist.
    assert len({json.dumps(r.json()) for r in answers}) == 1
    assert code_of(answers[0]) == "invalid_credentials"


def test_revoked_and_expired_keys_are_refused(client, make_key):
    revoked = make_key()
    assert call(client, "GET", "/api/v1/licences", revoked).status_code == 200
    make_key.registry.revoke(revoked.split("_")[1], "left the department")
    response = call(client, "GET", "/api/v1/licences", revoked)
    assert response.status_code == 401 and code_of(response) == "revoked_credentials"
    then = datetime.now(UTC) - timedelta(hours=2)
    expired = make_key(expires_at=then + timedelta(hours=1), now=then)
    response = call(client, "GET", "/api/v1/licences", expired)
    assert response.status_code == 401 and code_of(response) == "expired_credentials"


def test_scopes_limit_operations_and_licence_types(client, make_key, issued):
    reader = make_key(ops=["read"])
    response = issue(client, reader)
    assert response.status_code == 403 and code_of(response) == "operation_not_permitted"
    food_only = make_key(types=[FOOD], ops=ALL_OPS)
    response = issue(client, food_only)
    assert response.status_code == 403 and code_of(response) == "licence_type_not_permitted"
    response = call(client, "GET", f"/api/v1/licences/{issued['identifier']}", food_only)
    assert response.status_code == 403 and code_of(response) == "licence_type_not_permitted"
    response = call(
        client,
        "POST",
        f"/api/v1/licences/{issued['identifier']}/revoke",
        reader,
        json={"reason": "not allowed"},
    )
    assert response.status_code == 403 and code_of(response) == "operation_not_permitted"
    assert call(client, "GET", f"/api/v1/licences/{issued['identifier']}", reader).status_code == 200


# ---- issuance, documents, verification ------------------------------------------------------------


def test_issue_returns_identifier_qr_metadata_and_links(issued):
    assert issued["identifier"].startswith(f"1.2.156.3005.2.{BUSINESS}.{DEMO_DEPARTMENT_CODE}.")
    assert issued["qr"].startswith("HTTP") or issued["qr"].lower().startswith("http")
    assert issued["metadata"]["identifier"] == issued["identifier"]
    assert issued["metadata"]["status"] == "01"
    assert issued["links"]["pdf"] == f"/api/v1/licences/{issued['identifier']}/pdf"


def test_issued_documents_verify_total_passed(client, demo_key, issued, domain, tmp_path, home):
    context, now = domain.verification_trust(), datetime.now(UTC)
    for kind, media in (("ofd", "application/ofd"), ("pdf", "application/pdf")):
        response = call(client, "GET", issued["links"][kind], demo_key)
        assert response.status_code == 200 and response.headers["content-type"] == media
        assert validate_document(response.content, context, now).indication == "TOTAL_PASSED", kind
        path = tmp_path / f"licence.{kind}"
        path.write_bytes(response.content)
        code, out, err = run_cli(home, "verify", str(path), "--json")
        assert code == 0 and json.loads(out)["indication"] == "TOTAL_PASSED", out + err


def test_show_gives_metadata_status_and_history(client, demo_key, issued):
    response = call(client, "GET", issued["links"]["self"], demo_key)
    assert response.status_code == 200
    view = response.json()
    assert view["status"] == "01" and view["status_name"] == "valid"
    assert view["metadata"]["holder_name"] == "示例市闽江云数科技有限公司"
    key_id = demo_key.split("_")[1]
    assert [(h["act"], h["actor"]) for h in view["history"]] == [("issue", f"api:{key_id}")]


def test_list_shows_only_the_departments_own_licences(client, demo_key, other_key, issued):
    mine = call(client, "GET", "/api/v1/licences", demo_key, params={"type": BUSINESS, "limit": 500}).json()
    assert issued["identifier"] in {i["identifier"] for i in mine["items"]}
    theirs = call(client, "GET", "/api/v1/licences", other_key, params={"limit": 500}).json()
    assert all(i["identifier"].split(".")[6] == OTHER_DEPARTMENT for i in theirs["items"])
    response = call(client, "GET", "/api/v1/licences", demo_key, params={"status": "nonsense"})
    assert response.status_code == 422 and code_of(response) == "invalid_request"


# ---- departments kept apart -----------------------------------------------------------------------


def test_another_departments_licence_is_answered_like_a_missing_one(
    client, demo_key, other_key, issued, domain
):
    ident = issued["identifier"]
    parts = ident.split(".")
    own_missing = _identifier(parts[5], OTHER_DEPARTMENT, 999_999)
    missing = call(client, "GET", f"/api/v1/licences/{own_missing}", other_key)
    assert missing.status_code == 404 and code_of(missing) == "licence_not_found"
    for method, suffix, body in (
        ("GET", "", None),
        ("GET", "/ofd", None),
        ("GET", "/pdf", None),
        ("POST", "/revoke", {"reason": "x"}),
        ("POST", "/suspend", {"reason": "x"}),
        ("POST", "/change", {"data": business_data(), "reason": "x"}),
        ("POST", "/renew", {}),
    ):
        response = call(client, method, f"/api/v1/licences/{ident}{suffix}", other_key, json=body)
        assert response.status_code == 404, (suffix, response.text)
        error = response.json()["error"]
        assert error["code"] == "licence_not_found" and error["details"] is None
        assert error["message"] == missing.json()["error"]["message"].replace(own_missing, ident)
    assert domain.licences.status(ident) is LicenceStatus.VALID


def _identifier(type_code: str, issuer: str, serial: int) -> str:
    from licences.identifiers import LicenceIdentifier

    return LicenceIdentifier(type_code, issuer, serial).text


def test_malformed_identifiers_are_422(client, demo_key, issued):
    good = issued["identifier"]
    wrong_check = good[:-1] + ("0" if good[-1] != "0" else "1")
    for bad in ("abc", "1.2.156.3005.2.x", wrong_check, good + ".1", "1.2.156.3005.2." + "9" * 60):
        response = call(client, "GET", f"/api/v1/licences/{bad}", demo_key)
        assert response.status_code == 422 and code_of(response) == "invalid_identifier", bad


# ---- idempotency -----------------------------------------------------------------------------------


def _count(domain, licence_number: str) -> int:
    return sum(
        1
        for r in domain.licences.licences(type_code=BUSINESS, limit=500)
        if r.licence_number == licence_number
    )


def test_a_retry_with_the_same_key_returns_the_same_licence(client, demo_key, domain):
    data = business_data()
    headers = {"Idempotency-Key": "retry-1"}
    first = issue(client, demo_key, data, headers=headers)
    again = issue(client, demo_key, data, headers=headers)
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json() and again.headers["idempotent-replayed"] == "true"
    assert _count(domain, data["统一社会信用代码"]) == 1
    reused = issue(client, demo_key, business_data(), headers=headers)
    assert reused.status_code == 422 and code_of(reused) == "idempotency_key_reused"
    # Another department's key has its own key space.
    bad = call(
        client,
        "POST",
        "/api/v1/licences",
        demo_key,
        json={"type": BUSINESS, "data": data},
        headers={"Idempotency-Key": "bad key\x7f"},
    )
    assert bad.status_code == 422 and code_of(bad) == "invalid_idempotency_key"


def test_a_failed_request_releases_its_idempotency_key(client, demo_key):
    headers = {"Idempotency-Key": "fails-first"}
    data = business_data(成立日期="not a date")
    assert issue(client, demo_key, data, headers=headers).status_code == 422
    data["成立日期"] = "2019-06-18"
    assert issue(client, demo_key, data, headers=headers).status_code == 201


def test_concurrent_requests_with_one_key_make_one_licence(client, demo_key, domain):
    data = business_data()
    results: list = []
    start = threading.Barrier(4)

    def send() -> None:
        start.wait()  # all four leave together: the claim really is contended
        results.append(issue(client, demo_key, data, headers={"Idempotency-Key": "concurrent-1"}))

    threads = [threading.Thread(target=send) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [r.status_code for r in results] == [201] * 4, [r.text for r in results]
    assert len({r.json()["identifier"] for r in results}) == 1
    assert sorted(r.headers.get("idempotent-replayed", "") for r in results) == ["", "true", "true", "true"]
    assert _count(domain, data["统一社会信用代码"]) == 1


def test_an_idempotency_key_replayed_under_another_api_key_is_another_request(client, make_key, domain):
    first_key, second_key = make_key(), make_key()
    data = business_data()
    headers = {"Idempotency-Key": "shared-between-keys"}
    first = issue(client, first_key, data, headers=headers)
    assert first.status_code == 201
    # Same body, same Idempotency-Key, another API key: not the first key's stored answer but
    # a request of its own, which the library refuses (the number is taken by the first licence).
    same = issue(client, second_key, data, headers=headers)
    assert same.status_code == 409 and code_of(same) == "licence_exists"
    assert "idempotent-replayed" not in same.headers
    other = issue(client, second_key, business_data(), headers=headers)
    assert other.status_code == 201 and "idempotent-replayed" not in other.headers
    assert other.json()["identifier"] != first.json()["identifier"]
    assert _count(domain, data["统一社会信用代码"]) == 1


def test_a_pending_key_answers_409_with_retry_after(client, app, demo_key, monkeypatch):
    from trust.service.idempotency import fingerprint

    store = app.state.service.idempotency
    body = {"type": BUSINESS, "data": business_data(), "source_id": None}
    digest = fingerprint("POST", "/api/v1/licences", body)
    assert store.claim(demo_key.split("_")[1], "still-pending", digest) is None
    monkeypatch.setattr(store, "wait", timedelta(0))
    response = issue(client, demo_key, body["data"], headers={"Idempotency-Key": "still-pending"})
    assert response.status_code == 409 and code_of(response) == "request_in_progress"
    assert int(response.headers["retry-after"]) >= 1


# ---- validation, limits, media types ---------------------------------------------------------------


def test_field_errors_come_in_chinese_and_english(client, demo_key):
    data = business_data(统一社会信用代码="91350102MA8T2K3X20")
    del data["名称"]
    response = issue(client, demo_key, data)
    assert response.status_code == 422 and code_of(response) == "invalid_licence_data"
    errors = response.json()["error"]["details"]
    assert len(errors) >= 2
    for e in errors:
        assert e["path"].startswith("$") and e["message_en"]
        assert any("\u4e00" <= c <= "\u9fff" for c in e["message_zh"])
    response = call(
        client, "POST", "/api/v1/licences", demo_key, json={"type": BUSINESS, "data": {}, "extra": 1}
    )
    assert response.status_code == 422 and code_of(response) == "invalid_request"
    assert any(d["loc"] == ["body", "extra"] for d in response.json()["error"]["details"])
    response = issue(client, demo_key, type_code="11100000MB0000019L999")
    assert response.status_code == 422 and code_of(response) == "unknown_licence_type"


def test_oversize_bodies_are_413_while_reading(client, demo_key):
    big = business_data(经营范围="软" * (MIB // 2))
    response = issue(client, demo_key, big)
    assert response.status_code == 413 and code_of(response) == "payload_too_large"

    def chunks():  # no Content-Length: counted as it arrives
        yield b'{"type": "' + BUSINESS.encode() + b'", "data": {"x": "'
        for _ in range(40):
            yield b"a" * 65536
        yield b'"}}'

    response = call(
        client,
        "POST",
        "/api/v1/licences",
        demo_key,
        content=chunks(),
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 413 and code_of(response) == "payload_too_large"
    response = call(
        client,
        "POST",
        "/api/v1/seal",
        demo_key,
        data={"kind": "official"},
        files={"file": ("big.pdf", b"%PDF-" + b"0" * (3 * MIB), "application/pdf")},
    )
    assert response.status_code == 413 and code_of(response) == "payload_too_large"


def test_wrong_media_types_are_415(client, demo_key):
    response = call(
        client,
        "POST",
        "/api/v1/licences",
        demo_key,
        content=b"type=x",
        headers={"Content-Type": "text/plain"},
    )
    assert response.status_code == 415 and code_of(response) == "unsupported_media_type"
    response = call(client, "POST", "/api/v1/seal", demo_key, json={"kind": "official"})
    assert response.status_code == 415 and code_of(response) == "unsupported_media_type"
    response = call(
        client,
        "POST",
        "/api/v1/seal",
        demo_key,
        data={"kind": "official"},
        files={"file": ("notes.txt", b"just text", "text/plain")},
    )
    assert response.status_code == 415 and code_of(response) == "unsupported_document"


def test_an_internal_failure_is_500_without_internals(client, demo_key, monkeypatch):
    from licences.issuance import LicenceDesk

    def broken(*args, **kwargs):
        raise RuntimeError("disk /srv/secret/path exploded")

    monkeypatch.setattr(LicenceDesk, "issue", broken)
    response = issue(client, demo_key)
    assert response.status_code == 500 and code_of(response) == "internal_error"
    assert "exploded" not in response.text and "RuntimeError" not in response.text
    assert response.json()["error"]["details"]["incident"]


# ---- lifecycle ------------------------------------------------------------------------------------


def test_revoke_through_the_api_the_documents_still_verify(client, demo_key, domain):
    licence = issue(client, demo_key).json()
    pdf = call(client, "GET", licence["links"]["pdf"], demo_key).content
    response = call(
        client, "POST", f"{licence['links']['self']}/revoke", demo_key, json={"reason": "吊销：违法经营"}
    )
    assert response.status_code == 200 and response.json()["status"] == "07"
    assert domain.licences.status(licence["identifier"]) is LicenceStatus.REVOKED
    view = call(client, "GET", licence["links"]["self"], demo_key).json()
    assert view["status_name"] == "revoked" and view["history"][-1]["reason"] == "吊销：违法经营"
    assert call(client, "GET", licence["links"]["pdf"], demo_key).content == pdf
    report = validate_document(pdf, domain.verification_trust(), datetime.now(UTC))
    assert report.indication == "TOTAL_PASSED"
    again = call(client, "POST", f"{licence['links']['self']}/resume", demo_key, json={})
    assert again.status_code == 409 and code_of(again) == "licence_state_conflict"
    assert again.json()["error"]["details"]["status"] == "07"


def test_suspend_and_resume(client, demo_key):
    licence = issue(client, demo_key).json()
    suspended = call(client, "POST", f"{licence['links']['self']}/suspend", demo_key, json={"reason": "核查"})
    assert suspended.json()["status"] == "02"
    missing_reason = call(client, "POST", f"{licence['links']['self']}/revoke", demo_key, json={})
    assert missing_reason.status_code == 422 and code_of(missing_reason) == "invalid_request"
    resumed = call(client, "POST", f"{licence['links']['self']}/resume", demo_key, json={})
    assert resumed.json()["status"] == "01"


def test_change_and_renew_make_linked_versions(client, demo_key, domain):
    licence = issue(client, demo_key).json()
    data = domain.licences.find(licence["identifier"]).data
    changed = call(
        client,
        "POST",
        f"{licence['links']['self']}/change",
        demo_key,
        json={"data": dict(data, 住所="示例省示例市鼓楼区新址1号"), "reason": "住所变更"},
        headers={"Idempotency-Key": "change-1"},
    )
    assert changed.status_code == 201, changed.text
    new = changed.json()
    assert new["identifier"].split(".")[-2] == "002"
    assert new["metadata"]["previous_identifier"] == licence["identifier"]
    old = call(client, "GET", licence["links"]["self"], demo_key).json()
    assert old["superseded_by"] == new["identifier"] and old["status_name"] == "superseded"
    renewed = call(client, "POST", f"{new['links']['self']}/renew", demo_key, json={"reason": "换证"})
    assert renewed.status_code == 201, renewed.text
    assert renewed.json()["metadata"]["previous_identifier"] == new["identifier"]
    stale = call(client, "POST", f"{licence['links']['self']}/renew", demo_key, json={})
    assert stale.status_code == 409 and code_of(stale) == "licence_state_conflict"


# ---- sealing uploads --------------------------------------------------------------------------------


def _notice():
    from pages.model import Document, Page, Text

    return Document(
        pages=(Page.a4([Text(105, 40, "关于开展专项检查的通知", 7, bold=True, align="center")]),),
        title="通知",
        author="示例市市场监督管理局",
    )


@pytest.mark.parametrize("kind", ["ofd", "pdf"])
def test_upload_sealing_of_ofd_and_pdf(client, demo_key, domain, kind):
    from ofd.writer import write_ofd
    from pdf.writer import write_pdf

    document = write_ofd(_notice()) if kind == "ofd" else write_pdf(_notice())
    response = call(
        client,
        "POST",
        "/api/v1/seal",
        demo_key,
        data={"kind": "official", "page": "1", "x": "140", "y": "120"},
        files={"file": (f"notice.{kind}", document, "application/octet-stream")},
        headers={"Idempotency-Key": f"seal-{kind}"},
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == ("application/pdf" if kind == "pdf" else "application/ofd")
    report = validate_document(response.content, domain.verification_trust(), datetime.now(UTC))
    assert report.indication == "TOTAL_PASSED" and len(report.signatures) == 1
    again = call(
        client,
        "POST",
        "/api/v1/seal",
        demo_key,
        data={"kind": "official", "page": "1", "x": "140", "y": "120"},
        files={"file": (f"notice.{kind}", document, "application/octet-stream")},
        headers={"Idempotency-Key": f"seal-{kind}"},
    )
    assert again.content == response.content and again.headers["idempotent-replayed"] == "true"


def test_sealing_needs_the_departments_own_seal(client, demo_key, domain):
    from pdf.writer import write_pdf

    theirs = domain.seals.seals(OTHER_DEPARTMENT, "active", kind="official")[0].es_id
    files = {"file": ("n.pdf", write_pdf(_notice()), "application/pdf")}
    response = call(client, "POST", "/api/v1/seal", demo_key, data={"es_id": theirs}, files=files)
    assert response.status_code == 404 and code_of(response) == "seal_not_found"
    response = call(
        client, "POST", "/api/v1/seal", demo_key, data={"es_id": theirs, "kind": "official"}, files=files
    )
    assert response.status_code == 422 and code_of(response) == "invalid_seal_request"
    response = call(
        client, "POST", "/api/v1/seal", demo_key, data={"kind": "official", "page": "0"}, files=files
    )
    assert response.status_code == 422 and code_of(response) == "invalid_request"
    response = call(
        client, "POST", "/api/v1/seal", demo_key, data={"kind": "official", "colour": "red"}, files=files
    )
    assert response.status_code == 422 and code_of(response) == "invalid_request"


# ---- review fixes: what another department holds, the licence seal, shared domain, … ------------


def test_a_licence_number_another_department_holds_is_not_named(client, demo_key, other_key):
    data = business_data()
    theirs = issue(client, other_key, data)
    assert theirs.status_code == 201, theirs.text
    their_id = theirs.json()["identifier"]

    def refused_without_names(response) -> None:
        assert response.status_code == 409 and code_of(response) == "licence_exists", response.text
        assert their_id not in response.text and OTHER_DEPARTMENT not in response.text
        assert response.json()["error"]["details"] == {"field": "licence_number"}

    refused_without_names(issue(client, demo_key, data))
    # A new version keeps its licence number, so taking another department's number through
    # change or renew is a field error (same-licence) — and it must not name that licence either.
    own = issue(client, demo_key).json()
    for act, body in (("change", {"data": data, "reason": "x"}), ("renew", {"data": data})):
        response = call(client, "POST", f"{own['links']['self']}/{act}", demo_key, json=body)
        assert response.status_code == 422 and code_of(response) == "invalid_licence_data", response.text
        assert {e["validator"] for e in response.json()["error"]["details"]} == {"same-licence"}
        assert their_id not in response.text and OTHER_DEPARTMENT not in response.text
    # The department's own licence is still named: it may act on it.
    again = issue(client, other_key, data)
    assert again.status_code == 409 and again.json()["error"]["details"]["existing"] == their_id


def _licence_seal(domain) -> str:
    return domain.seals.seals(DEMO_DEPARTMENT_CODE, "active", kind="licence")[0].es_id


def test_the_licence_seal_never_stamps_an_upload(client, demo_key, domain):
    from pdf.writer import write_pdf

    es_id = _licence_seal(domain)
    before = len(domain.audit.entries(action="document.seal", subject=f"seal:{es_id}", limit=1000))
    files = {"file": ("n.pdf", write_pdf(_notice()), "application/pdf")}
    for form in ({"kind": "licence"}, {"kind": "LICENCE"}, {"es_id": es_id}):
        response = call(client, "POST", "/api/v1/seal", demo_key, data=form, files=files)
        assert response.status_code == 403 and code_of(response) == "operation_not_permitted", form
        assert response.json()["error"]["details"] == {"operation": "seal", "seal_kind": "licence"}
        assert "电子证照专用章" in response.json()["error"]["message"]
    after = len(domain.audit.entries(action="document.seal", subject=f"seal:{es_id}", limit=1000))
    assert after == before


def test_one_domain_serves_every_key_and_is_closed_when_the_app_stops(home, make_key):
    from trust.service.context import SERVICE_ACTOR

    opened: list[TrustDomain] = []
    closed: list[str] = []

    def factory(actor: str) -> TrustDomain:
        td = TrustDomain.open(str(home), actor=actor)
        original = td.close
        td.close = lambda: (closed.append(td.actor), original())[1]
        opened.append(td)
        return td

    keys = [make_key(), make_key(), make_key(OTHER_DEPARTMENT)]
    app = create_app(factory, settings=SETTINGS)
    with TestClient(app) as c:
        for key in keys:
            response = c.get(
                "/api/v1/licences", params={"limit": 1}, headers={"Authorization": f"Bearer {key}"}
            )
            assert response.status_code == 200, response.text
        make_key.registry.revoke(keys[0].split("_")[1], "rotated")
        assert c.get("/api/v1/licences", headers={"Authorization": f"Bearer {keys[0]}"}).status_code == 401
        assert [td.actor for td in opened] == [SERVICE_ACTOR]  # one domain, however many keys
        assert closed == []
    assert closed == [SERVICE_ACTOR]


def test_a_view_shares_the_engine_and_records_its_own_actor(home):
    td = TrustDomain.open(str(home), actor="test:owner")
    try:
        view = td.acting_as("api:view")
        assert view.db is td.db and view.audit is td.audit and view.keys is td.keys
        assert view.catalogue is td.catalogue and view.acting_as("api:other").db is td.db
        assert view.licences.actor == "api:view" and view.seals.actor == "api:view"
        assert view.ca.actor == "api:view" and td.licences.actor == "test:owner"
        view.close()  # a view closes nothing of its owner's
        assert td.db.table_names()
    finally:
        td.close()


def test_database_outages_are_503_with_the_detail_only_in_the_log(client, demo_key, monkeypatch, caplog):
    from sqlalchemy.exc import InterfaceError, OperationalError
    from sqlalchemy.exc import TimeoutError as PoolTimeout

    from licences.lifecycle import LicenceLibrary

    for error in (
        OperationalError("SELECT secret_table", {}, Exception("could not connect to 10.9.8.7:5432")),
        InterfaceError("SELECT 1", {}, Exception("connection to 10.9.8.7 closed")),
        PoolTimeout("QueuePool limit of size 5 overflow 10 reached, 10.9.8.7"),
    ):

        def down(*args, _error=error, **kwargs):
            raise _error

        monkeypatch.setattr(LicenceLibrary, "licences", down)
        caplog.clear()
        with caplog.at_level("ERROR", logger="zhengyin.service"):
            response = call(client, "GET", "/api/v1/licences", demo_key, params={"type": BUSINESS})
        assert response.status_code == 503 and code_of(response) == "service_unavailable", type(error)
        assert "10.9.8.7" not in response.text and "SELECT" not in response.text
        assert int(response.headers["retry-after"]) > 0
        assert "10.9.8.7" in caplog.text


def _refusals(domain, key: str, action: str = "service.access.refused") -> list:
    actor = f"api:{key.split('_')[1]}"
    return [e for e in domain.audit.entries(action=action, limit=100_000) if e.actor == actor]


def test_refused_access_is_audited_with_the_key_as_actor(client, make_key, issued, domain, other_key):
    reader = make_key(ops=["read"])
    assert issue(client, reader).status_code == 403
    food_only = make_key(types=[FOOD])
    assert call(client, "GET", issued["links"]["self"], food_only).status_code == 403
    assert call(client, "GET", issued["links"]["self"], other_key).status_code == 404
    (scope,) = _refusals(domain, reader)
    assert scope.details == {"operation": "issue", "reason": "operation_not_permitted"}
    (typed,) = _refusals(domain, food_only)
    assert typed.subject == f"licence:{issued['identifier']}"
    assert typed.details == {"operation": "read", "reason": "licence_type_not_permitted", "type": BUSINESS}
    foreign = [e for e in _refusals(domain, other_key) if e.subject == f"licence:{issued['identifier']}"]
    assert foreign and foreign[-1].details == {"operation": "read", "reason": "another_department"}


def test_a_flood_of_refusals_writes_a_bounded_number_of_entries(client, make_key, domain):
    from trust.service.refusals import BURST

    prober = make_key(ops=["read"])
    for _ in range(BURST + 15):
        assert issue(client, prober).status_code == 403
    assert len(_refusals(domain, prober)) == BURST


def test_a_revoked_key_in_use_is_audited(client, make_key, domain):
    key = make_key()
    key_id = key.split("_")[1]
    make_key.registry.revoke(key_id, "compromised")
    assert call(client, "GET", "/api/v1/licences", key).status_code == 401
    (entry,) = domain.audit.entries(action="service.auth.refused", subject=f"api-key:{key_id}")
    assert entry.actor == "service:signing-api"
    assert entry.details == {"reason": "revoked", "path": "/api/v1/licences"}


def _asgi_post(app, headers: list[tuple[bytes, bytes]]) -> tuple[int, list[str]]:
    """POST /api/v1/licences straight through ASGI, recording whether the body was read."""
    import asyncio

    events: list[str] = []
    sent: list[dict] = []

    async def receive():
        events.append("body read")
        return {"type": "http.request", "body": b'{"not": json', "more_body": False}

    async def send(message):
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/api/v1/licences",
        "raw_path": b"/api/v1/licences",
        "root_path": "",
        "query_string": b"",
        "headers": [(b"content-type", b"application/json"), *headers],
        "client": ("127.0.0.1", 1),
        "server": ("testserver", 80),
    }
    asyncio.run(app(scope, receive, send))
    return sent[0]["status"], events


def test_credentials_are_checked_before_the_body_is_read(app, client, demo_key):
    wrong = f"zy_{demo_key.split('_')[1]}_{'0' * 64}".encode()
    for headers in ([], [(b"authorization", b"Basic abc")], [(b"authorization", b"Bearer " + wrong)]):
        status, events = _asgi_post(app, headers)
        assert status == 401 and events == [], headers
    status, events = _asgi_post(app, [(b"authorization", f"Bearer {demo_key}".encode())])
    assert status == 422 and events == ["body read"]  # a good key: the (malformed) body is read
    # Over HTTP: no key and a body that is neither small nor JSON is 401, not 413 or 422.
    response = call(
        client,
        "POST",
        "/api/v1/licences",
        content=b"{" * (2 * MIB),
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 401 and code_of(response) == "missing_credentials"


def test_a_chunked_upload_is_413_while_it_is_read(client, demo_key):
    boundary = "zhengyin-boundary"

    def chunks():  # no Content-Length: the limit must be counted, not declared
        yield (
            f'--{boundary}\r\nContent-Disposition: form-data; name="kind"\r\n\r\nofficial\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.pdf"\r\n'
            "Content-Type: application/pdf\r\n\r\n%PDF-"
        ).encode()
        for _ in range(40):
            yield b"0" * 65536
        yield f"\r\n--{boundary}--\r\n".encode()

    response = call(
        client,
        "POST",
        "/api/v1/seal",
        demo_key,
        content=chunks(),
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    assert response.status_code == 413 and code_of(response) == "payload_too_large"


def test_sealed_documents_are_kept_in_the_document_store_not_the_row(client, demo_key, domain, home):
    from sqlalchemy import select

    from hsm.sm3 import sm3
    from pdf.writer import write_pdf
    from trust.service.models import IdempotencyRecord

    form = {"kind": "official", "x": "20", "y": "20"}
    files = {"file": ("n.pdf", write_pdf(_notice()), "application/pdf")}
    headers = {"Idempotency-Key": "sealed-in-store"}
    first = call(client, "POST", "/api/v1/seal", demo_key, data=form, files=files, headers=headers)
    assert first.status_code == 200
    with domain.db.transaction() as s:
        row = s.scalars(
            select(IdempotencyRecord).where(IdempotencyRecord.idempotency_key == "sealed-in-store")
        ).one()
    assert row.response == {"media_type": "application/pdf", "document_sm3": sm3(first.content).hex()}
    digest = row.response["document_sm3"]
    stored = home / "service" / "sealed" / digest[:2] / digest[2:4] / digest
    assert stored.read_bytes() == first.content
    again = call(client, "POST", "/api/v1/seal", demo_key, data=form, files=files, headers=headers)
    assert again.content == first.content and again.headers["idempotent-replayed"] == "true"


def test_the_summary_is_the_command_lines_with_the_effective_status(client, demo_key, domain, home):
    from datetime import date

    from sqlalchemy import update

    from licences.registry import LicenceRecord

    licence = issue(client, demo_key).json()
    with domain.db.transaction() as s:  # past its validity, not yet swept: effective 05, recorded 01
        s.execute(
            update(LicenceRecord)
            .where(LicenceRecord.identifier == licence["identifier"])
            .values(valid_until=date(2020, 1, 1))
        )
    api = call(client, "GET", licence["links"]["self"], demo_key).json()
    assert (api["status"], api["status_name"], api["recorded_status"]) == ("05", "expired", "01")
    code, out, err = run_cli(home, "licence", "show", licence["identifier"], "--json")
    assert code == 0, err
    cli = json.loads(out)
    summary_fields = set(api) - {"links", "metadata", "history"}
    assert {k: cli[k] for k in summary_fields} == {k: api[k] for k in summary_fields}
    # Every status and status name the API shows is a filter the API takes.
    listed = call(client, "GET", "/api/v1/licences", demo_key, params={"type": BUSINESS, "limit": 500}).json()
    shown = {(i["status"], i["status_name"]) for i in listed["items"]}
    assert ("05", "expired") in shown and ("99", "superseded") in shown
    for status, name in shown:
        for value in (status, name):
            page = call(
                client,
                "GET",
                "/api/v1/licences",
                demo_key,
                params={"type": BUSINESS, "status": value, "limit": 500},
            )
            assert page.status_code == 200, value
            assert page.json()["items"] and {i["status"] for i in page.json()["items"]} == {status}, value


# ---- what the service keeps and documents -------------------------------------------------------


def test_no_secret_in_the_database_or_the_audit_log(home, domain):
    assert SECRETS
    blobs = b"".join(p.read_bytes() for p in home.glob("zhengyin.db*"))
    audit = "".join(e.payload for e in domain.audit.entries(limit=100_000))
    for token in SECRETS:
        secret = token.split("_")[2]
        assert secret.encode() not in blobs and token.encode() not in blobs
        assert secret not in audit
    assert "service.key.create" in audit and "service.key.revoke" in audit
    assert domain.audit.verify().ok


def test_no_traceback_text_in_any_error(client):
    assert len(SEEN) > 20
    for _, _, _, body in SEEN:
        text = json.dumps(body, ensure_ascii=False)
        assert "Traceback" not in text and "site-packages" not in text and "sqlalchemy" not in text.lower()


def test_openapi_documents_every_route_and_every_error_seen(client, app):
    spec = client.get("/openapi.json").json()
    routes = [r for r in app.routes if hasattr(r, "methods") and r.include_in_schema]
    for route in routes:
        for method in route.methods - {"HEAD"}:
            operation = spec["paths"][route.path][method.lower()]
            assert operation["summary"]
            if route.path != "/healthz":
                assert {"401", "422", "500"} <= set(operation["responses"]), route.path
    assert spec["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "zy_<key id>_<secret>",
        "description": "the department's API key (`zhengyin service key create`)",
    }
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            if path.startswith("/api/v1/"):
                assert operation["security"] == [{"bearerAuth": []}], (method, path)
            else:
                assert "security" not in operation, path
            if method == "post":  # every body is checked before the endpoint: 400, 413, 415
                responses = operation["responses"]
                for status, code in (
                    ("400", "bad_request"),
                    ("413", "payload_too_large"),
                    ("415", "unsupported_media_type"),
                ):
                    examples = responses[status]["content"]["application/json"]["examples"]
                    assert code in examples, (path, status)
    for path in (
        "/api/v1/licences",
        "/api/v1/licences/{identifier}/change",
        "/api/v1/licences/{identifier}/renew",
    ):
        headers = spec["paths"][path]["post"]["responses"]["201"]["headers"]
        assert {"Location", "Idempotent-Replayed"} <= set(headers), path
    assert "Idempotent-Replayed" in spec["paths"]["/api/v1/seal"]["post"]["responses"]["200"]["headers"]
    for method, path, status, body in SEEN:
        scope = {"type": "http", "path": path.split("?")[0], "method": method}
        matched = [r for r in routes if r.matches(scope)[0] is Match.FULL]
        if not matched:  # an unknown path: 404/405 are the app's, not an operation's
            continue
        responses = spec["paths"][matched[0].path][method.lower()]["responses"]
        examples = (
            responses.get(str(status), {}).get("content", {}).get("application/json", {}).get("examples", {})
        )
        assert body["error"]["code"] in examples, (method, matched[0].path, status, body["error"]["code"])


def test_a_home_that_is_not_set_up_is_503_without_details(tmp_path):
    app = create_app(lambda actor: TrustDomain.open(str(tmp_path / "empty"), actor=actor), settings=SETTINGS)
    with TestClient(app, raise_server_exceptions=False) as c:
        response = c.get("/api/v1/licences", headers={"Authorization": f"Bearer zy_{'a' * 16}_{'b' * 64}"})
    assert response.status_code == 503 and response.json()["error"]["code"] == "service_unavailable"
    assert str(tmp_path) not in response.text
