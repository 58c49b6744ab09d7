"""The review's findings on the annotated copy (加注件), each a test that failed before its fix:
a copy never outlives the holder's grant or the licence (H1); the usage log names every field a
copy disclosed (H2); no copy of a licence that is not valid (M1); a copy whose grant was revoked
reads as withdrawn (M2a); a failed or unsealable copy is logged (L1); a grant revoked, or the
licence suspended, while the copy is made serves nothing (L2); the copy's client name is the
one it printed (L6); the reuse app's 500 carries its security headers (L7); the copy prints the
QR code the register kept at issuance, and a licence without it gets none (Q1); a glyph missing
from the client's name is said to be the name's (Q6).

The home, licences, signer and seal are test_annotated_copy_service's (one home per database).
"""

from __future__ import annotations

import base64
import io
import re
import uuid
from datetime import UTC, datetime, timedelta

import pikepdf
import pypdfium2
import pytest
import test_annotated_copy_service as copies
from fastapi.testclient import TestClient
from markupsafe import escape
from sqlalchemy import select, update

from hsm.sm3 import sm3
from keys_dev.domain import DEMO_DEPARTMENT_CODE
from ledger.audit import AuditRecord
from licences.annotated_copy import AnnotatedCopyError, CopySealUnavailable
from licences.catalogue import Catalogue
from licences.registry import LicenceRecord
from licences.reuse import (
    AnnotatedCopyLicenceNotValid,
    AnnotatedCopyNotGranted,
    AnnotatedCopyUnavailable,
    ReuseDesk,
    ReuseRequest,
)
from licences.reuse_clients import ClientRegistry, DepartmentClient
from licences.reuse_grants import GrantBook
from licences.states import expiry_instant
from licences.usage_log import UsageRecord
from pdf.writer import write_pdf
from verify_api import pages, texts
from verify_api.annotated_copies import copy_status
from verify_api.records import PublicRecords

BUSINESS, PURPOSE = copies.BUSINESS, copies.PURPOSE
FOOD = "11100000MB0000019L002"  # 食品经营许可证: its data states when it ends
home, world, td, api = copies.home, copies.world, copies.td, copies.api


def _z(moment: datetime) -> str:
    return moment.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def _rows(td, client_id: str) -> list[UsageRecord]:
    with td.db.transaction() as s:
        return list(s.scalars(select(UsageRecord).where(UsageRecord.client_id == client_id)
                              .order_by(UsageRecord.id)))


def _audit_of(td, response_id: str) -> list[AuditRecord]:
    with td.db.transaction() as s:
        return [a for a in s.scalars(select(AuditRecord).where(AuditRecord.action == "reuse.access"))
                if response_id in a.payload]


_TAILS = (f"{a}{b}" for a in "23456789" for b in "0123456789ABCDFGH")  # never world's "E1"


def _business(name: str) -> dict:
    """Business licence data with a licence number of its own in this module's home."""
    return copies._other_business(next(_TAILS), name)


_FOOD_NUMBERS = (f"JY2350103{n:07d}" for n in range(1, 1000))


def _fresh_licence(td, type_code: str = BUSINESS, name: str | None = None):
    """A licence of its own (a test may suspend or revoke it)."""
    if type_code == BUSINESS:
        data = _business(name or "示例市加注测试科技有限公司")
    else:
        data = dict(Catalogue.load().get(type_code).example, 许可证编号=next(_FOOD_NUMBERS))
    return td.licence_desk.issue(type_code, data, issuer_code=DEMO_DEPARTMENT_CODE)


def _desk(td) -> ReuseDesk:
    return ReuseDesk(td.db, td.audit, catalogue=td.catalogue)


def _plain_pdf(document, fmt, box, when) -> bytes:
    """A stand-in sealer for the desk tests that need no seal: the page as an unsigned PDF."""
    return write_pdf(document)


def _sign(content: bytes) -> dict:
    return {"algorithm": "test", "value": base64.b64encode(sm3(content)).decode()}


def _view(td, client_id: str):
    return ClientRegistry(td.db, td.audit).get(client_id)


# ---- H1: the copy's expiry is capped by the grant and the licence ---------------------------------

def test_a_copy_ends_with_the_grant_when_that_is_sooner(api, td, world):
    client_id, token, _ = copies._client(td, [(BUSINESS, "data")])
    grant = copies._grant(td, world["a"], client_id, minutes=5)
    answer = copies._ask(api, token, world["a"].identifier, copy={"format": "pdf", "valid_days": 90}).json()
    named = answer["body"]["annotated_copy"]
    until = grant.valid_until.astimezone(UTC).replace(microsecond=0)
    assert (named["expires"], named["expires_capped_by"]) == (_z(until), "grant")
    content = base64.b64decode(answer["annotated_copy_content"])
    with pikepdf.open(io.BytesIO(content)) as pdf:
        assert str(pdf.docinfo["/AnnotationExpires"]) == _z(until)
    text = re.sub(r"\s+", "", pypdfium2.PdfDocument(content)[0].get_textpage().get_text_range())
    assert until.astimezone(texts.CHINA_TIME).strftime("%Y-%m-%d%H:%M:%S") in text  # printed as signed
    (row,) = [r for r in _rows(td, client_id) if r.copy_sm3]
    assert row.copy_expires == until


