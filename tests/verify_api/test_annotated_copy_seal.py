"""The data service's own seal (加注件 are sealed with it): `zhengyin reuse signer` makes it
after the certificate, through the seal office's audited steps, with the data-service-signer
certificate as its one signer — so the reuse service still holds exactly one key; re-running is a
no-op while both are usable; a rotated signer certificate gets a new seal; the reuse service
refuses copies (and only copies) while there is no usable seal; a run that stopped half-way is
finished by the next one (or its application withdrawn, when it no longer fits), never left
beside a second seal."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from ca.authority import certificate_of
from keys_dev.domain import DEMO_DEPARTMENT_CODE
from ledger.audit import AuditRecord
from licences.catalogue import Catalogue
from licences.reuse_clients import ClientRegistry
from licences.reuse_grants import GrantBook, GrantedLicence
from seals.lifecycle import SealRefused
from seals.office import SealOffice
from seals.registry import SealRecord
from seals.seal import read_seal
from support.cli import run_cli
from trust.data_seal import SEAL_PURPOSE, DataSealMissing, current_data_seal, data_seals, ensure_data_seal
from trust.domain import TrustDomain
from trust.reuse_signing import KEY_LABEL, current_data_signer
from verify_api.reuse_app import ReuseSettings, create_reuse_app

BUSINESS = "11100000MB0000019L001"
PURPOSE = "核验营业执照"


@pytest.fixture
def home(tmp_path):
    code, _, err = run_cli(tmp_path, "init")
    assert code == 0, err
    return tmp_path


def _signer(home) -> dict:
    code, out, err = run_cli(home, "reuse", "signer", "--json")
    assert code == 0, err
    return json.loads(out)


def test_the_signer_command_makes_the_seal_once_and_lists_the_signer_certificate(home):
    first = _signer(home)
    seal = first["seal"]
    assert seal["made"] is True and seal["status"] == "active" and seal["name"].endswith("数据共享专用章")
    again = _signer(home)
    assert again["serial"] == first["serial"] and again["seal"]["esid"] == seal["esid"]
    assert again["seal"]["made"] is False
    td = TrustDomain.open(str(home), actor="test")
    try:
        (record,) = data_seals(td)
        parsed = read_seal(record.der)
        certificate = td.ca.find(first["serial"])
        assert certificate.key_label == KEY_LABEL and certificate.profile == "data-service-signer"
        assert list(parsed.certificates) == [certificate.der]  # the one key's certificate, no other
        maker = td.seals.maker_certificate(record.made_at)
        assert parsed.maker_certificate == maker.der  # made by the home's seal maker
        assert record.valid_end <= certificate.not_after
        # registered: the verification trust of the home knows it
        assert record.der in td.verification_trust().seal_histories
        with td.db.transaction() as s:
            acts = [a.action for a in s.scalars(select(AuditRecord).where(
                AuditRecord.subject == f"seal:{record.es_id}").order_by(AuditRecord.seq))]
        assert acts == ["seal.apply", "seal.approve", "seal.make", "seal.activate"]
        assert sorted(td.keys.labels()) == sorted(set(td.keys.labels()))  # no key made for the seal
        assert not [label for label in td.keys.labels() if record.es_id in label]
    finally:
        td.close()


def test_a_rotated_signer_certificate_gets_a_new_seal(home):
    first = _signer(home)
    td = TrustDomain.open(str(home), actor="test")
    try:
        td.ca.revoke(first["serial"], "key_compromise")
    finally:
        td.close()
    second = _signer(home)
    assert second["serial"] != first["serial"] and second["key_version"] == first["key_version"] + 1
    assert second["seal"]["made"] is True and second["seal"]["esid"] != first["seal"]["esid"]
    td = TrustDomain.open(str(home), actor="test")
    try:
        identity = current_data_seal(td, current_data_signer(td))
        assert identity.es_id == second["seal"]["esid"]
        assert identity.signer_certificate == td.ca.find(second["serial"]).der
        assert [r.es_id for r in data_seals(td)] == [first["seal"]["esid"], second["seal"]["esid"]]
    finally:
        td.close()


def test_production_needs_the_organisations_credit_code(home, monkeypatch):
    td = TrustDomain.open(str(home), actor="test")
    try:
        from trust.reuse_signing import ensure_data_signer

        signer = ensure_data_signer(td)
        monkeypatch.setattr(type(td.settings), "production", property(lambda self: True))
        with pytest.raises(DataSealMissing, match="credit-code"):
            ensure_data_seal(td, signer)
        with pytest.raises(DataSealMissing, match="check character"):
            ensure_data_seal(td, signer, credit_code="12110000MB00000330")
        outcome = ensure_data_seal(td, signer, credit_code="12110000MB00000335", department="某市数据局")
        record = outcome.record
        assert outcome.made and record.credit_code == "12110000MB00000335" and record.name == "某市数据局数据共享专用章"
    finally:
        td.close()


def test_without_a_usable_seal_copies_are_refused_but_data_is_served(home):
    td = TrustDomain.open(str(home), actor="test")
    try:
        from trust.reuse_signing import ensure_data_signer

        ensure_data_signer(td)  # the certificate, but no seal yet
        licence = td.licence_desk.issue(BUSINESS, dict(Catalogue.load().get(BUSINESS).example),
                                        issuer_code=DEMO_DEPARTMENT_CODE)
        client, token = ClientRegistry(td.db, td.audit).create("部门", [(BUSINESS, "data")], actor="test")
        record = licence.record
        from datetime import UTC, datetime, timedelta

        GrantBook(td.db, td.audit).grant(
            GrantedLicence(record.type_code, record.licence_number, record.identifier,
                           list(Catalogue.load().get(BUSINESS).fields)),
            client.id, purpose=PURPOSE, valid_until=datetime.now(UTC) + timedelta(hours=1), fields=None,
            granted_by="cred-test")
    finally:
        td.close()
    app = create_reuse_app(home, ReuseSettings(signer_ttl=0))
    api = TestClient(app)
    try:
        def ask(**copy):
            body = {"purpose": PURPOSE, **({"annotated_copy": copy} if copy else {})}
            return api.post(f"/api/v1/reuse/licences/{licence.identifier}", json=body,
                            headers={"Authorization": f"Bearer {token}"})

        refused = ask(format="pdf")
        assert refused.status_code == 503 and refused.json()["error"]["code"] == "seal_unavailable"
        assert ask().status_code == 200  # the data itself does not need the seal
        assert _signer(home)["seal"]["made"] is True
        served = ask(format="pdf")
        assert served.status_code == 200 and "annotated_copy_content" in served.json()
        # a suspended seal seals nothing more
        td = TrustDomain.open(str(home), actor="test")
        try:
            td.seals.suspend(data_seals(td)[-1].es_id, "测试暂停")
        finally:
            td.close()
        assert ask(format="ofd").status_code == 503
    finally:
        app.state.domain.close()


def test_the_seal_signer_meets_what_the_seal_verifier_asks(home):
    """SEAL_SIGNING: digitalSignature or nonRepudiation, no EKU dedicating the key elsewhere."""
    from ca.validation import SEAL_SIGNING

    info = _signer(home)
    td = TrustDomain.open(str(home), actor="test")
    try:
        certificate = certificate_of(td.ca.find(info["serial"]))
    finally:
        td.close()
    assert set(certificate.key_usage_value.native) & SEAL_SIGNING.key_usage_any
    assert not (certificate.extended_key_usage_value and
                set(certificate.extended_key_usage_value.native) <= SEAL_SIGNING.excluded_usages)


# ---- a run that stopped half-way -----------------------------------------------------------------

def _data_seal_rows(home) -> list[tuple[str, str]]:
    """(esID, status) of every seal named as the data service's, oldest first."""
    td = TrustDomain.open(str(home), actor="test")
    try:
        with td.db.transaction() as s:
            rows = s.execute(select(SealRecord.es_id, SealRecord.status)
                             .where(SealRecord.name.endswith(SEAL_PURPOSE)).order_by(SealRecord.id)).all()
        return [tuple(r) for r in rows]
    finally:
        td.close()


