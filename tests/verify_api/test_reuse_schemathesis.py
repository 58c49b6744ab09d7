"""Schemathesis against the data-reuse app's OpenAPI document: whatever a department client sends,
authenticated or not, the service never answers with a server error."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from licences.reuse_clients import ClientRegistry
from support.cli import run_cli
from trust.domain import TrustDomain
from verify_api.reuse_app import ReuseSettings, create_reuse_app

BUSINESS = "11100000MB0000019L001"


@pytest.fixture(scope="module")
def reuse(tmp_path_factory):
    home = tmp_path_factory.mktemp("reuse-fuzz-home")
    code, _, err = run_cli(home, "init")
    assert code == 0, err
    code, _, err = run_cli(home, "reuse", "signer")
    assert code == 0, err
    td = TrustDomain.open(str(home), actor="test")
    try:
        _, token = ClientRegistry(td.db, td.audit).create("部门", [(BUSINESS, "data")], actor="test")
    finally:
        td.close()
    app = create_reuse_app(home, ReuseSettings(rate_per_minute=1e6, burst=1_000_000))
    yield app, token
    app.state.domain.close()


def test_no_server_error(reuse):
    app, token = reuse
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {op.path for op in operations} >= {"/api/v1/reuse/licences/{reference}", "/api/v1/reuse/grants"}
    for operation in operations:
        @given(operation.as_strategy())
        @settings(max_examples=50, deadline=None, suppress_health_check=list(HealthCheck))
        def fuzz(case):
            response = case.call(headers={"Authorization": f"Bearer {token}"})
            assert response.status_code < 500, response.text
            stranger = case.call(headers={"Authorization": "Bearer x"})
            assert stranger.status_code in (400, 401, 404, 405, 413), stranger.text

        fuzz()