def test_a_copy_ends_with_the_licence_when_that_is_sooner(td):
    licence = _fresh_licence(td, FOOD)
    last_day = licence.record.valid_until
    assert last_day is not None
    ends = expiry_instant(last_day)
    now = ends - timedelta(days=10)
    client_id, _, _ = copies._client(td, [(FOOD, "data")])
    copies._grant(td, licence, client_id, now=now, minutes=200 * 24 * 60)
    answer = _desk(td).answer(_view(td, client_id), ReuseRequest(licence.identifier, PURPOSE,
                              annotated_copy={"format": "pdf", "valid_days": 30}),
                              sign=_sign, seal_copy=_plain_pdf, now=now)
    named = answer["body"]["annotated_copy"]
    assert (named["expires"], named["expires_capped_by"]) == (_z(ends), "licence")


# ---- H2: the usage log names what the copy disclosed ------------------------------------------------

def test_a_copy_logs_every_field_whatever_fields_were_asked(api, td, world):
    client_id, token, _ = copies._client(td, [(BUSINESS, "data")])
    copies._grant(td, world["a"], client_id)
    body = copies._ask(api, token, world["a"].identifier, copy={"format": "pdf"}, fields=["名称"]).json()["body"]
    assert body["fields"] == ["名称"] and list(body["data"]) == ["名称"]  # the data as asked
    (row,) = _rows(td, client_id)
    assert row.fields == list(world["a"].record.data)  # ... but the copy prints them all
    (entry,) = _audit_of(td, body["response_id"])
    assert "annotated copy" in entry.payload and "名称" in entry.payload and "法定代表人" in entry.payload


# ---- M1: copies of valid licences only ---------------------------------------------------------------

def test_a_suspended_licence_gets_no_copy_but_its_data(api, td):
    licence = _fresh_licence(td)
    client_id, token, _ = copies._client(td, [(BUSINESS, "data")])
    copies._grant(td, licence, client_id)
    td.licences.suspend(licence.identifier, "暂停（测试）")
    refused = copies._ask(api, token, licence.identifier, copy={"format": "pdf"})
    assert refused.status_code == 409, refused.text[:300]
    error = refused.json()["error"]
    assert error["code"] == "annotated_copy_licence_not_valid" and "suspended" in error["message"]
    (row,) = _rows(td, client_id)
    assert (row.outcome, row.copy_sm3, row.fields) == ("annotated-copy-licence-not-valid", None, [])
    assert _audit_of(td, row.response_id)
    assert copies._ask(api, token, licence.identifier).status_code == 200  # data: today's rules


def test_an_expired_licence_gets_no_copy(td):
    licence = _fresh_licence(td, FOOD)
    after = expiry_instant(licence.record.valid_until) + timedelta(days=1)
    client_id, _, _ = copies._client(td, [(FOOD, "data")])
    copies._grant(td, licence, client_id, now=after - timedelta(days=2), minutes=10 * 24 * 60)
    with pytest.raises(AnnotatedCopyLicenceNotValid, match="expired"):
        _desk(td).answer(_view(td, client_id), ReuseRequest(licence.identifier, PURPOSE,
                         annotated_copy={"format": "pdf"}), sign=_sign, seal_copy=_plain_pdf, now=after)
    assert [r.outcome for r in _rows(td, client_id)] == ["annotated-copy-licence-not-valid"]


# ---- M2 (a): a copy whose grant was withdrawn is no longer good -------------------------------------

@pytest.fixture(scope="module")
def records(home, world):
    public = PublicRecords(home, trust_ttl=0)
    yield public
    public.close()


