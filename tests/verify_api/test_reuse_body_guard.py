"""Authentication before the body, and bounded bodies, on the holder endpoints of the public app
and on the data-reuse app: an anonymous caller hears 401 without its body being parsed (no 400
for malformed JSON, no 30 MB read), the rate-limit token is spent once per request, and an
authenticated body over the limit is refused — declared or chunked."""

from __future__ import annotations

import time

import pytest
from fastapi.testclient import TestClient

from keys_dev.domain import DEMO_DEPARTMENT_CODE
from licences.catalogue import Catalogue
from licences.holders import HolderCredentials
from licences.reuse_clients import ClientRegistry
from support.cli import run_cli
from trust.domain import TrustDomain
from verify_api.app import create_app
from verify_api.holder_auth import MAX_BODY as HOLDER_MAX
from verify_api.reuse_app import MAX_BODY as REUSE_MAX
from verify_api.reuse_app import ReuseSettings, create_reuse_app
from verify_api.settings import VerifySettings

BUSINESS = "11100000MB0000019L001"
JSON = {"content-type": "application/json"}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    home = tmp_path_factory.mktemp("body-guard-home")
    code, _, err = run_cli(home, "init")
    assert code == 0, err
    td = TrustDomain.open(str(home), actor="test")
    licence = td.licence_desk.issue(BUSINESS, dict(Catalogue.load().get(BUSINESS).example),
                                    issuer_code=DEMO_DEPARTMENT_CODE)
    _, holder_token = HolderCredentials(td.db, td.audit).issue(licence.identifier, actor="test")
    _, client_token = ClientRegistry(td.db, td.audit).create("部门", [(BUSINESS, "data")], actor="test")
    reuse = create_reuse_app(home, ReuseSettings(rate_per_minute=100_000, burst=100_000))
    yield {"home": home, "holder": {"Authorization": f"Bearer {holder_token}"},
           "client": {"Authorization": f"Bearer {client_token}"}, "reuse": TestClient(reuse),
           "licence": licence.identifier}
    reuse.state.domain.close()
    td.close()


def _public(world, burst: int = 100_000) -> TestClient:
    return TestClient(create_app(world["home"], VerifySettings(
        rate_per_minute=burst, burst=burst, upload_rate_per_minute=100_000, upload_burst=100_000)))


def _chunks(size: int):
    yield b'{"client_id": "dept-0000000000000000", "purpose": "'
    for _ in range(size // 4096):
        yield b"a" * 4096
    yield b'", "valid_until": "2030-01-01T00:00:00Z"}'


def test_an_anonymous_holder_request_is_401_before_its_body_is_parsed(world):
    public = _public(world)
    malformed = public.post("/api/v1/holder/grants", content=b"{not json", headers=JSON)
    assert malformed.status_code == 401 and malformed.json()["error"]["code"] == "holder_unauthenticated"
    assert malformed.headers["www-authenticate"].startswith("Bearer")
    assert malformed.headers["x-content-type-options"] == "nosniff"  # the app's headers still apply
    big = b'{"purpose": "' + b"a" * (30 * 1024 * 1024) + b'"}'
    started = time.monotonic()
    answer = public.post("/api/v1/holder/grants", content=big, headers=JSON)
    assert answer.status_code == 401 and time.monotonic() - started < 5
    # Authenticated, the same malformed body is the 400 it is.
    assert public.post("/api/v1/holder/grants", content=b"{not json",
                       headers={**JSON, **world["holder"]}).status_code == 400


def test_an_authenticated_holder_body_over_the_limit_is_413_declared_or_chunked(world):
    public = _public(world)
    big = b'{"purpose": "' + b"a" * (HOLDER_MAX + 10) + b'"}'
    declared = public.post("/api/v1/holder/grants", content=big, headers={**JSON, **world["holder"]})
    assert declared.status_code == 413 and declared.json()["error"]["code"] == "too_large"
    chunked = public.post("/api/v1/holder/grants", content=_chunks(HOLDER_MAX + 4096),
                          headers={**JSON, **world["holder"]})
    assert chunked.status_code == 413 and chunked.json()["error"]["code"] == "too_large"
    # Under the limit, chunked, it reaches the endpoint (an unknown client: the grant's own 400).
    small = public.post("/api/v1/holder/grants", content=_chunks(1024), headers={**JSON, **world["holder"]})
    assert small.status_code == 400 and small.json()["error"]["code"] == "grant_refused"


def test_the_rate_limit_is_spent_once_per_holder_request_and_before_the_body(world):
    public = _public(world, burst=3)
    answers = [public.get("/api/v1/holder/grants", headers=world["holder"]).status_code for _ in range(4)]
    assert answers == [200, 200, 200, 429]
    limited = public.post("/api/v1/holder/grants", content=b"{not json", headers=JSON)
    assert limited.status_code == 429 and "retry-after" in limited.headers


def test_the_reuse_app_authenticates_before_the_body_and_bounds_it(world):
    reuse, path = world["reuse"], f"/api/v1/reuse/licences/{world['licence']}"
    malformed = reuse.post(path, content=b"{not json", headers=JSON)
    assert malformed.status_code == 401 and malformed.json()["error"]["code"] == "unauthenticated"
    chunked_anonymous = reuse.post(path, content=_chunks(REUSE_MAX * 4), headers=JSON)
    assert chunked_anonymous.status_code == 401
    chunked = reuse.post(path, content=_chunks(REUSE_MAX + 4096), headers={**JSON, **world["client"]})
    assert chunked.status_code == 413 and chunked.json()["error"]["code"] == "too_large"
    assert reuse.post(path, content=b"{not json", headers={**JSON, **world["client"]}).status_code == 400
