"""Seal key rotation in the seal office, on both databases: the new version signs, the old one is
kept (and known to verifiers), a failure at any step leaves the seal signing with the version it
had and nothing made half-way usable, two concurrent rotations give one new version, and the
migration keeps every version (and downgrades to the current one)."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from alembic import command
from sqlalchemy import func, select

import seals.rotation as rotation_module
from ca.authority import CertificateAuthority
from ca.errors import CaError
from ca.names import subject_name
from hsm.errors import KeyStoreUnavailable
from hsm.keystore import KeyState
from hsm.soft import SoftKeyStore
from ledger.audit import AuditError, AuditLog
from ledger.database import alembic_config
from seals.lifecycle import SealRefused, SealRequestError
from seals.office import SUPERSEDED, SealOffice, signer_label, version_history
from seals.registry import SealRecord, SealSigner, SealVersion
from seals.rotation import RotationConflict, RotationIncomplete, SealRotation, rotate_seal
from seals.seal import read_seal

CODE = "11350100MB0000000Y"
DEPARTMENT = "示例市市场监督管理局"


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
    return SealOffice(db, keys, ca, audit, actor="officer:li")


def _active(office: SealOffice, **kwargs) -> SealRecord:
    record = office.apply(DEPARTMENT, CODE, "licence", **kwargs)
    office.approve(record.es_id)
    office.make(record.es_id)
    return office.activate(record.es_id)


def _state(office: SealOffice, es_id: str) -> dict:
    """Everything a rotation may touch, to compare before and after a failed one."""
    record = office.find(es_id)
    labels = sorted({c.key_label for c in record.all_certificates})
    with office.db.transaction() as s:
        versions = s.scalar(select(func.count()).select_from(SealVersion).where(SealVersion.seal_id == record.id))
        links = s.scalar(select(func.count()).select_from(SealSigner).where(SealSigner.seal_id == record.id))
    return {
        "der": record.der, "fingerprint": record.fingerprint, "valid_start": record.valid_start,
        "certificates": [c.serial for c in record.certificates], "versions": versions, "links": links,
        "events": len(office.events(es_id)),
        "rotations": len(office.audit.entries(action="seal.rotate")),
        "active_keys": {label: [v.version for v in office.keys.versions(label) if v.state is KeyState.ACTIVE]
                        for label in labels},
    }


def _unlisted_valid_signers(office: SealOffice) -> list[str]:
    """Department-signer certificates that are valid but listed in no seal version."""
    with office.db.transaction() as s:
        listed = set(s.scalars(select(SealSigner.certificate_id)))
    return [c.serial for c in office.ca.certificates(profile="department-signer", include_revoked=False)
            if c.id not in listed]


def _assert_signs_with_old(office: SealOffice, es_id: str, before: dict) -> None:
    identity = office.signing_identity(es_id)
    assert identity.seal_der == before["der"]
    identity.signer.sign(b"still signs")  # the old key version is active again
    assert _unlisted_valid_signers(office) == []


def test_rotation_makes_a_new_version_that_signs(office):
    record = _active(office)
    old = office.signing_identity(record.es_id)
    rotation = rotate_seal(office, record.es_id, reason="yearly")
    assert isinstance(rotation, SealRotation) and (rotation.old_version, rotation.new_version) == (1, 2)
    label = signer_label(record.es_id)
    assert rotation.old_keys == (f"{label}/v1",) and rotation.new_keys == (f"{label}/v2",)
    new = office.signing_identity(record.es_id)
    assert new.seal_der != old.seal_der and new.signer_certificate != old.signer_certificate
    assert new.signer.version == 2 and new.signer_certificate in new.seal.certificates
    assert new.seal.es_id == old.seal.es_id and new.seal.name == old.seal.name
    assert new.seal.picture == old.seal.picture  # the same image
    assert new.seal.valid_end <= old.seal.valid_end
    assert [v.state for v in office.keys.versions(label)] == [KeyState.DISABLED, KeyState.ACTIVE]
    assert not office.ca.find(rotation.old_certificates[0]).revoked  # kept valid by default
    versions = office.versions(record.es_id)
    assert [(v.version, v.fingerprint) for v in versions] == [(1, rotation.old_fingerprint),
                                                              (2, rotation.new_fingerprint)]
    assert versions[0].superseded_at is not None and versions[1].superseded_at is None
    last = office.events(record.es_id)[-1]
    assert (last.from_status, last.to_status, last.actor) == ("active", "active", "officer:li")
    assert "seal version 2: yearly" in last.reason
    entry = office.audit.entries(action="seal.rotate", limit=1)[0]
    assert entry.actor == "officer:li" and entry.subject == f"seal:{record.es_id}"
    assert office.audit.verify().ok
    histories = office.histories()
    assert set(histories) >= {v.der for v in versions}
    assert histories[versions[0].der][-1][1] == SUPERSEDED
    assert histories[versions[1].der][-1][1] == "active"


def test_every_signer_key_of_a_seal_rotates(office):
    record = _active(office, signers=2)
    rotation = rotate_seal(office, record.es_id)
    assert len(rotation.new_keys) == len(rotation.new_certificates) == 2
    seal = read_seal(office.find(record.es_id).der)
    assert [c.der for c in office.find(record.es_id).certificates] == list(seal.certificates)
    for index in range(2):
        states = [v.state for v in office.keys.versions(signer_label(record.es_id, index))]
        assert states == [KeyState.DISABLED, KeyState.ACTIVE]


def test_revoke_old_revokes_the_old_certificate_as_superseded_and_publishes_the_crl(office):
    record = _active(office)
    rotation = rotate_seal(office, record.es_id, revoke_old=True)
    old = office.ca.find(rotation.old_certificates[0])
    assert rotation.old_certificates_revoked and old.revoked and old.revocation_reason == "superseded"
    assert old.invalidity_date is not None and old.invalidity_date <= old.revoked_at
    from ca.crl import load_crl

    crl = load_crl(office.ca.latest_crl("issuing").der)
    assert old.serial_number in {e["user_certificate"].native for e in crl["tbs_cert_list"]["revoked_certificates"]}
    assert office.signing_identity(record.es_id).signer_certificate == office.find(record.es_id).certificates[0].der
    # a later rotation after a compromise revocation of the current certificate still works
    office.ca.revoke(rotation.new_certificates[0], "key_compromise")
    again = rotate_seal(office, record.es_id, revoke_old=True)
    assert again.new_version == 3 and office.signing_identity(record.es_id).signer.version == 3


def test_revoking_a_rotated_seal_revokes_every_versions_certificate(office):
    record = _active(office)
    rotation = rotate_seal(office, record.es_id)
    office.revoke(record.es_id, "department dissolved")
    for serial in (*rotation.old_certificates, *rotation.new_certificates):
        assert office.ca.find(serial).revoked


@pytest.mark.parametrize("step", ["key-store", "ca", "seal-maker", "commit"])
def test_a_failed_rotation_leaves_the_seal_signing_with_its_old_version(office, monkeypatch, step):
    record = _active(office)
    before = _state(office, record.es_id)

    def boom(*args, **kwargs):
        raise {"key-store": KeyStoreUnavailable("vault is sealed"), "ca": CaError("the issuing CA is down"),
               "seal-maker": CaError("maker key unavailable"), "commit": AuditError("audit log unavailable")}[step]

    if step == "key-store":
        monkeypatch.setattr(office.keys, "rotate", boom)
    elif step == "ca":
        monkeypatch.setattr(office.ca, "issue", boom)
    elif step == "seal-maker":
        monkeypatch.setattr(rotation_module, "make_seal", boom)
    else:
        real_record = office.audit.record
        monkeypatch.setattr(office.audit, "record", lambda action, **kw: (
            boom() if action == "seal.rotate" else real_record(action, **kw)))
    with pytest.raises((KeyStoreUnavailable, CaError, AuditError)):
        rotate_seal(office, record.es_id)
    monkeypatch.undo()
    after = _state(office, record.es_id)
    assert after == before  # same DER, certificates, versions, history; the old key still active
    _assert_signs_with_old(office, record.es_id, before)
    new_versions = [v for v in office.keys.versions(signer_label(record.es_id)) if v.version > 1]
    assert all(v.state is KeyState.DISABLED for v in new_versions)  # a made key version does not sign
    assert len(new_versions) == (0 if step == "key-store" else 1)
    # and the seal can be rotated afterwards
    assert rotate_seal(office, record.es_id).new_version == 2


def test_retiring_the_old_version_is_after_the_commit_and_what_fails_there_is_reported(office, monkeypatch):
    record = _active(office)
    real_disable, real_revoke = office.keys.disable, office.ca.revoke

    def key_store_gone(label, version):
        raise KeyStoreUnavailable("vault sealed a moment ago")

    def ca_gone(serial, reason="unspecified", **kwargs):
        raise CaError("the CA database is read-only")

    monkeypatch.setattr(office.keys, "disable", key_store_gone)
    monkeypatch.setattr(office.ca, "revoke", ca_gone)
    with pytest.raises(RotationIncomplete) as caught:
        rotate_seal(office, record.es_id, revoke_old=True)
    monkeypatch.setattr(office.keys, "disable", real_disable)
    monkeypatch.setattr(office.ca, "revoke", real_revoke)
    rotation = caught.value.rotation
    assert rotation.new_version == 2 and not rotation.old_keys_disabled and not rotation.old_certificates_revoked
    assert [what.split()[0] for what, _ in caught.value.failures] == ["key", "certificate"]
    assert "keys disable" in str(caught.value)
    identity = office.signing_identity(record.es_id)  # the rotation stands: the new version signs
    assert identity.signer.version == 2 and identity.seal_der == office.versions(record.es_id)[1].der
    assert not office.ca.find(rotation.old_certificates[0]).revoked


def test_a_seal_that_is_not_made_or_is_revoked_is_refused_before_any_key_is_made(office):
    applied = office.apply(DEPARTMENT, CODE, "official")
    with pytest.raises(SealRefused, match="only a made seal"):
        rotate_seal(office, applied.es_id)
    revoked = _active(office)
    office.revoke(revoked.es_id, "withdrawn")
    before = _state(office, revoked.es_id)
    with pytest.raises(SealRefused):
        rotate_seal(office, revoked.es_id)
    assert _state(office, revoked.es_id) == before
    with pytest.raises(SealRequestError):
        rotate_seal(office, _active(office).es_id, reason="x" * 501)


def test_a_suspended_seal_rotates_and_stays_suspended(office):
    record = _active(office)
    office.suspend(record.es_id, "under review")
    rotation = rotate_seal(office, record.es_id)
    assert office.find(record.es_id).status == "suspended"
    histories = office.histories()
    old, new = (v.der for v in office.versions(record.es_id))
    assert histories[new][-1][1] == "suspended" and histories[old][-1][1] == "suspended"
    assert rotation.new_version == 2


def test_two_concurrent_rotations_make_one_version_and_undo_the_other(office, monkeypatch):
    record = _active(office)
    barrier = threading.Barrier(2, timeout=30)
    real = rotation_module.make_seal

    def both_read_first(*args, **kwargs):
        barrier.wait()  # both have read version 1 and made a key and a certificate
        return real(*args, **kwargs)

    monkeypatch.setattr(rotation_module, "make_seal", both_read_first)
    results: list[object] = []

    def run() -> None:
        try:
            results.append(rotate_seal(office, record.es_id))
        except Exception as exc:  # collected and judged below
            results.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    won = [r for r in results if isinstance(r, SealRotation)]
    lost = [r for r in results if not isinstance(r, SealRotation)]
    assert len(won) == 1 and len(lost) == 1 and isinstance(lost[0], RotationConflict), results
    assert [v.version for v in office.versions(record.es_id)] == [1, 2]
    identity = office.signing_identity(record.es_id)
    assert identity.seal_der == office.versions(record.es_id)[1].der
    assert identity.signer.version == int(won[0].new_keys[0].rsplit("/v", 1)[1])
    states = {v.version: v.state for v in office.keys.versions(signer_label(record.es_id))}
    assert sorted(states.values(), key=str).count(KeyState.ACTIVE) == 1  # only the winner's key signs
    assert _unlisted_valid_signers(office) == []
    assert len(office.audit.entries(action="seal.rotate")) == 1


def test_version_history_marks_superseded_from_the_rotation_on():
    from datetime import UTC, datetime

    t = [datetime(2026, 1, 1, tzinfo=UTC) + timedelta(days=n) for n in range(6)]
    moves = [(t[0], "made"), (t[0], "active"), (t[2], "active"), (t[3], "suspended"), (t[4], "active")]
    assert version_history(moves, 1, t[0], None) == tuple(moves)
    superseded = version_history(moves, 1, t[0], t[2] + timedelta(seconds=1))
    assert superseded == ((t[0], "made"), (t[0], "active"), (t[2], "active"),
                          (t[2] + timedelta(seconds=1), SUPERSEDED), (t[3], "suspended"), (t[4], SUPERSEDED))
    assert version_history(moves, 2, t[2], None) == tuple(moves[2:])


def test_migration_keeps_every_version_and_downgrades_to_the_current(office):
    first = _active(office)
    rotation = rotate_seal(office, first.es_id)
    plain = _active(office)
    current = {c.id for c in (office.find(first.es_id).certificates + office.find(plain.es_id).certificates)}
    db = office.db
    with db.engine.begin() as conn:
        cfg = alembic_config(db.url)
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0007")
    with db.engine.connect() as conn:
        links = conn.exec_driver_sql("SELECT seal_id, certificate_id FROM seal_signer ORDER BY id").all()
    assert {certificate for _, certificate in links} == current  # the superseded links are gone
    db.migrate()
    versions = office.versions(first.es_id)
    assert [(v.version, v.fingerprint) for v in versions] == [(1, rotation.new_fingerprint)]
    assert [c.serial for c in office.find(first.es_id).certificates] == list(rotation.new_certificates)
    assert office.signing_identity(first.es_id).signer.version == 2
    assert len(office.versions(plain.es_id)) == 1
    assert rotate_seal(office, plain.es_id).new_version == 2
