"""Schemathesis against the public service's own OpenAPI document (and the internal signing
service's, with a department's API key), in process (ASGI): every
operation, with generated valid and invalid input, must never answer a server error (5xx). The
home is a real one — a licence issued, the trust list, CRLs and OCSP responses published — so the
look-ups reach the register rather than stopping at "not found" for want of data. Examples are
bounded so the whole run stays within about a minute."""

from __future__ import annotations

import json

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

from support.cli import issue_example, run_cli
from verify_api.app import create_app
from verify_api.settings import VerifySettings

pytestmark = pytest.mark.slow

EXAMPLES = 30


@schemathesis.serializer("application/ocsp-request")
def _ocsp_request_body(ctx, value) -> bytes:
    """The generated body as raw bytes (POST /ocsp takes DER, whatever the generator made)."""
    if isinstance(value, bytes):
        return value
    return value.encode() if isinstance(value, str) else json.dumps(value).encode()


@pytest.fixture(scope="module")
def verify_schema(tmp_path_factory):
    home = tmp_path_factory.mktemp("schemathesis-home")
    code, _, err = run_cli(home, "init")
    assert code == 0, err
    issue_example(home, "营业执照", home / "issued")
    code, _, err = run_cli(home, "publish")
    assert code == 0, err
    many = 10**6
    app = create_app(home, VerifySettings(rate_per_minute=many, burst=many, upload_rate_per_minute=many,
                                          upload_burst=many, max_upload=256 * 1024))
    return schemathesis.openapi.from_asgi("/openapi.json", app)


def _exercise(operation, mode: GenerationMode, examples: int, found: list[str],
              headers: dict[str, str] | None = None) -> None:
    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=examples, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    def exercise(case):
        response = case.call(headers=headers)
        if response.status_code >= 500:
            found.append(f"{case.method} {case.formatted_path} ({mode.value}): {response.status_code} "
                         f"{response.text[:200]}")

    try:
        exercise()
    except Unsatisfiable:  # nothing to make invalid (an operation without parameters or body)
        assert mode is GenerationMode.NEGATIVE


def _server_errors(schema, examples: int) -> list[str]:
    """Every operation, positive (valid) and negative (invalid) input: the 5xx answers seen."""
    found: list[str] = []
    for result in schema.get_all_operations():
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            _exercise(result.ok(), mode, examples, found)
    return found


def test_no_server_error_anywhere(verify_schema):
    operations = [r.ok().label for r in verify_schema.get_all_operations()]
    assert "POST /ocsp" in operations and "POST /api/v1/verify" in operations and len(operations) >= 10
    assert _server_errors(verify_schema, EXAMPLES) == []


def test_the_run_would_catch_a_server_error(verify_schema, monkeypatch):
    """The same run with the register failing inside: the 500s are found (the check can fail)."""
    def broken(*args, **kwargs):
        raise RuntimeError("the register failed")

    import verify_api.app

    monkeypatch.setattr(verify_api.app, "check_qr", broken)
    only_qr = verify_schema.include(path_regex="^/V/")
    assert [r.ok().label for r in only_qr.get_all_operations()] == ["GET /V/{payload}"]
    # in process the test client re-raises what the app answered 500 for; over HTTP it is a 500
    with pytest.raises(RuntimeError, match="the register failed"):
        _server_errors(only_qr, 5)


# ---- the internal signing service (`zhengyin serve`), with a department's API key -----------------

SERVICE_EXAMPLES = 12


@pytest.fixture(scope="module")
def service_schema(tmp_path_factory):
    from trust.domain import TrustDomain
    from trust.service.app import create_app as create_service
    from trust.service.credentials import ApiKeyRegistry
    from trust.service.settings import MIB, ServiceSettings

    home = tmp_path_factory.mktemp("schemathesis-service-home")
    code, _, err = run_cli(home, "init")
    assert code == 0, err
    td = TrustDomain.open(str(home), actor="test:schemathesis")
    try:
        from keys_dev.domain import DEMO_DEPARTMENT_CODE

        registry = ApiKeyRegistry(td.db, td.audit, actor="test:keys")
        known = [t.code for t in td.licence_desk.catalogue]
        token = registry.create(DEMO_DEPARTMENT_CODE, ("*",), ["issue", "read", "change", "renew", "suspend",
                                "resume", "revoke", "cancel", "seal", "list"], "schemathesis",
                                known_types=known).token
    finally:
        td.close()
    app = create_service(lambda actor: TrustDomain.open(str(home), actor=actor),
                         settings=ServiceSettings(max_json_bytes=MIB, max_upload_bytes=2 * MIB))
    return schemathesis.openapi.from_asgi("/openapi.json", app), token


def test_the_signing_service_answers_no_server_error_either(service_schema):
    schema, token = service_schema
    found: list[str] = []
    for result in schema.get_all_operations():
        operation = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            _exercise(operation, mode, SERVICE_EXAMPLES, found, {"Authorization": f"Bearer {token}"})
    assert found == []
