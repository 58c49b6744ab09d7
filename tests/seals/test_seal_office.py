"""The seal office on both databases: lifecycle, history and audit, signing identities, seal codes."""

from __future__ import annotations

import subprocess
from datetime import timedelta

import pytest
from asn1crypto import x509
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError, IntegrityError

import seals.office as office_module
from ca.authority import CertificateAuthority, utc_now
from ca.names import credit_code_check_character, credit_code_of, subject_name
from ca.signatures import certificate_public_key
from hsm.signature import decode_bit_string_signature
from hsm.soft import SoftKeyStore
from ledger.audit import AuditLog
from seals.lifecycle import SealNotFound, SealNotUsable, SealRefused, SealRequestError, SealStateError
from seals.office import SealOffice, signer_label
from seals.registry import SealEvent, SealRecord
from seals.seal import read_seal
from seals.verification import maker_signature_check

CODE = "11350100MB0000000Y"  # area code 350100
DEPARTMENT = "示例市市场监督管理局"


def _credit_code(first17: str) -> str:
    return first17 + credit_code_check_character(first17)


@pytest.fixture
def office(db, tmp_path) -> SealOffice:
    keys = SoftKeyStore(tmp_path / "keys", b"test passphrase", iterations=1000)
    for label in ("root", "issuing", "maker"):
        keys.generate(label)
    audit = AuditLog(db)
    ca = CertificateAuthority(db, keys, audit, actor="ca-officer")
    ca.create_root("root", subject_name("Test Root CA", organisation="证印测试"))
    ca.create_issuing("issuing", subject_name("Test Issuing CA", organisation="证印测试"))
    ca.issue("seal-maker", subject_name("证印测试制章人", organisation="证印测试"), key_label="maker")
    return SealOffice(db, keys, ca, audit, actor="seal-officer")


def _active(office: SealOffice, kind: str = "licence", **kwargs) -> SealRecord:
    record = office.apply(DEPARTMENT, CODE, kind, **kwargs)
    office.approve(record.es_id)
    office.make(record.es_id)
    return office.activate(record.es_id)


def _history(office: SealOffice, es_id: str) -> list[tuple[str | None, str]]:
    return [(e.from_status, e.to_status) for e in office.events(es_id)]


def test_full_lifecycle_with_history_and_audit(office):
    record = office.apply(DEPARTMENT, CODE, "licence")
    assert record.es_id == "35010000000001" and record.status == "applied"
    assert (record.seal_type, record.kind) == (1, "licence")
    assert record.name == "示例市市场监督管理局电子证照专用章"
    office.approve(record.es_id, reason="reviewed the application")
    made = office.make(record.es_id)
    assert made.status == "made" and made.der is not None and len(made.certificates) == 1
    office.activate(record.es_id)
    office.suspend(record.es_id, "seal holder on leave")
    office.resume(record.es_id)
    revoked = office.revoke(record.es_id, "department merged")
    assert revoked.status == "revoked" and revoked.status_reason == "department merged"

    assert _history(office, record.es_id) == [
        (None, "applied"), ("applied", "approved"), ("approved", "made"), ("made", "active"),
        ("active", "suspended"), ("suspended", "active"), ("active", "revoked")]
    events = office.events(record.es_id)
    assert {e.actor for e in events} == {"seal-officer"}
    assert events[1].reason == "reviewed the application" and events[4].reason == "seal holder on leave"
    acts = [e.action for e in reversed(office.audit.entries(subject=f"seal:{record.es_id}"))]
    assert acts == ["seal.apply", "seal.approve", "seal.make", "seal.activate", "seal.suspend",
                    "seal.resume", "seal.revoke"]
    make_entry = office.audit.entries(action="seal.make")[0]
    assert make_entry.details["certificates"] == [made.certificates[0].serial]
    assert make_entry.details["fingerprint_sm3"] == made.fingerprint
    assert office.audit.verify().ok
    # revoking the seal revoked its signer certificate through the CA
    certificate = office.ca.find(made.certificates[0].serial)
    assert certificate.revoked and certificate.revocation_reason == "cessation_of_operation"
    assert office.audit.entries(action="ca.revoke", subject=f"cert:{certificate.serial}")


