"""The data-reuse service holds one key and nothing else: the narrowed key store, the refusal to
serve without a signer certificate, and what a revoked signer does to answers it signed."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from hsm.soft import SoftKeyStore
from keys_dev.domain import DEMO_DEPARTMENT_CODE
from licences.reuse_clients import ClientRegistry
from support.cli import run_cli
from trust.domain import TrustDomain
from trust.reuse_signing import KEY_LABEL, ensure_data_signer, verify_reuse_response
from verify_api.records import KeyOperationRefused
from verify_api.reuse_app import OneKeyStore, ReuseSettings, create_reuse_app

BUSINESS = "11100000MB0000019L001"


def test_the_narrowed_key_store_signs_with_its_one_key_only(tmp_path):
    store = SoftKeyStore(tmp_path / "keys", b"passphrase", iterations=1000)
    store.generate(KEY_LABEL)
    store.generate("issuing-ca")
    narrowed = OneKeyStore(store)
    signature = narrowed.signer(KEY_LABEL).sign(b"body")
    narrowed.public_key(KEY_LABEL).verify(signature, b"body")
    assert narrowed.labels() == [KEY_LABEL] and narrowed.other_labels() == ["issuing-ca"]
    assert not narrowed.exists("issuing-ca")
    for act in (lambda: narrowed.signer("issuing-ca"), lambda: narrowed.public_key("issuing-ca"),
                lambda: narrowed.generate("x"), lambda: narrowed.rotate(KEY_LABEL),
                lambda: narrowed.sign("issuing-ca", b"x"), lambda: narrowed.destroy(KEY_LABEL, 1)):
        with pytest.raises(KeyOperationRefused):
            act()


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    path = tmp_path_factory.mktemp("reuse-keys-home")
    code, _, err = run_cli(path, "init")
    assert code == 0, err
    return path


def test_without_a_signer_certificate_nothing_is_served(home):
    code, _, err = run_cli(home, "serve-reuse")
    assert code == 5 and "zhengyin reuse signer" in err
    td = TrustDomain.open(str(home), actor="test")
    try:
        _, token = ClientRegistry(td.db, td.audit).create("部门", [(BUSINESS, "metadata")], actor="test")
    finally:
        td.close()
    app = create_reuse_app(home, ReuseSettings())
    try:
        response = TestClient(app).post("/api/v1/reuse/licences/x", json={"purpose": "核验"},
                                        headers={"Authorization": f"Bearer {token}"})
    finally:
        app.state.domain.close()
    assert response.status_code == 503 and response.json()["error"]["code"] == "signer_unavailable"


def test_a_revoked_signer_is_replaced_and_its_answers_stop_verifying(home):
    from datetime import UTC, datetime

    from licences.catalogue import Catalogue
    from licences.reuse import ReuseDesk, ReuseRequest
    from trust.reuse_signing import ResponseSigner
    from trust.trust_list import publish

    td = TrustDomain.open(str(home), actor="test")
    try:
        first = ensure_data_signer(td)
        assert ensure_data_signer(td).serial == first.serial  # usable: not issued again
        licence = td.licence_desk.issue(BUSINESS, dict(Catalogue.load().get(BUSINESS).example),
                                        issuer_code=DEMO_DEPARTMENT_CODE)
        client, _ = ClientRegistry(td.db, td.audit).create("部门", [(BUSINESS, "metadata")], actor="test")
        sign = ResponseSigner(td.keys.signer(KEY_LABEL, first.key_version), first.der)
        answer = ReuseDesk(td.db, td.audit).answer(client, ReuseRequest(licence.identifier, "核验"), sign=sign,
                                                   now=datetime.now(UTC))
        publish(td)
        before = json.loads((home / "public" / "trust-list.json").read_bytes())
        assert verify_reuse_response(answer, before).ok
        td.ca.revoke(first.serial, "key_compromise")
        second = ensure_data_signer(td)
        assert second.serial != first.serial and second.key_version == first.key_version + 1
        publish(td)
        after = json.loads((home / "public" / "trust-list.json").read_bytes())
        result = verify_reuse_response(answer, after)
        assert not result.ok and result.sub_indication == "REVOKED"
    finally:
        td.close()
