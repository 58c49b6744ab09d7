"""Seal key rotation with the keys in Vault (the stand-in server): the rotation works the same,
and Vault failing at the first step (wrapping the new key) or in the middle (unwrapping the
issuing CA's key to certify the new one) leaves the seal signing with the version it had."""

from __future__ import annotations

import pytest

from ca.authority import CertificateAuthority
from ca.names import subject_name
from hsm.errors import HsmError
from hsm.keystore import KeyState
from hsm.vault import TokenAuth, VaultConnection, VaultKeyStore
from ledger.audit import AuditLog
from ledger.database import Database
from seals.office import SealOffice, signer_label
from seals.rotation import rotate_seal
from support.vault_standin import VaultStandIn

CODE = "11350100MB0000000Y"


@pytest.fixture
def vault():
    with VaultStandIn() as server:
        yield server


@pytest.fixture
def office(vault, tmp_path):
    db = Database(f"sqlite:///{tmp_path / 'vault.db'}")
    db.migrate()
    keys = VaultKeyStore(VaultConnection(vault.url, TokenAuth(vault.root_token)), unwrap_cache_seconds=0,
                         actor="officer:wang")
    keys.ensure_transit_key()
    for label in ("root", "issuing", "maker"):
        keys.generate(label)
    audit = AuditLog(db)
    ca = CertificateAuthority(db, keys, audit, actor="officer:wang")
    ca.create_root("root", subject_name("Test Root CA", organisation="证印测试"))
    ca.create_issuing("issuing", subject_name("Test Issuing CA", organisation="证印测试"))
    ca.issue("seal-maker", subject_name("证印测试制章人", organisation="证印测试"), key_label="maker")
    office = SealOffice(db, keys, ca, audit, actor="officer:wang")
    yield office
    keys.close()
    db.dispose()


def _seal(office: SealOffice) -> str:
    record = office.apply("示例市市场监督管理局", CODE, "licence")
    office.approve(record.es_id)
    office.make(record.es_id)
    return office.activate(record.es_id).es_id


def test_rotation_with_vault_keys(office):
    es_id = _seal(office)
    rotation = rotate_seal(office, es_id)
    identity = office.signing_identity(es_id)
    assert identity.signer.version == 2 and identity.seal_der == office.find(es_id).der
    identity.signer.sign(b"signed through Vault")
    states = [v.state for v in office.keys.versions(signer_label(es_id))]
    assert states == [KeyState.DISABLED, KeyState.ACTIVE] and rotation.old_keys_disabled


@pytest.mark.parametrize("path", ["/v1/transit/encrypt/zhengyin", "/v1/transit/decrypt/zhengyin"])
def test_vault_failing_during_the_rotation_changes_nothing(office, vault, path):
    es_id = _seal(office)
    before = office.find(es_id)
    vault.fail("POST", path, status=503, error="Vault is sealed")
    with pytest.raises(HsmError):
        rotate_seal(office, es_id)
    after = office.find(es_id)
    assert (after.der, [c.serial for c in after.certificates]) == (before.der, [c.serial for c in before.certificates])
    assert len(office.versions(es_id)) == 1
    assert office.audit.entries(action="seal.rotate") == []
    identity = office.signing_identity(es_id)
    assert identity.signer.version == 1
    identity.signer.sign(b"the old version still signs")
    made = [v for v in office.keys.versions(signer_label(es_id)) if v.version > 1]
    assert all(v.state is KeyState.DISABLED for v in made)
    assert [c.serial for c in office.ca.certificates(profile="department-signer", include_revoked=False)] == \
        [c.serial for c in before.certificates]