def test_made_seal_reads_back_and_its_maker_signature_verifies(office):
    record = _active(office, "licence")
    seal = read_seal(record.der)
    signer = record.certificates[0]
    assert (seal.layout, seal.es_id, seal.seal_type, seal.name) == ("v4", record.es_id, 1, record.name)
    assert seal.cert_list_type == 1 and seal.certificates == (signer.der,)
    assert (seal.valid_start, seal.valid_end) == (record.valid_start, record.valid_end)
    assert record.valid_end - record.valid_start == timedelta(days=3 * 365)
    assert seal.picture.type == "PNG" and seal.picture.data.startswith(b"\x89PNG")
    assert (seal.picture.width_mm, seal.picture.height_mm) == (40, 40) == (record.width_mm, record.height_mm)
    assert maker_signature_check(seal).ok
    cert = x509.Certificate.load(signer.der)
    assert signer.profile == "department-signer" and signer.key_label == signer_label(record.es_id)
    assert credit_code_of(cert.subject) == CODE
    assert cert.subject.native["common_name"] == record.name
    assert cert.subject.native["organization_name"] == DEPARTMENT
    assert certificate_public_key(cert) == office.keys.public_key(signer_label(record.es_id))
    assert (signer.not_before, signer.not_after) == (record.valid_start, record.valid_end)


@pytest.mark.interop
def test_made_seal_maker_signature_verifies_with_openssl(office, tmp_path):
    seal = read_seal(_active(office).der)
    (tmp_path / "maker.der").write_bytes(seal.maker_certificate)
    (tmp_path / "signed").write_bytes(seal.maker_signed_bytes)
    (tmp_path / "sig").write_bytes(seal.maker_signature.payload)
    subprocess.run(["openssl", "x509", "-inform", "DER", "-in", str(tmp_path / "maker.der"), "-pubkey",
                    "-noout", "-out", str(tmp_path / "maker.pem")],
                   check=True, capture_output=True, timeout=30)

    def verifies(data_file: str) -> bool:
        return subprocess.run(
            ["openssl", "pkeyutl", "-verify", "-pubin", "-inkey", str(tmp_path / "maker.pem"), "-rawin",
             "-in", str(tmp_path / data_file), "-sigfile", str(tmp_path / "sig"), "-digest", "sm3",
             "-pkeyopt", "distid:1234567812345678"], capture_output=True, timeout=30).returncode == 0

    assert verifies("signed")
    tampered = seal.maker_signed_bytes.replace(seal.name.encode(), b"X" * len(seal.name.encode()), 1)
    assert tampered != seal.maker_signed_bytes
    (tmp_path / "tampered").write_bytes(tampered)
    assert not verifies("tampered")


@pytest.mark.parametrize("kind, holder, seal_type, size, name", [
    ("official", None, 1, (42, 42), "示例市市场监督管理局公章"),
    ("finance", None, 1, (45, 30), "示例市市场监督管理局财务专用章"),
    ("legal_representative", "张三", 2, (22, 22), "张三印"),
])
def test_each_kind_gets_its_type_name_and_picture(office, kind, holder, seal_type, size, name):
    record = _active(office, kind, holder=holder)
    seal = read_seal(record.der)
    assert (seal.seal_type, seal.name, record.holder) == (seal_type, name, holder)
    assert (seal.picture.width_mm, seal.picture.height_mm) == size


@pytest.mark.parametrize("steps, act", [
    ((), "resume"), ((), "activate"), (("approve",), "approve"), ((), "make"),
    (("approve", "make", "activate"), "resume"), (("approve", "make", "activate"), "make"),
    (("approve", "make"), "suspend"), (("revoke",), "revoke"), (("revoke",), "approve"),
    (("approve", "make", "activate", "revoke"), "resume"),
])
def test_illegal_transitions_are_refused_and_change_nothing(office, steps, act):
    es_id = office.apply(DEPARTMENT, CODE, "official").es_id
    for step in steps:
        getattr(office, step)(es_id, **({"reason": "test"} if step in ("revoke", "suspend") else {}))
    before, history = office.find(es_id).status, _history(office, es_id)
    audit_entries = office.audit.verify().entries
    with pytest.raises(SealStateError) as caught:
        getattr(office, act)(es_id, **({"reason": "test"} if act in ("revoke", "suspend") else {}))
    assert (caught.value.es_id, caught.value.status, caught.value.act) == (es_id, before, act)
    assert es_id in str(caught.value) and before in str(caught.value) and act in str(caught.value)
    assert office.find(es_id).status == before and _history(office, es_id) == history
    assert office.audit.verify().entries == audit_entries