def test_a_revoked_grant_withdraws_the_copies_made_under_it(api, td, world, records):
    client_id, token, _ = copies._client(td, [(BUSINESS, "data")])
    grant = copies._grant(td, world["a"], client_id)
    answer = copies._ask(api, token, world["a"].identifier, copy={"format": "ofd", "valid_days": 7}).json()
    digest = answer["body"]["annotated_copy"]["sm3"]
    now = datetime.now(UTC)
    good = copy_status(records, digest, now)
    assert (good["expired"], good["withdrawn"], good["reason"]) == (False, False, None)
    GrantBook(td.db, td.audit).revoke(grant.id, [world["a"].identifier], revoked_by="cred-test")
    gone = copy_status(records, digest, datetime.now(UTC))
    assert (gone["expired"], gone["withdrawn"], gone["reason"]) == (True, True, "grant-revoked")
    assert gone["withdrawn_at"] is not None
    for lang in ("zh", "en"):  # the page says withdrawn, not expired
        words = texts.TEXTS[lang]
        page = pages.render("report.html", lang, checked_at=now, report=_report_of(td, answer), licence=None,
                            reason=None, annotated_copy=gone)
        assert str(escape(words["copy_withdrawn"])) in page and str(escape(words["copy_expired"])) not in page
    later = copy_status(records, digest, now + timedelta(days=8))
    assert (later["expired"], later["reason"]) == (True, "expired")


# ---- L1, L7: a copy that fails is logged; the 500 carries the headers ------------------------------

