"""``POST /api/v1/seals/{es_id}/rotate`` on the signing service: only a security officer's key may
rotate, only its own department's seals; a department's key gets 403 (audited), another
department's seal is "not found" (audited); licences issued before and after verify; a retry with
the same Idempotency-Key does not rotate twice; the OpenAPI document lists the endpoint."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient

from ca.names import credit_code_check_character
from keys_dev.domain import DEMO_DEPARTMENT_CODE
from support.cli import run_cli
from trust.domain import TrustDomain
from trust.service.app import create_app
from trust.service.credentials import ApiKeyRegistry, ApiKeyRequestError
from trust.service.settings import MIB, ServiceSettings
from trust.validation import validate_document

BUSINESS = "11100000MB0000019L001"
OTHER_DEPARTMENT = "11350100MB0000035H"
DEPARTMENT_OPS = ["issue", "read", "change", "renew", "suspend", "resume", "revoke", "cancel", "seal", "list"]
_serial = itertools.count(1)


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    path = tmp_path_factory.mktemp("rotation-service-home")
    assert run_cli(path, "init")[0] == 0
    code, _, err = run_cli(path, "seal", "make", "--department", "示例市卫生健康委员会", "--credit-code",
                           OTHER_DEPARTMENT, "--kind", "licence")
    assert code == 0, err
    return path


@pytest.fixture(scope="module")
def domain(home):
    td = TrustDomain.open(str(home), actor="test:rotation")
    yield td
    td.close()


@pytest.fixture(scope="module")
def client(home):
    app = create_app(lambda actor: TrustDomain.open(str(home), actor=actor),
                     settings=ServiceSettings(max_json_bytes=1 * MIB, max_upload_bytes=2 * MIB))
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


@pytest.fixture(scope="module")
def keys(domain):
    registry = ApiKeyRegistry(domain.db, domain.audit, actor="test:keys")
    known = [t.code for t in domain.licence_desk.catalogue]

    def make(ops, department=DEMO_DEPARTMENT_CODE) -> str:
        return registry.create(department, ["*"], ops, "rotation test", known_types=known).token

    return {"department": make(DEPARTMENT_OPS), "officer": make(["rotate"]),
            "other_officer": make(["rotate"], OTHER_DEPARTMENT), "registry": registry, "known": known}


def _seal(domain, code=DEMO_DEPARTMENT_CODE) -> str:
    return domain.seals.seals(code, "active", kind="licence")[0].es_id


def _post(client, key: str, path: str, body: dict | None = None, **headers):
    return client.post(path, json={} if body is None else body,
                       headers={"Authorization": f"Bearer {key}", **headers})


def _issue(client, key: str) -> dict:
    first17 = f"91350102MD{next(_serial):07d}"
    data = {"统一社会信用代码": first17 + credit_code_check_character(first17), "名称": "示例市轮换科技有限公司",
            "类型": "有限责任公司（自然人投资或控股）", "法定代表人": "陈志远", "经营范围": "软件开发。",
            "注册资本": "500万元人民币", "成立日期": "2019-06-18", "营业期限": "2019年06月18日至长期",
            "住所": "示例省示例市鼓楼区五四路158号"}
    response = _post(client, key, "/api/v1/licences", {"type": BUSINESS, "data": data})
    assert response.status_code == 201, response.text
    return response.json()


def _documents(client, key: str, licence: dict) -> list[bytes]:
    auth = {"Authorization": f"Bearer {key}"}
    return [client.get(licence["links"][kind], headers=auth).content for kind in ("ofd", "pdf")]


def _refusals(domain, key: str) -> list:
    actor = f"api:{key.split('_')[1]}"
    return [e for e in domain.audit.entries(action="service.access.refused", limit=10_000) if e.actor == actor]


def test_a_department_key_is_refused_with_403_and_the_refusal_is_audited(client, domain, keys):
    es_id = _seal(domain)
    before = domain.seals.find(es_id).fingerprint
    response = _post(client, keys["department"], f"/api/v1/seals/{es_id}/rotate")
    assert response.status_code == 403
    error = response.json()["error"]
    assert error["code"] == "operation_not_permitted"
    assert error["details"] == {"operation": "rotate", "required_role": "security-officer", "role": "department"}
    assert domain.seals.find(es_id).fingerprint == before
    (refusal,) = _refusals(domain, keys["department"])
    assert refusal.subject == f"seal:{es_id}" and refusal.details["reason"] == "operation_not_permitted"


def test_an_officer_of_another_department_cannot_find_the_seal(client, domain, keys):
    es_id = _seal(domain)
    response = _post(client, keys["other_officer"], f"/api/v1/seals/{es_id}/rotate")
    unknown = _post(client, keys["other_officer"], "/api/v1/seals/35019999999999/rotate")
    assert response.status_code == unknown.status_code == 404
    assert response.json()["error"]["code"] == unknown.json()["error"]["code"] == "seal_not_found"
    assert [e.details["reason"] for e in _refusals(domain, keys["other_officer"])] == ["another_department"]


def test_an_officer_rotates_and_old_and_new_licences_verify(client, domain, keys):
    es_id = _seal(domain)
    before = _issue(client, keys["department"])
    response = _post(client, keys["officer"], f"/api/v1/seals/{es_id}/rotate", {"reason": "yearly"})
    assert response.status_code == 200, response.text
    rotation = response.json()
    assert rotation["es_id"] == es_id and rotation["new_version"] == rotation["old_version"] + 1
    assert rotation["old_keys_disabled"] and not rotation["old_certificates_revoked"]
    assert rotation["warnings"] == []
    after = _issue(client, keys["department"])
    context, now = domain.verification_trust(), datetime.now(UTC)
    for licence in (before, after):
        for document in _documents(client, keys["department"], licence):
            report = validate_document(document, context, now)
            assert report.indication == "TOTAL_PASSED", report.as_dict()
    new_signer = validate_document(_documents(client, keys["department"], after)[0], context, now)
    assert new_signer.signatures[0].signer["serial"].lower() == rotation["new_certificates"][0]
    entry = domain.audit.entries(action="seal.rotate", limit=1)[0]
    assert entry.actor == f"api:{keys['officer'].split('_')[1]}"
    assert entry.details["new_certificates"] == rotation["new_certificates"]
    assert entry.details["reason"] == "yearly"


def test_a_retry_with_the_same_idempotency_key_does_not_rotate_twice(client, domain, keys):
    es_id = _seal(domain)
    path = f"/api/v1/seals/{es_id}/rotate"
    first = _post(client, keys["officer"], path, {}, **{"Idempotency-Key": "rotate-once"})
    again = _post(client, keys["officer"], path, {}, **{"Idempotency-Key": "rotate-once"})
    assert first.status_code == again.status_code == 200
    assert again.headers.get("Idempotent-Replayed") == "true" and again.json() == first.json()
    assert domain.seals.find(es_id).version == first.json()["new_version"]
    other = _post(client, keys["officer"], path, {"revoke_old": True}, **{"Idempotency-Key": "rotate-once"})
    assert other.status_code == 422 and other.json()["error"]["code"] == "idempotency_key_reused"


def test_bad_requests_change_nothing(client, domain, keys):
    es_id = _seal(domain)
    before = domain.seals.find(es_id).fingerprint
    extra = _post(client, keys["officer"], f"/api/v1/seals/{es_id}/rotate", {"revoke_old": False, "key": "x"})
    assert extra.status_code == 422 and extra.json()["error"]["code"] == "invalid_request"
    long = _post(client, keys["officer"], f"/api/v1/seals/{es_id}/rotate", {"reason": "x" * 501})
    assert long.status_code == 422
    plain = client.post(f"/api/v1/seals/{es_id}/rotate", content=b"revoke", headers={
        "Authorization": f"Bearer {keys['officer']}", "Content-Type": "text/plain"})
    assert plain.status_code == 415
    anonymous = client.post(f"/api/v1/seals/{es_id}/rotate", json={})
    assert anonymous.status_code == 401
    assert domain.seals.find(es_id).fingerprint == before


def test_a_revoked_seal_is_refused(client, domain, keys, home):
    record = domain.seals.apply("示例市市场监督管理局", DEMO_DEPARTMENT_CODE, "official")
    domain.seals.approve(record.es_id)
    domain.seals.make(record.es_id)
    domain.seals.revoke(record.es_id, "withdrawn")
    response = _post(client, keys["officer"], f"/api/v1/seals/{record.es_id}/rotate")
    assert response.status_code == 409 and response.json()["error"]["code"] == "seal_refused"


def test_officer_keys_hold_officer_operations_only(keys):
    with pytest.raises(ApiKeyRequestError, match="security officer"):
        keys["registry"].create(DEMO_DEPARTMENT_CODE, ["*"], ["rotate", "issue"], "mixed",
                                known_types=keys["known"])
    officer = keys["registry"].authenticate(keys["officer"])
    assert officer.role == "security-officer" and keys["registry"].authenticate(keys["department"]).role == \
        "department"


def test_the_command_line_makes_an_officer_key(home):
    import json

    code, out, err = run_cli(home, "service", "key", "create", "--department", DEMO_DEPARTMENT_CODE,
                             "--types", "*", "--ops", "rotate", "--label", "security officer Wang", "--json")
    assert code == 0, err
    assert json.loads(out)["role"] == "security-officer"
    code, _, err = run_cli(home, "service", "key", "create", "--department", DEMO_DEPARTMENT_CODE,
                           "--types", "*", "--ops", "rotate,issue", "--label", "mixed")
    assert code == 6 and "security officer" in err


def test_openapi_lists_the_endpoint_and_its_errors(client):
    spec = client.get("/openapi.json").json()
    operation = spec["paths"]["/api/v1/seals/{es_id}/rotate"]["post"]
    assert {"200", "401", "403", "404", "409", "422"} <= set(operation["responses"])
    assert "operation_not_permitted" in operation["responses"]["403"]["description"]
    assert operation["security"] == [{"bearerAuth": []}]
