"""Compromise response across seal and CA rotations (review of issue 7): the declaration revokes the
certificates of every seal version, pins them when it is requested (a rotation before the approval
does not let a leaked one escape), and publishes the CRL of the CA key that issued each revoked
certificate — after a CA rotation not the current key's; ``ca revoke`` and ``seal revoke`` too."""

from __future__ import annotations

import itertools
import time
from datetime import UTC, datetime, timedelta

import pytest

from ca.crl import load_crl
from ca.names import credit_code_check_character
from seals.rotation import rotate_seal
from support.cli import run_cli
from trust.approvals import Approvals
from trust.compromise import CompromiseError
from trust.domain import TrustDomain
from trust.validation import validate_document

BUSINESS = "11100000MB0000019L001"
ALICE, BOB = "cli:officer-alice", "cli:officer-bob"
_numbers = itertools.count(1)


@pytest.fixture
def scene(tmp_path, monkeypatch):
    monkeypatch.delenv("ZHENGYIN_DUAL_CONTROL", raising=False)
    code, _, err = run_cli(tmp_path, "init")
    assert code == 0, err
    alice, bob = TrustDomain.open(str(tmp_path), actor=ALICE), TrustDomain.open(str(tmp_path), actor=BOB)
    from keys_dev.domain import DEMO_DEPARTMENT_CODE

    desk = alice.licence_desk
    example = dict(desk.catalogue.get(BUSINESS).example)

    def issue():
        first17 = f"91350103MC{next(_numbers):07d}"
        return desk.issue(BUSINESS, example | {"统一社会信用代码": first17 + credit_code_check_character(first17)},
                          issuer_code=DEMO_DEPARTMENT_CODE)

    first = issue()
    first_at = datetime.now(UTC)  # the seal's first version signs at this time (a thief's claim, later)
    es_id = desk.licence_seal(DEMO_DEPARTMENT_CODE, datetime.now(UTC))[0].es_id
    yield {"home": tmp_path, "alice": alice, "bob": bob, "issue": issue, "es_id": es_id, "first": first,
           "first_at": first_at}
    alice.close()
    bob.close()


def _verdict(domain: TrustDomain, document: bytes) -> tuple[str, str | None]:
    report = validate_document(document, domain.verification_trust(), datetime.now(UTC))
    return report.indication, report.sub_indication


def _forge(identity, when: datetime) -> bytes:
    """What a thief holding ``identity``'s key signs, claiming ``when`` as the signing time."""
    from ofd.sealing import seal_ofd
    from ofd.writer import ofd_package
    from pages.model import Document, Page, Text

    return seal_ofd(ofd_package(Document(pages=(Page.a4([Text(20, 40, "伪造的通知", 7)]),), title="x")),
                    seal=identity.seal_der, signer=identity.signer,
                    signer_certificate=identity.signer_certificate, time=when)


def _past_second() -> datetime:
    """A compromise time strictly after everything done so far."""
    since = (datetime.now(UTC) + timedelta(seconds=1)).replace(microsecond=0)
    time.sleep(max(0.0, (since - datetime.now(UTC)).total_seconds()) + 0.1)
    return since


def _declare(scene, since: datetime, *, between=None):
    filed = Approvals(scene["alice"]).request("seal.compromise", {"es_id": scene["es_id"],
                                                                  "since": since.isoformat()})
    assert not filed.executed
    if between is not None:
        between()
    return Approvals(scene["bob"]).approve(filed.request.id)


def _listed_on_a_crl(domain: TrustDomain, serial: str) -> bool:
    for record in domain.ca.latest_crls():
        revoked = load_crl(record.der)["tbs_cert_list"]["revoked_certificates"]
        if any(format(e["user_certificate"].native, "x") == serial for e in revoked or []):
            return True
    return False