def _acts(home, es_id: str) -> list[str]:
    td = TrustDomain.open(str(home), actor="test")
    try:
        with td.db.transaction() as s:
            return [a.action for a in s.scalars(select(AuditRecord).where(
                AuditRecord.subject == f"seal:{es_id}").order_by(AuditRecord.seq))]
    finally:
        td.close()


def _stop_at(monkeypatch, act: str) -> None:
    """The seal office refuses ``act`` (as when the seal maker's key is unavailable)."""
    def refuse(self, es_id, *args, **kwargs):
        raise SealRefused(f"{act} refused for the test")

    monkeypatch.setattr(SealOffice, act, refuse)


@pytest.mark.parametrize("stopped_before, left", [("approve", "applied"), ("make", "approved"),
                                                  ("activate", "made")])
def test_a_rerun_finishes_the_seal_an_abandoned_run_left(home, monkeypatch, stopped_before, left):
    with monkeypatch.context() as patch:
        _stop_at(patch, stopped_before)
        code, _, err = run_cli(home, "reuse", "signer", "--json")
    assert code == 5 and f"{stopped_before} refused for the test" in err
    ((es_id, status),) = _data_seal_rows(home)
    assert status == left
    info = _signer(home)
    assert info["seal"]["esid"] == es_id and info["seal"]["finished"] == es_id
    assert info["seal"]["made"] is True and info["seal"]["status"] == "active"
    assert _data_seal_rows(home) == [(es_id, "active")]  # finished, not made again beside it
    acts = _acts(home, es_id)
    assert [a for a in acts if a.startswith("seal.")] == \
        ["seal.apply", "seal.approve", "seal.make", "seal.activate"]
    assert ("reuse.data_seal_resumed" in acts) is (left != "made")  # activation alone is the office's act
    td = TrustDomain.open(str(home), actor="test")
    try:
        identity = current_data_seal(td, current_data_signer(td))
        assert identity.es_id == es_id and list(identity.seal.certificates) == [identity.signer_certificate]
    finally:
        td.close()
    again = _signer(home)  # and then it is a no-op
    assert (again["seal"]["esid"], again["seal"]["made"], again["seal"]["finished"]) == (es_id, False, None)