def test_a_copy_that_fails_to_seal_is_logged_and_the_500_is_secure(api, td, world, monkeypatch):
    import verify_api.reuse_app as reuse_app

    client_id, token, _ = copies._client(td, [(BUSINESS, "data")])
    copies._grant(td, world["a"], client_id)

    def broken(*args, **kwargs):
        raise RuntimeError("the signing device went away")

    monkeypatch.setattr(reuse_app, "seal_copy", broken)
    quiet = TestClient(api.app, raise_server_exceptions=False)
    response = quiet.post(f"/api/v1/reuse/licences/{world['a'].identifier}",
                          json={"purpose": PURPOSE, "annotated_copy": {"format": "pdf"}},
                          headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 500 and response.json()["error"]["code"] == "internal_error"
    assert "went away" not in response.text
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["cache-control"] == "no-store"
    (row,) = _rows(td, client_id)
    assert (row.outcome, row.copy_sm3, row.fields) == ("annotated-copy-failed", None, [])
    (entry,) = _audit_of(td, row.response_id)
    assert "RuntimeError" in entry.payload


@pytest.mark.parametrize(("error", "outcome"), [
    (CopySealUnavailable("no active data-service seal"), "seal-unavailable"),
    (AnnotatedCopyError("a text cannot be set"), "annotated-copy-failed"),
])
def test_a_desk_copy_that_cannot_be_sealed_is_logged_then_raised(td, world, error, outcome):
    client_id, _, _ = copies._client(td, [(BUSINESS, "data")])
    copies._grant(td, world["a"], client_id)

    def sealer(*args):
        raise error

    with pytest.raises(type(error)):
        _desk(td).answer(_view(td, client_id), ReuseRequest(world["a"].identifier, PURPOSE,
                         annotated_copy={"format": "ofd"}), sign=_sign, seal_copy=sealer)
    (row,) = _rows(td, client_id)
    assert (row.outcome, row.copy_sm3, row.grant_id is not None) == (outcome, None, True)
    assert _audit_of(td, row.response_id)


def test_annotated_copy_error_is_a_server_fault_not_a_bad_request():
    assert not issubclass(AnnotatedCopyError, ValueError) and issubclass(AnnotatedCopyError, RuntimeError)


# ---- L2: the grant (and licence) read again before the copy is served -------------------------------

def test_a_grant_revoked_while_the_copy_is_sealed_serves_nothing(td):
    licence = _fresh_licence(td)
    client_id, _, _ = copies._client(td, [(BUSINESS, "data")])
    grant = copies._grant(td, licence, client_id)

    def sealer(document, fmt, box, when):
        GrantBook(td.db, td.audit).revoke(grant.id, [licence.identifier], revoked_by="cred-test")
        return write_pdf(document)

    with pytest.raises(AnnotatedCopyNotGranted, match="revoked or ended while the copy was made"):
        _desk(td).answer(_view(td, client_id), ReuseRequest(licence.identifier, PURPOSE,
                         annotated_copy={"format": "pdf"}), sign=_sign, seal_copy=sealer)
    (row,) = _rows(td, client_id)  # the served row was rolled back: only the refusal is left
    assert (row.outcome, row.copy_sm3, row.fields) == ("annotated-copy-not-granted", None, [])
    (entry,) = _audit_of(td, row.response_id)
    assert "while the copy was made" in entry.payload


def test_a_licence_suspended_while_the_copy_is_sealed_serves_nothing(td):
    licence = _fresh_licence(td)
    client_id, _, _ = copies._client(td, [(BUSINESS, "data")])
    copies._grant(td, licence, client_id)

    def sealer(document, fmt, box, when):
        td.licences.suspend(licence.identifier, "暂停（测试）")
        return write_pdf(document)

    with pytest.raises(AnnotatedCopyLicenceNotValid):
        _desk(td).answer(_view(td, client_id), ReuseRequest(licence.identifier, PURPOSE,
                         annotated_copy={"format": "pdf"}), sign=_sign, seal_copy=sealer)
    assert [(r.outcome, r.copy_sm3) for r in _rows(td, client_id)] == [("annotated-copy-licence-not-valid", None)]


# ---- L6: the name the copy printed ---------------------------------------------------------------

def test_the_public_service_names_the_client_as_the_copy_printed_it(api, td, world, records):
    client_id, token, name = copies._client(td, [(BUSINESS, "data")])
    copies._grant(td, world["a"], client_id)
    answer = copies._ask(api, token, world["a"].identifier, copy={"format": "pdf"}).json()
    with td.db.transaction() as s:
        s.execute(update(DepartmentClient).where(DepartmentClient.id == client_id).values(name="改名后的单位"))
    status = copy_status(records, answer["body"]["annotated_copy"]["sm3"], datetime.now(UTC))
    assert status["client_name"] == name
    (row,) = _rows(td, client_id)
    assert row.copy_client_name == name and row.as_dict()["annotated_copy"]["client_name"] == name


# ---- Q1: the QR payload kept at issuance ------------------------------------------------------------

def test_issuance_keeps_the_qr_payload_on_every_path(td):
    from trust.batch import _record_faults

    issued = _fresh_licence(td)
    assert issued.record.qr_payload == issued.qr
    changed = td.licence_desk.change(issued.identifier, dict(issued.record.data, 住所="示例省示例市新地址1号"),
                                     issuer_code=DEMO_DEPARTMENT_CODE, reason="住所变更（测试）")
    assert changed.record.qr_payload == changed.qr and changed.qr != issued.qr
    data = _business("批量转换测试有限公司")
    (group,) = td.licence_desk.issue_group(BUSINESS, [(f"G-{uuid.uuid4().hex[:10]}", data)],
                                           issuer_code=DEMO_DEPARTMENT_CODE, faults=_record_faults())
    assert group.record.qr_payload == group.qr
    with td.db.transaction() as s:
        stored = dict(s.execute(select(LicenceRecord.identifier, LicenceRecord.qr_payload).where(
            LicenceRecord.identifier.in_([issued.identifier, changed.identifier, group.identifier]))).all())
    assert stored == {issued.identifier: issued.qr, changed.identifier: changed.qr, group.identifier: group.qr}


def test_a_licence_recorded_without_its_qr_payload_gets_no_copy(api, td):
    licence = _fresh_licence(td)
    with td.db.transaction() as s:  # as a licence recorded before revision 0012 is
        s.execute(update(LicenceRecord).where(LicenceRecord.identifier == licence.identifier)
                  .values(qr_payload=None))
    client_id, token, _ = copies._client(td, [(BUSINESS, "data")])
    copies._grant(td, licence, client_id)
    refused = copies._ask(api, token, licence.identifier, copy={"format": "pdf"})
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "annotated_copy_unavailable"
    assert "before annotated copies" in refused.json()["error"]["message"]
    (row,) = _rows(td, client_id)
    assert (row.outcome, row.copy_sm3) == ("annotated-copy-no-qr-payload", None)
    assert copies._ask(api, token, licence.identifier).status_code == 200
    with pytest.raises(AnnotatedCopyUnavailable):
        _desk(td).answer(_view(td, client_id), ReuseRequest(licence.identifier, PURPOSE,
                         annotated_copy={"format": "pdf"}), sign=_sign, seal_copy=_plain_pdf)


def test_the_decoder_is_gone():
    import licences.annotated_copy as module

    assert not hasattr(module, "qr_payload_of") and not hasattr(module, "_decode_symbol")


# ---- Q6: which text cannot be printed ---------------------------------------------------------------

def test_a_glyph_missing_from_the_clients_name_is_named_as_the_names(api, td, world):
    from licences.annotated_copy import unprintable

    odd = "\U0001F600"  # an emoji: no CJK document font has it
    assert unprintable(odd)
    _, token, _ = copies._client(td, [(BUSINESS, "data")], name=f"市住房公积金管理中心{odd}")
    response = copies._ask(api, token, world["a"].identifier, copy={"format": "pdf"})
    assert response.status_code == 400
    message = response.json()["error"]["message"]
    assert "client's name" in message and "purpose" not in message
    _, plain, _ = copies._client(td, [(BUSINESS, "data")])
    message = copies._ask(api, plain, world["a"].identifier, purpose=f"核验{odd}",
                          copy={"format": "pdf"}).json()["error"]["message"]
    assert "purpose" in message and "client's name" not in message


def _report_of(td, answer):
    """The engine's report on the copy an answer carried."""
    from trust.validation import validate_document

    content = base64.b64decode(answer["annotated_copy_content"])
    return validate_document(content, td.verification_trust(), datetime.now(UTC))
