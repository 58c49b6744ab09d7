"""The OpenAPI documents say how to authenticate: the holder endpoints of the public app take a
holder credential, the data-reuse service's endpoints a department client's token — both as
HTTP bearer schemes — and the public app's anonymous endpoints name none."""

from __future__ import annotations

import pytest

from support.cli import run_cli
from verify_api.app import create_app
from verify_api.reuse_app import create_reuse_app


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    path = tmp_path_factory.mktemp("openapi-bearer-home")
    code, _, err = run_cli(path, "init")
    assert code == 0, err
    return path


def _secured(document: dict) -> dict[str, list]:
    return {f"{method.upper()} {path}": operation.get("security", [])
            for path, operations in document["paths"].items() for method, operation in operations.items()}


def test_holder_endpoints_declare_the_holder_credential_and_no_other_does(home):
    document = create_app(home).openapi()
    scheme = document["components"]["securitySchemes"]["holderCredential"]
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")
    secured = _secured(document)
    holder = {label for label in secured if " /api/v1/holder/" in label}
    assert {"POST /api/v1/holder/presentations", "GET /api/v1/holder/grants", "GET /api/v1/holder/usage"} <= holder
    assert all(secured[label] == [{"holderCredential": []}] for label in holder)
    assert all(not secured[label] for label in secured if label not in holder)  # QR page, upload, status …


def test_reuse_endpoints_declare_the_department_client_token(home):
    document = create_reuse_app(home).openapi()
    scheme = document["components"]["securitySchemes"]["departmentClient"]
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")
    secured = _secured(document)
    assert secured["POST /api/v1/reuse/licences/{reference}"] == [{"departmentClient": []}]
    assert secured["GET /api/v1/reuse/grants"] == [{"departmentClient": []}]
