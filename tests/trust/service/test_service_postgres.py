"""The signing service on PostgreSQL: concurrent requests with one Idempotency-Key, sent over
HTTP to a home whose database is a fresh PostgreSQL schema, make exactly one licence."""

from __future__ import annotations

import threading

import pytest
from fastapi.testclient import TestClient

from ca.names import credit_code_check_character
from keys_dev.domain import DEMO_DEPARTMENT_CODE
from support.homes_on_databases import initialised_home
from trust.domain import TrustDomain
from trust.service.app import create_app
from trust.service.credentials import ApiKeyRegistry
from trust.service.settings import ServiceSettings

pytestmark = pytest.mark.postgres
BUSINESS = "11100000MB0000019L001"


@pytest.fixture(scope="module")
def pg_home(postgres_url, tmp_path_factory):
    with initialised_home(tmp_path_factory.mktemp("pg-service-home"), postgres_url) as home:
        yield home


def test_concurrent_issue_with_one_key_makes_one_licence_on_postgres(pg_home):
    td = TrustDomain.open(str(pg_home), actor="test:pg")
    try:
        assert td.db.dialect == "postgresql"
        known = [t.code for t in td.licence_desk.catalogue]
        token = (
            ApiKeyRegistry(td.db, td.audit, actor="test")
            .create(DEMO_DEPARTMENT_CODE, ["*"], ["issue"], "pg", known_types=known)
            .token
        )
        first17 = "91350102MA8TP0001"
        data = {
            "统一社会信用代码": first17 + credit_code_check_character(first17),
            "名称": "示例市测试有限公司",
            "类型": "有限责任公司（自然人投资或控股）",
            "法定代表人": "陈志远",
            "经营范围": "软件开发。",
            "注册资本": "100万元人民币",
            "成立日期": "2020-01-02",
            "营业期限": "2020年01月02日至长期",
            "住所": "示例省示例市鼓楼区1号",
            "登记机关": "示例市市场监督管理局",
        }
        app = create_app(
            lambda actor: TrustDomain.open(str(pg_home), actor=actor), settings=ServiceSettings()
        )
        results = []
        with TestClient(app) as client:

            def send() -> None:
                results.append(
                    client.post(
                        "/api/v1/licences",
                        json={"type": BUSINESS, "data": data},
                        headers={"Authorization": f"Bearer {token}", "Idempotency-Key": "pg-concurrent"},
                    )
                )

            threads = [threading.Thread(target=send) for _ in range(4)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        assert [r.status_code for r in results] == [201] * 4, [r.text for r in results]
        assert len({r.json()["identifier"] for r in results}) == 1
        rows = td.licences.licences(type_code=BUSINESS, limit=500)
        assert [r.licence_number for r in rows] == [data["统一社会信用代码"]]
    finally:
        td.close()
