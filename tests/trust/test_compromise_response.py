"""Compromise response end to end (issue 7): licences issued before and after a time T; the seal's
key declared compromised since T (dual control: filed by one officer, approved by another);
exactly the post-T documents fail REVOKED while the pre-T ones pass on the registry's proof of
existence; a thief's backdated signature fails too; the affected licences are re-issued with a
fresh key and verify TOTAL_PASSED; clear keys appear nowhere."""

from __future__ import annotations

import base64
import itertools
import json
import time
from datetime import UTC, datetime, timedelta

import pytest

from ca.crl import load_crl
from ca.names import credit_code_check_character
from support.cli import run_cli
from trust.domain import TrustDomain
from trust.validation import validate_document

BUSINESS = "11100000MB0000019L001"
ALICE, BOB = {"ZHENGYIN_ACTOR": "officer-alice"}, {"ZHENGYIN_ACTOR": "officer-bob"}
_numbers = itertools.count(1)


def _credit_code() -> str:
    first17 = f"91350102MC{next(_numbers):07d}"
    return first17 + credit_code_check_character(first17)


def _json(home, *args, env=None):
    code, out, err = run_cli(home, *args, "--json", env=env)
    assert code == 0, err + out
    return json.loads(out)


def _secret_forms(store) -> list[str]:
    """Every active key's private scalar as the encodings a leak could take."""
    forms = []
    for kv in store.list():
        if kv.state.value != "active":
            continue
        d = store._private(kv.label, kv.version, "test")[1].private_scalar()
        raw = d.to_bytes(32, "big")
        forms += [f"{d:064x}", f"{d:064X}", str(d), base64.b64encode(raw).decode()]
    return forms


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    """The home, its licence seal, two groups of licences around T, and the officers' outputs."""
    home = tmp_path_factory.mktemp("compromise-home")
    code, _, err = run_cli(home, "init")
    assert code == 0, err
    domain = TrustDomain.open(str(home), actor="cli:officer-alice")
    from keys_dev.domain import DEMO_DEPARTMENT_CODE

    desk = domain.licence_desk
    example = dict(desk.catalogue.get(BUSINESS).example)

    def issue():
        return desk.issue(BUSINESS, example | {"统一社会信用代码": _credit_code()},
                          issuer_code=DEMO_DEPARTMENT_CODE)

    before = [issue(), issue()]
    es_id = domain.seals.signing_identity(desk.licence_seal(DEMO_DEPARTMENT_CODE, datetime.now(UTC))[0].es_id).es_id
    thief_key = domain.seals.signing_identity(es_id)  # what the thief holds: the seal and its key
    secrets_before = _secret_forms(domain.keys)
    # T: the next whole second after the first group; the second group a moment after it.
    since = (datetime.now(UTC) + timedelta(seconds=1)).replace(microsecond=0)
    time.sleep(max(0.0, (since - datetime.now(UTC)).total_seconds()) + 0.3)
    after = [issue(), issue()]
    domain.close()
    return {"home": home, "es_id": es_id, "since": since, "before": before, "after": after,
            "thief": thief_key, "secrets": secrets_before, "outputs": []}


def _verdict(home, document: bytes) -> tuple[str, str | None]:
    domain = TrustDomain.open(str(home))
    try:
        report = validate_document(document, domain.verification_trust(), datetime.now(UTC))
    finally:
        domain.close()
    return report.indication, report.sub_indication


def _cli_verdict(home, path) -> dict:
    _, out, err = run_cli(home, "verify", str(path), "--json")
    assert "Traceback" not in err
    return json.loads(out)