def test_signing_identity_of_an_active_seal(office):
    record = _active(office)
    identity = office.signing_identity(record.es_id)
    assert identity.seal_der == record.der and identity.seal.es_id == record.es_id == identity.es_id
    assert identity.signer_certificate == record.certificates[0].der
    assert identity.signer_certificate in identity.seal.certificates
    issuing, root = office.ca.chain()
    assert identity.chain == [issuing.dump(), root.dump()]
    key = certificate_public_key(x509.Certificate.load(identity.signer_certificate))
    assert identity.signer.public_key() == key
    key.verify(decode_bit_string_signature(identity.signer.sign(b"document")), b"document")


def _not_usable(office, es_id, reason, at=None) -> None:
    with pytest.raises(SealNotUsable) as caught:
        office.signing_identity(es_id, at)
    assert caught.value.reason == reason and es_id in str(caught.value)


@pytest.mark.parametrize("steps, reason", [
    ((), "not-active"), (("approve",), "not-active"), (("approve", "make"), "not-active"),
    (("approve", "make", "activate", "suspend"), "suspended"),
    (("approve", "make", "activate", "revoke"), "revoked"),
    (("revoke",), "revoked"),
])
def test_signing_identity_refused_in_every_state_but_active(office, steps, reason):
    es_id = office.apply(DEPARTMENT, CODE, "licence").es_id
    for step in steps:
        getattr(office, step)(es_id, **({"reason": "test"} if step in ("revoke", "suspend") else {}))
    _not_usable(office, es_id, reason)


def test_signing_identity_refused_outside_validity(office):
    record = _active(office, valid_days=10)
    _not_usable(office, record.es_id, "not-yet-valid", record.valid_start - timedelta(seconds=1))
    _not_usable(office, record.es_id, "expired", record.valid_end + timedelta(seconds=1))
    assert office.signing_identity(record.es_id, record.valid_end).seal.es_id == record.es_id
    later = office.apply(DEPARTMENT, CODE, "contract", valid_from=utc_now() + timedelta(days=3))
    office.approve(later.es_id)
    made = office.make(later.es_id)
    assert made.valid_start > utc_now() + timedelta(days=2)
    office.activate(later.es_id)
    _not_usable(office, later.es_id, "not-yet-valid")
    identity = office.signing_identity(later.es_id, made.valid_start + timedelta(days=1))
    assert identity.seal.es_id == later.es_id


def test_signing_identity_refused_for_a_revoked_certificate_or_disabled_key(office):
    record = _active(office)
    office.keys.disable(signer_label(record.es_id), 1)
    _not_usable(office, record.es_id, "key-unavailable")
    office.keys.enable(signer_label(record.es_id), 1)
    office.signing_identity(record.es_id)
    office.ca.revoke(record.certificates[0].serial, "key_compromise")
    _not_usable(office, record.es_id, "certificate-revoked")


def test_unknown_seal(office):
    for call in (office.find, office.signing_identity, office.activate):
        with pytest.raises(SealNotFound, match="99999900000001"):
            call("99999900000001")


