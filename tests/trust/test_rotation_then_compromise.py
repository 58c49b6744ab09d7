"""Issue 7's done-when as one story on one home: licences, the seal key rotated twice with
licences between, every old and new licence TOTAL_PASSED (OFD and PDF); then the seal's key
declared compromised since T (two officers) — exactly the licences issued at or after T fail
REVOKED, all earlier ones (of every seal version) still pass — and the affected ones re-issued
with a fresh key verify TOTAL_PASSED."""

from __future__ import annotations

import itertools
import json
import time
from datetime import UTC, datetime, timedelta

from ca.names import credit_code_check_character
from keys_dev.domain import DEMO_DEPARTMENT_CODE
from seals.rotation import rotate_seal
from support.cli import run_cli
from trust.domain import TrustDomain
from trust.validation import validate_document

BUSINESS = "11100000MB0000019L001"
ALICE, BOB = {"ZHENGYIN_ACTOR": "officer-alice"}, {"ZHENGYIN_ACTOR": "officer-bob"}
_numbers = itertools.count(1)


def _json(home, *args, env=None):
    code, out, err = run_cli(home, *args, "--json", env=env)
    assert code == 0, err + out
    return json.loads(out)


def _verdicts(home, identifiers) -> dict[str, set[tuple[str, str | None]]]:
    """Each licence's verdicts over its OFD and its PDF, judged with the home's trust now."""
    domain = TrustDomain.open(str(home))
    try:
        trust, now = domain.verification_trust(), datetime.now(UTC)
        return {i: {(r.indication, r.sub_indication) for r in
                    (validate_document(domain.licences.document(i, kind), trust, now) for kind in ("ofd", "pdf"))}
                for i in identifiers}
    finally:
        domain.close()


def test_rotate_twice_then_a_compromise_fails_exactly_the_later_licences_and_reissues_them(tmp_path):
    home = tmp_path / "home"
    assert run_cli(home, "init")[0] == 0
    domain = TrustDomain.open(str(home), actor="cli:officer-alice")
    try:
        desk = domain.licence_desk
        example = dict(desk.catalogue.get(BUSINESS).example)

        def issue() -> str:
            first17 = f"91350102MD{next(_numbers):07d}"
            data = example | {"统一社会信用代码": first17 + credit_code_check_character(first17)}
            return desk.issue(BUSINESS, data, issuer_code=DEMO_DEPARTMENT_CODE).identifier

        es_id = desk.licence_seal(DEMO_DEPARTMENT_CODE, datetime.now(UTC))[0].es_id
        before = [issue(), issue()]
        certificates = []
        for _ in range(2):
            certificates.append(rotate_seal(domain.seals, es_id, reason="yearly").new_certificates)
            before.append(issue())
        assert certificates[0] != certificates[1]
        since = (datetime.now(UTC) + timedelta(seconds=1)).replace(microsecond=0)
        time.sleep(max(0.0, (since - datetime.now(UTC)).total_seconds()) + 0.3)
        after = [issue(), issue()]
    finally:
        domain.close()

    passed = {("TOTAL_PASSED", None)}
    assert all(v == passed for v in _verdicts(home, before + after).values())

    filed = _json(home, "keys", "compromised", "--seal", es_id, "--since", since.isoformat(), env=ALICE)
    assert filed["pending_approval"]
    assert _json(home, "approvals", "approve", filed["id"], env=BOB)["status"] == "executed"

    verdicts = _verdicts(home, before + after)
    assert {i for i, v in verdicts.items() if v != passed} == set(after)
    assert all(verdicts[i] == {("TOTAL_FAILED", "REVOKED")} for i in after)

    report = _json(home, "keys", "compromised", "--seal", es_id, "--since", since.isoformat(), "--reissue",
                   env=ALICE)["reissue"]
    assert report["complete"] and sorted(r["old"] for r in report["reissued"]) == sorted(after)
    renewed = [r["new"] for r in report["reissued"]]
    assert all(v == passed for v in _verdicts(home, renewed + before).values())
    assert all(v == {("TOTAL_FAILED", "REVOKED")} for v in _verdicts(home, after).values())