def test_every_seal_version_is_revoked_and_an_old_key_cannot_sign_a_backdated_document(scene):
    alice, es_id = scene["alice"], scene["es_id"]
    v1 = alice.seals.signing_identity(es_id)  # what the thief copied: key version 1 and its certificate
    v1_signed_at = datetime.now(UTC)
    rotate_seal(alice.seals, es_id, reason="yearly")
    second = scene["issue"]()
    rotate_seal(alice.seals, es_id, reason="yearly")
    third = scene["issue"]()
    since = _past_second()
    done = _declare(scene, since)
    assert done.status == "executed", done.result
    from trust.compromise import seal_certificates

    certificates = seal_certificates(alice, es_id)
    assert len(certificates) == 3
    assert sorted(done.result["revoked"]) == sorted(c.serial for c in certificates)
    for c in certificates:
        assert c.revocation_reason == "key_compromise" and c.invalidity_date == since
    # the thief re-enables their copy of version 1 and signs "while version 1 was in use"
    label, version = v1.signer.label, v1.signer.version
    alice.keys.enable(label, version)
    forged = _forge(v1, v1_signed_at)
    assert _verdict(alice, forged) == ("TOTAL_FAILED", "REVOKED")
    for licence in (scene["first"], second, third):  # the registry proves they existed before
        assert _verdict(alice, licence.ofd) == ("TOTAL_PASSED", None), licence.identifier


def test_the_request_pins_the_leaked_certificates_against_a_rotation_before_approval(scene):
    alice, es_id = scene["alice"], scene["es_id"]
    leaked = alice.seals.signing_identity(es_id)
    leaked_serial = alice.seals.find(es_id).certificates[0].serial
    since = _past_second()
    rotated = {}

    def rotate_meanwhile():
        rotated["rotation"] = rotate_seal(alice.seals, es_id, reason="routine, before the approval")

    done = _declare(scene, since, between=rotate_meanwhile)
    assert done.status == "executed", done.result
    new_serials = list(rotated["rotation"].new_certificates)
    assert done.result["revoked"] == [leaked_serial]
    assert done.result["kept"] == new_serials  # made after the request, for a new key version
    assert alice.ca.find(leaked_serial).revocation_reason == "key_compromise"
    assert not alice.ca.find(new_serials[0]).revoked
    alice.keys.enable(leaked.signer.label, leaked.signer.version)
    assert _verdict(alice, _forge(leaked, scene["first_at"])) == ("TOTAL_FAILED", "REVOKED")
    assert _verdict(alice, scene["first"].ofd) == ("TOTAL_PASSED", None)
    assert alice.seals.signing_identity(es_id).signer_certificate == alice.ca.find(new_serials[0]).der


def test_a_pinned_certificate_revoked_meanwhile_for_another_reason_fails_the_request(scene):
    alice, es_id = scene["alice"], scene["es_id"]
    rotate_seal(alice.seals, es_id, reason="yearly")
    old, current = (c.serial for c in alice.seals.find(es_id).all_certificates)
    since = _past_second()

    def supersede_meanwhile():
        alice.ca.revoke(old, "superseded")  # from now: after the compromise time

    with pytest.raises(CompromiseError, match="revoked meanwhile"):
        _declare(scene, since, between=supersede_meanwhile)
    failed = Approvals(alice).list(status="failed")[0]
    assert old in failed.result["error"]
    assert alice.ca.find(current).revocation_reason == "key_compromise"  # the rest is contained


def test_after_a_ca_rotation_the_old_issuing_key_re_signs_its_crl(scene):
    alice, es_id = scene["alice"], scene["es_id"]
    thief = alice.seals.signing_identity(es_id)
    serial = alice.seals.find(es_id).certificates[0].serial
    alice.ca.rotate_ca("issuing")
    since = _past_second()
    done = _declare(scene, since)
    assert done.status == "executed" and done.result["revoked"] == [serial]
    assert _listed_on_a_crl(alice, serial)
    assert _verdict(alice, _forge(thief, scene["first_at"])) == ("TOTAL_FAILED", "REVOKED")
    assert _verdict(alice, scene["first"].ofd) == ("TOTAL_PASSED", None)


def test_after_a_ca_rotation_ca_revoke_and_seal_revoke_publish_the_issuers_crl(scene):
    alice, bob, es_id = scene["alice"], scene["bob"], scene["es_id"]
    maker = alice.ca.certificates(profile="seal-maker")[-1].serial
    alice.ca.rotate_ca("issuing")
    filed = Approvals(alice).request("ca.revoke", {"serial": maker, "reason": "superseded"})
    assert Approvals(bob).approve(filed.request.id).status == "executed"
    assert _listed_on_a_crl(alice, maker)
    serial = alice.seals.find(es_id).certificates[0].serial
    filed = Approvals(alice).request("seal.revoke", {"es_id": es_id, "reason": "department dissolved"})
    assert Approvals(bob).approve(filed.request.id).status == "executed"
    assert alice.ca.find(serial).revoked and _listed_on_a_crl(alice, serial)
