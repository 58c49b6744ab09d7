"""Signing identities kept a short time (seals.identity_cache): kept within the age, looked up
again after it, forgotten at once on any audited seal, certificate or key act in this process,
never handed out for a signing time outside the seal's or certificate's validity, and a disabled
key refusing to sign through a kept identity."""

from __future__ import annotations

from datetime import timedelta

import pytest

from ca.authority import CertificateAuthority, utc_now
from ca.names import subject_name
from hsm.errors import KeyUnavailable
from hsm.soft import SoftKeyStore
from ledger.audit import AuditLog
from seals import identity_cache
from seals.identity_cache import SigningIdentities, changes_signing
from seals.lifecycle import SealNotUsable
from seals.office import SealOffice, signer_label

CODE = "11350100MB0000000Y"
DEPARTMENT = "示例市市场监督管理局"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Counting:
    """The office, counting the lookups that reach it."""

    def __init__(self, office: SealOffice) -> None:
        self.office, self.calls = office, 0

    def signing_identity(self, es_id, at=None):
        self.calls += 1
        return self.office.signing_identity(es_id, at)


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


@pytest.fixture
def active(office):
    record = office.apply(DEPARTMENT, CODE, "licence", valid_days=30)
    office.approve(record.es_id)
    office.make(record.es_id)
    return office.activate(record.es_id)


@pytest.fixture
def kept(office):
    clock = Clock()
    counting = Counting(office)
    return SigningIdentities(counting, ttl=2.0, clock=clock), counting, clock  # type: ignore[arg-type]


def test_an_identity_is_kept_for_its_age_then_looked_up_again(kept, active):
    cache, counting, clock = kept
    first = cache.signing_identity(active.es_id)
    assert cache.signing_identity(active.es_id) is first and counting.calls == 1
    clock.now += 1.9
    assert cache.signing_identity(active.es_id) is first and counting.calls == 1
    clock.now += 0.2  # older than two seconds: the office is asked again
    assert cache.signing_identity(active.es_id) is not first and counting.calls == 2


@pytest.mark.parametrize("act", ["suspend", "revoke", "certificate", "invalidate"])
def test_any_change_in_this_process_is_seen_at_once(kept, office, active, act):
    cache, counting, _ = kept
    cache.signing_identity(active.es_id)
    if act == "suspend":
        office.suspend(active.es_id, "token lost")
    elif act == "revoke":
        office.revoke(active.es_id, "withdrawn")
    elif act == "certificate":
        office.ca.revoke(office.find(active.es_id).certificates[0].serial, "key_compromise")
    else:
        identity_cache.invalidate(active.es_id)  # what code without an audit row of its own calls
    if act == "invalidate":
        cache.signing_identity(active.es_id)
        assert counting.calls == 2
        return
    with pytest.raises(SealNotUsable):
        cache.signing_identity(active.es_id)
    assert counting.calls == 2


def test_a_department_choice_is_kept_and_forgotten_with_its_seal(kept, office, active):
    cache, _, _ = kept
    identity = office.signing_identity(active.es_id)
    cache.keep(("licence seal", CODE), identity, DEPARTMENT)
    assert cache.chosen(("licence seal", CODE)) == (identity, DEPARTMENT)
    identity_cache.invalidate("some-other-seal")  # a department's choice goes with any seal's change
    assert cache.chosen(("licence seal", CODE)) is None


def test_a_signing_time_outside_the_validity_is_never_served_from_the_cache(kept, active):
    cache, counting, _ = kept
    cache.signing_identity(active.es_id)
    with pytest.raises(SealNotUsable) as caught:
        cache.signing_identity(active.es_id, active.valid_end + timedelta(seconds=1))
    assert caught.value.reason == "expired" and counting.calls == 2
    with pytest.raises(SealNotUsable) as caught:
        cache.signing_identity(active.es_id, active.valid_start - timedelta(seconds=1))
    assert caught.value.reason == "not-yet-valid" and counting.calls == 3
    assert cache.chosen(("licence seal", CODE), utc_now()) is None
    naive = utc_now().replace(tzinfo=None)  # refused by the office with its own error, not compared
    with pytest.raises(Exception, match="time zone"):
        cache.signing_identity(active.es_id, naive)


def test_a_disabled_key_refuses_to_sign_through_a_kept_identity(kept, office, active):
    cache, _, _ = kept
    identity = cache.signing_identity(active.es_id)
    office.keys.disable(signer_label(active.es_id), 1)  # this store writes no audit row
    try:
        assert cache.signing_identity(active.es_id) is identity  # still kept, but:
        with pytest.raises(KeyUnavailable):
            identity.signer.sign(b"document")
    finally:
        office.keys.enable(signer_label(active.es_id), 1)


def test_which_audited_acts_empty_the_caches():
    for action in ("seal.suspend", "seal.revoke", "seal.rotate", "ca.revoke", "ca.crl", "key.disable",
                   "key.rotate", "key.destroy"):
        assert changes_signing(action), action
    for action in ("licence.issue", "document.seal", "key.unwrap", "data.access"):
        assert not changes_signing(action), action