def test_expiry_is_computed_and_recorded_by_the_sweep(office, monkeypatch):
    short = _active(office, valid_days=1)
    lasting = _active(office, "official")
    suspended = _active(office, "contract", valid_days=2)
    office.suspend(suspended.es_id, "audit")
    future = utc_now() + timedelta(days=3)
    assert short.status_at(future) == "expired" and lasting.status_at(future) == "active"
    assert [r.es_id for r in office.seals(status="expired", now=future)] == [short.es_id, suspended.es_id]
    assert [r.es_id for r in office.seals(status="active", now=future)] == [lasting.es_id]
    assert office.seals(status="expired") == []

    expired = office.expire_due(future)
    assert [r.es_id for r in expired] == [short.es_id, suspended.es_id]
    assert office.find(short.es_id).status == "expired"
    assert _history(office, suspended.es_id)[-1] == ("suspended", "expired")
    assert len(office.audit.entries(action="seal.expire")) == 2
    assert office.expire_due(future) == []
    _not_usable(office, short.es_id, "expired")
    with pytest.raises(SealStateError, match="expired"):
        office.resume(suspended.es_id)
    office.revoke(short.es_id, "found compromised after expiry", certificate_reason="key_compromise")
    assert _history(office, short.es_id)[-1] == ("expired", "revoked")
    assert office.ca.find(short.certificates[0].serial).revocation_reason == "key_compromise"
    assert office.audit.verify().ok


def test_a_seal_expired_by_the_clock_gets_the_expiry_recorded_before_a_revocation(office, monkeypatch):
    record = _active(office, valid_days=1)
    future = utc_now() + timedelta(days=2)
    monkeypatch.setattr(office_module, "utc_now", lambda: future)
    with pytest.raises(SealStateError, match="is expired"):
        office.suspend(record.es_id, "too late")
    office.revoke(record.es_id, "withdrawn")
    assert _history(office, record.es_id)[-2:] == [("active", "expired"), ("expired", "revoked")]


def test_seal_codes_are_per_area_unique_and_never_reused(office):
    first = office.apply(DEPARTMENT, CODE, "official")
    second = office.apply(DEPARTMENT, CODE, "licence")
    office.revoke(second.es_id, "applied by mistake")
    third = office.apply(DEPARTMENT, CODE, "licence")
    other_code = _credit_code("12110108MB0000000")
    other = office.apply("北京市海淀区某局", other_code, "official")
    assert [first.es_id, second.es_id, third.es_id] == ["35010000000001", "35010000000002", "35010000000003"]
    assert other.es_id == "11010800000001" and len(other.es_id) == 14
    with pytest.raises(IntegrityError), office.db.transaction() as s:
        s.add(SealRecord(**{c: getattr(first, c) for c in (
            "es_id", "kind", "seal_type", "name", "department", "credit_code", "status", "status_changed_at",
            "valid_days", "signer_count", "applied_at")}, area_code="350100", serial=99))
    assert len(office.seals()) == 4


def test_filters(office):
    licence = _active(office, "licence")
    official = office.apply(DEPARTMENT, CODE, "official")
    other = office.apply("北京市海淀区某局", _credit_code("12110108MB0000000"), "official")
    assert [r.es_id for r in office.seals(CODE)] == [licence.es_id, official.es_id]
    assert [r.es_id for r in office.seals(status="applied")] == [official.es_id, other.es_id]
    assert [r.es_id for r in office.seals(CODE, "active", kind="licence")] == [licence.es_id]
    with pytest.raises(SealRequestError, match="unknown seal status"):
        office.seals(status="lost")


@pytest.mark.parametrize("args, kwargs, message", [
    ((DEPARTMENT, CODE, "stamp"), {}, "unknown seal kind"),
    ((DEPARTMENT, "11350100MB0000000X", "official"), {}, "check character"),
    ((DEPARTMENT, "1135010"), {"kind": "official"}, "18 characters"),
    ((DEPARTMENT, "9135AB00MA0000000", "official"), {}, "18 characters"),
    (("", CODE, "official"), {}, "department name"),
    (("某" * 41, CODE, "official"), {}, "at most 40"),
    ((DEPARTMENT, CODE, "official"), {"valid_days": 0}, "valid_days"),
    ((DEPARTMENT, CODE, "official"), {"valid_days": 5000}, "valid_days"),
    ((DEPARTMENT, CODE, "official"), {"signers": 9}, "signer keys"),
    ((DEPARTMENT, CODE, "legal_representative"), {}, "holder"),
    ((DEPARTMENT, CODE, "official"), {"holder": "张三"}, "no personal holder"),
    ((DEPARTMENT, CODE, "official"), {"valid_from": utc_now().replace(tzinfo=None)}, "time zone"),
    ((DEPARTMENT, CODE, "official"), {"name": "名\x00"}, "control characters"),
])
def test_bad_applications_are_refused_and_register_nothing(office, args, kwargs, message):
    with pytest.raises(SealRequestError, match=message):
        office.apply(*args, **kwargs)
    assert office.seals() == [] and office.audit.entries(action="seal.apply") == []