@pytest.fixture(scope="module")
def declared(scene):
    home, es_id, since = scene["home"], scene["es_id"], scene["since"].isoformat()
    filed = _json(home, "keys", "compromised", "--seal", es_id, "--since", since, env=ALICE)
    scene["outputs"].append(json.dumps(filed))
    assert filed["pending_approval"] and filed["status"] == "pending"
    # Nothing is revoked before the second officer approves: every licence still passes.
    for licence in scene["after"]:
        assert _verdict(home, licence.ofd) == ("TOTAL_PASSED", None)
    code, _, err = run_cli(home, "approvals", "approve", filed["id"], env=ALICE)
    assert code == 5 and "different security officer" in err
    approved = _json(home, "approvals", "approve", filed["id"], env=BOB)
    scene["outputs"].append(json.dumps(approved))
    assert approved["status"] == "executed" and approved["decided_by"] == "cli:officer-bob"
    return approved["result"]


def test_the_declaration_revokes_with_key_compromise_and_the_invalidity_date(scene, declared):
    domain = TrustDomain.open(str(scene["home"]))
    try:
        assert declared["revoked"]
        for serial in declared["revoked"]:
            record = domain.ca.find(serial)
            assert record.revocation_reason == "key_compromise"
            assert record.invalidity_date == scene["since"]
        crl = load_crl(domain.ca.latest_crl("issuing").der)
        entries = {format(e["user_certificate"].native, "x"): e for e in crl["tbs_cert_list"]["revoked_certificates"]}
        for serial in declared["revoked"]:
            exts = {x["extn_id"].native: x["extn_value"].native for x in entries[serial]["crl_entry_extensions"]}
            assert exts["crl_reason"] == "key_compromise" and exts["invalidity_date"] == scene["since"]
        actions = [e.action for e in domain.audit.entries(limit=50)]
        assert {"approval.request", "approval.approve", "approval.execute", "seal.compromise"} <= set(actions)
    finally:
        domain.close()


def test_exactly_the_post_compromise_licences_are_affected(scene, declared):
    assert [a["identifier"] for a in declared["affected"]] == [lic.identifier for lic in scene["after"]]
    listed = _json(scene["home"], "keys", "compromised", "--seal", scene["es_id"], "--since",
                   scene["since"].isoformat(), env=ALICE)  # already declared: lists, files nothing
    assert [a["identifier"] for a in listed["affected"]] == [lic.identifier for lic in scene["after"]]
    assert "declaration" not in listed


def test_post_compromise_documents_fail_revoked_and_pre_compromise_ones_pass(scene, declared, tmp_path):
    for licence in scene["before"]:
        for document in (licence.ofd, licence.pdf):
            assert _verdict(scene["home"], document) == ("TOTAL_PASSED", None), licence.identifier
    for licence in scene["after"]:
        for document in (licence.ofd, licence.pdf):
            assert _verdict(scene["home"], document) == ("TOTAL_FAILED", "REVOKED"), licence.identifier
    # the command line's verifier sees the same, and says where the proof came from
    path = tmp_path / "before.ofd"
    path.write_bytes(scene["before"][0].ofd)
    report = _cli_verdict(scene["home"], path)
    assert report["indication"] == "TOTAL_PASSED"
    chain = next(c for c in report["signatures"][0]["checks"] if c["name"] == "certificate-chain")
    assert "licence registry" in chain["detail"]


def test_without_the_registry_a_pre_compromise_signature_is_not_trusted(scene, declared):
    """The document's own signing time is a claim the key holder makes: without the registry's
    proof even a genuine pre-compromise licence cannot pass."""
    from dataclasses import replace

    domain = TrustDomain.open(str(scene["home"]))
    try:
        context = replace(domain.verification_trust(), registry_proof=None)
        report = validate_document(scene["before"][0].ofd, context, datetime.now(UTC))
        assert (report.indication, report.sub_indication) == ("TOTAL_FAILED", "REVOKED")
    finally:
        domain.close()


def test_a_thief_backdating_a_signature_gets_revoked(scene, declared):
    from ofd.sealing import seal_ofd
    from ofd.writer import ofd_package
    from pages.model import Document, Page, Text

    identity = scene["thief"]
    forged = seal_ofd(ofd_package(Document(pages=(Page.a4([Text(20, 40, "伪造的通知", 7)]),), title="x")),
                      seal=identity.seal_der, signer=identity.signer,
                      signer_certificate=identity.signer_certificate,
                      time=scene["since"] - timedelta(seconds=1))  # "signed" while all was well
    assert _verdict(scene["home"], forged) == ("TOTAL_FAILED", "REVOKED")


