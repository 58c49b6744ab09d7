"""The holder's side of data reuse on the public app: a holder (authenticated with a holder
credential) grants a department client access to their licence, lists and revokes grants, and
reads the usage log (用证记录); the department app honours the grant until it is revoked. One
holder can neither see nor revoke another's grants, and bad grants change nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from ca.names import credit_code_check_character
from keys_dev.domain import DEMO_DEPARTMENT_CODE
from licences.catalogue import Catalogue
from licences.holders import HolderCredentials
from licences.reuse_clients import ClientRegistry
from licences.reuse_grants import HolderGrant
from support.cli import run_cli
from trust.domain import TrustDomain
from verify_api.app import create_app
from verify_api.reuse_app import ReuseSettings, create_reuse_app
from verify_api.settings import VerifySettings

BUSINESS = "11100000MB0000019L001"
PURPOSE = "公积金提取：核验单位营业执照"


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    home = tmp_path_factory.mktemp("reuse-holder-home")
    code, _, err = run_cli(home, "init")
    assert code == 0, err
    code, _, err = run_cli(home, "reuse", "signer")
    assert code == 0, err
    td = TrustDomain.open(str(home), actor="test")
    example = dict(Catalogue.load().get(BUSINESS).example)
    other = dict(example, 名称="示例市第二科技有限公司")
    first17 = "91350102MA0R3U5F1"
    other["统一社会信用代码"] = first17 + credit_code_check_character(first17)
    mine = td.licence_desk.issue(BUSINESS, example, issuer_code=DEMO_DEPARTMENT_CODE)
    theirs = td.licence_desk.issue(BUSINESS, other, issuer_code=DEMO_DEPARTMENT_CODE)
    credentials = HolderCredentials(td.db, td.audit)
    _, my_token = credentials.issue(mine.identifier, actor="test")
    _, their_token = credentials.issue(theirs.identifier, actor="test")
    client, client_token = ClientRegistry(td.db, td.audit).create("市公积金管理中心", [(BUSINESS, "data")],
                                                                  actor="test")
    public = create_app(home, VerifySettings(rate_per_minute=100_000, burst=100_000,
                                             upload_rate_per_minute=100_000, upload_burst=100_000))
    reuse = create_reuse_app(home, ReuseSettings(rate_per_minute=100_000, burst=100_000))
    yield {"td": td, "mine": mine, "example": example, "me": {"Authorization": f"Bearer {my_token}"},
           "them": {"Authorization": f"Bearer {their_token}"}, "client": client,
           "department": {"Authorization": f"Bearer {client_token}"},
           "public": TestClient(public), "reuse": TestClient(reuse)}
    reuse.state.domain.close()
    td.close()


def _until(**delta) -> str:
    return (datetime.now(UTC) + timedelta(**delta)).isoformat()


def _department_asks(world) -> dict:
    response = world["reuse"].post(f"/api/v1/reuse/licences/{world['mine'].identifier}",
                                   json={"purpose": PURPOSE}, headers=world["department"])
    assert response.status_code == 200, response.text
    return response.json()["body"]


def test_grant_use_usage_and_revocation_end_to_end(world):
    public = world["public"]
    assert _department_asks(world)["access"] == "metadata"
    made = public.post("/api/v1/holder/grants", headers=world["me"], json={
        "client_id": world["client"].id, "purpose": PURPOSE, "valid_until": _until(days=30),
        "fields": ["名称", "住所"]})
    assert made.status_code == 201, made.text
    grant = made.json()
    assert grant["state"] == "active" and grant["client_name"] == "市公积金管理中心"
    assert grant["licence_identifier"] == world["mine"].identifier and grant["fields"] == ["名称", "住所"]

    body = _department_asks(world)
    assert body["access"] == "data" and body["grant"]["id"] == grant["id"]
    assert body["data"] == {"名称": world["example"]["名称"], "住所": world["example"]["住所"]}

    listed = public.get("/api/v1/holder/grants", headers=world["me"]).json()["grants"]
    assert [g["id"] for g in listed if g["state"] == "active"] == [grant["id"]]
    usage = public.get("/api/v1/holder/usage", headers=world["me"]).json()["usage"]
    newest = usage[0]
    assert newest["response_id"] == body["response_id"] and newest["grant_id"] == grant["id"]
    assert newest["client_name"] == "市公积金管理中心" and newest["purpose"] == PURPOSE
    assert newest["fields"] == ["名称", "住所"] and newest["outcome"] == "served-data"
    assert any(u["outcome"] == "served-metadata" for u in usage)  # the ask before the grant is there too

    # the other holder sees none of it and cannot revoke it
    assert public.get("/api/v1/holder/grants", headers=world["them"]).json() == {"grants": []}
    assert public.get("/api/v1/holder/usage", headers=world["them"]).json() == {"usage": []}
    theirs = public.delete(f"/api/v1/holder/grants/{grant['id']}", headers=world["them"])
    unknown = public.delete("/api/v1/holder/grants/grant-000000000000000000000000", headers=world["me"])
    assert theirs.status_code == unknown.status_code == 404 and theirs.json() == unknown.json()
    assert _department_asks(world)["access"] == "data"

    revoked = public.delete(f"/api/v1/holder/grants/{grant['id']}", headers=world["me"])
    assert revoked.status_code == 200 and revoked.json()["state"] == "revoked"
    after = _department_asks(world)
    assert after["access"] == "metadata" and after["data"] is None


@pytest.mark.parametrize("change, words", [
    ({"client_id": "dept-0000000000000000"}, "no active department client"),
    ({"fields": ["没有这个字段"]}, "has no field"),
    ({"valid_until": "2020-01-01T00:00:00+00:00"}, "valid_until"),
    ({"valid_until": "2099-01-01T00:00:00+00:00"}, "valid_until"),
    ({"valid_until": "2030-01-01T00:00:00"}, "time zone"),
    ({"purpose": "  "}, "purpose"),
    ({"everything": True}, "malformed"),
])
def test_a_bad_grant_is_refused_and_changes_nothing(world, change, words):
    with world["td"].db.transaction() as s:
        before = len(list(s.scalars(select(HolderGrant.id))))
    body = {"client_id": world["client"].id, "purpose": PURPOSE, "valid_until": _until(days=1)} | change
    response = world["public"].post("/api/v1/holder/grants", headers=world["me"], json=body)
    assert response.status_code == 400 and words in response.json()["error"]["message"], response.text
    with world["td"].db.transaction() as s:
        assert len(list(s.scalars(select(HolderGrant.id)))) == before


@pytest.mark.parametrize("method, path", [("get", "/api/v1/holder/grants"), ("get", "/api/v1/holder/usage"),
                                          ("post", "/api/v1/holder/grants"),
                                          ("delete", "/api/v1/holder/grants/grant-x")])
def test_holder_endpoints_need_the_holder_credential(world, method, path):
    response = getattr(world["public"], method)(path, headers={"Authorization": "Bearer zyh_nope"})
    assert response.status_code == 401 and response.headers["www-authenticate"].startswith("Bearer")