def test_an_abandoned_application_for_another_organisation_is_withdrawn(home, monkeypatch):
    with monkeypatch.context() as patch:
        _stop_at(patch, "make")
        assert run_cli(home, "reuse", "signer", "--department", "某市大数据局")[0] == 5
    ((abandoned, status),) = _data_seal_rows(home)
    assert status == "approved"
    code, out, err = run_cli(home, "reuse", "signer", "--department", "某市政务服务数据管理局", "--json")
    assert code == 0, err
    info = json.loads(out)
    seal = info["seal"]
    assert seal["name"] == "某市政务服务数据管理局数据共享专用章"
    assert seal["made"] is True and seal["finished"] is None and seal["superseded"] == [abandoned]
    assert seal["esid"] != abandoned
    assert _data_seal_rows(home) == [(abandoned, "revoked"), (seal["esid"], "active")]
    assert _acts(home, abandoned)[-1] == "seal.revoke"
    td = TrustDomain.open(str(home), actor="test")
    try:
        (event,) = [e for e in td.seals.events(abandoned) if e.to_status == "revoked"]
        assert seal["esid"] in event.reason and "never made" in event.reason
        assert not td.ca.find(info["serial"]).revoked  # nothing of the signer was touched
    finally:
        td.close()


def test_an_abandoned_application_too_short_for_today_is_not_finished(home, monkeypatch):
    """One whose validity no longer reaches 30 days past now (its days were set from a certificate
    that is ending) is withdrawn, and the seal made afresh for the current certificate."""
    with monkeypatch.context() as patch:
        _stop_at(patch, "make")
        assert run_cli(home, "reuse", "signer")[0] == 5
    ((abandoned, _),) = _data_seal_rows(home)
    td = TrustDomain.open(str(home), actor="test")
    try:
        with td.db.transaction() as s:
            s.scalars(select(SealRecord).where(SealRecord.es_id == abandoned)).one().valid_days = 20
    finally:
        td.close()
    seal = _signer(home)["seal"]
    assert seal["superseded"] == [abandoned] and seal["esid"] != abandoned and seal["finished"] is None
    assert [status for _, status in _data_seal_rows(home)] == ["revoked", "active"]


def test_a_suspended_data_seal_is_named_not_made_again(home):
    """The registry lists a certificate in one seal only: while the seal that lists the current
    certificate is suspended, the command says what to do and applies for nothing."""
    first = _signer(home)["seal"]["esid"]
    td = TrustDomain.open(str(home), actor="test")
    try:
        td.seals.suspend(first, "测试暂停")
    finally:
        td.close()
    code, _, err = run_cli(home, "reuse", "signer")
    assert code == 5 and f"listed by seal {first}" in err and "resume it" in err
    assert _data_seal_rows(home) == [(first, "suspended")]
    td = TrustDomain.open(str(home), actor="test")
    try:
        td.seals.resume(first)
    finally:
        td.close()
    assert _signer(home)["seal"] == {**_signer(home)["seal"], "esid": first, "made": False}