def test_the_compromised_seal_no_longer_signs(scene, declared):
    from seals.lifecycle import SealNotUsable

    domain = TrustDomain.open(str(scene["home"]))
    try:
        with pytest.raises(SealNotUsable, match="revoked"):
            domain.seals.signing_identity(scene["es_id"])
    finally:
        domain.close()


@pytest.fixture(scope="module")
def reissued(scene, declared):
    report = _json(scene["home"], "keys", "compromised", "--seal", scene["es_id"], "--since",
                   scene["since"].isoformat(), "--reissue", env=ALICE)
    scene["outputs"].append(json.dumps(report))
    return report["reissue"]


def test_reissue_rekeys_and_issues_new_versions_that_verify(scene, reissued):
    assert reissued["complete"] and reissued["rotation"] is not None
    assert [r["old"] for r in reissued["reissued"]] == [lic.identifier for lic in scene["after"]]
    domain = TrustDomain.open(str(scene["home"]))
    try:
        new_cert = set(reissued["rotation"]["new_certificates"])
        for pair in reissued["reissued"]:
            old, new = domain.licences.find(pair["old"]), domain.licences.find(pair["new"])
            assert new.previous_identifier == old.identifier and old.superseded_by == new.identifier
            assert "re-issued after key compromise" in (new.status_reason or "") + json.dumps(
                [e.reason for e in domain.licences.events(new.identifier)], ensure_ascii=False)
            for kind in ("ofd", "pdf"):
                document = domain.licences.document(new.identifier, kind)
                assert _verdict(scene["home"], document) == ("TOTAL_PASSED", None), (new.identifier, kind)
            from ofd.verification import examine_ofd

            signer = examine_ofd(domain.licences.document(new.identifier, "ofd")).signatures[0].signer_certificate
            assert domain.ca.find(next(iter(new_cert))).der == signer
        # before and after re-issue: the old pre-compromise licences still pass, the post ones fail
        for licence in scene["before"]:
            assert _verdict(scene["home"], licence.ofd) == ("TOTAL_PASSED", None)
        for licence in scene["after"]:
            assert _verdict(scene["home"], licence.ofd) == ("TOTAL_FAILED", "REVOKED")
        assert any(e.action == "seal.compromise_reissue" for e in domain.audit.entries(limit=100))
    finally:
        domain.close()


def test_reissue_again_skips_what_is_done(scene, reissued):
    again = _json(scene["home"], "keys", "compromised", "--seal", scene["es_id"], "--since",
                  scene["since"].isoformat(), "--reissue", env=ALICE)["reissue"]
    assert again["reissued"] == [] and again["rotation"] is None
    assert {s["identifier"] for s in again["skipped"]} == {lic.identifier for lic in scene["after"]}


def test_clear_keys_appear_nowhere(scene, reissued, tmp_path):
    home = scene["home"]
    export = tmp_path / "audit.jsonl"
    _json(home, "audit", "export", "--out", str(export))
    assert _json(home, "audit", "verify", "--file", str(export))["ok"]
    domain = TrustDomain.open(str(home))
    try:
        forms = scene["secrets"] + _secret_forms(domain.keys)
        payloads = "\n".join(e.payload for e in domain.audit.entries(limit=10_000))
    finally:
        domain.close()
    database = (home / "zhengyin.db").read_bytes().decode("latin-1")
    haystacks = {"database": database, "audit": payloads, "export": export.read_text(encoding="utf-8"),
                 "cli": "\n".join(scene["outputs"])}
    assert len(forms) >= 8
    for name, text in haystacks.items():
        for form in forms:
            assert form not in text, f"a private key appears in the {name}"