def test_an_area_code_must_be_digits(office):
    with pytest.raises(SealRequestError, match="area code"):
        office.apply(DEPARTMENT, _credit_code("91AB0000MA0000000"), "official")


def _break_seal_audit(office, monkeypatch) -> None:
    real = office.audit.record

    def record(action, **kwargs):
        if action.startswith("seal."):
            raise RuntimeError("audit store unavailable")
        return real(action, **kwargs)

    monkeypatch.setattr(office.audit, "record", record)


def test_audit_failure_rolls_back_each_act(office, monkeypatch):
    record = _active(office)
    history = _history(office, record.es_id)
    _break_seal_audit(office, monkeypatch)
    with pytest.raises(RuntimeError):
        office.apply(DEPARTMENT, CODE, "official")
    with pytest.raises(RuntimeError):
        office.suspend(record.es_id, "x")
    assert [r.es_id for r in office.seals()] == [record.es_id]
    assert office.find(record.es_id).status == "active" and _history(office, record.es_id) == history
    monkeypatch.undo()
    assert office.apply(DEPARTMENT, CODE, "official").es_id == "35010000000002"  # the failed one left no gap
    assert office.audit.verify().ok


def test_failed_make_withdraws_its_certificate_and_can_be_retried(office, monkeypatch):
    es_id = office.apply(DEPARTMENT, CODE, "licence").es_id
    office.approve(es_id)
    _break_seal_audit(office, monkeypatch)
    with pytest.raises(RuntimeError):
        office.make(es_id)
    record = office.find(es_id)
    assert record.status == "approved" and record.der is None and record.certificates == []
    orphans = [c for c in office.ca.certificates(profile="department-signer")
               if c.key_label == signer_label(es_id)]
    assert len(orphans) == 1 and orphans[0].revoked
    monkeypatch.undo()
    made = office.make(es_id)
    assert made.status == "made" and made.certificates[0].serial != orphans[0].serial
    assert [v.version for v in office.keys.versions(signer_label(es_id))] == [1]  # the key is kept
    assert office.audit.verify().ok


def test_make_needs_a_seal_maker(db, tmp_path):
    keys = SoftKeyStore(tmp_path / "keys", b"test passphrase", iterations=1000)
    for label in ("root", "issuing"):
        keys.generate(label)
    audit = AuditLog(db)
    ca = CertificateAuthority(db, keys, audit, actor="ca")
    ca.create_root("root", subject_name("Root"))
    ca.create_issuing("issuing", subject_name("Issuing"))
    office = SealOffice(db, keys, ca, audit, actor="officer")
    es_id = office.apply(DEPARTMENT, CODE, "official").es_id
    office.approve(es_id)
    with pytest.raises(SealRefused, match="seal-maker"):
        office.make(es_id)
    assert office.find(es_id).status == "approved" and not keys.exists(signer_label(es_id))


def test_several_signers_are_all_listed(office):
    record = _active(office, "contract", signers=2)
    seal = read_seal(record.der)
    assert seal.certificates == tuple(c.der for c in record.certificates) and len(seal.certificates) == 2
    labels = [c.key_label for c in record.certificates]
    assert labels == [signer_label(record.es_id), signer_label(record.es_id, 1)]
    office.ca.revoke(record.certificates[0].serial, "key_compromise")
    assert office.signing_identity(record.es_id).signer_certificate == record.certificates[1].der


def test_seal_history_is_append_only(office):
    es_id = office.apply(DEPARTMENT, CODE, "official").es_id
    with pytest.raises(DBAPIError, match="append-only"), office.db.transaction() as s:
        s.execute(text("UPDATE seal_event SET actor = 'someone else'"))
    with pytest.raises(DBAPIError, match="append-only"), office.db.transaction() as s:
        s.execute(text("DELETE FROM seal_event"))
    with office.db.transaction() as s:
        assert s.scalars(select(SealEvent.actor)).all() == ["seal-officer"]
    assert office.find(es_id).status == "applied"
