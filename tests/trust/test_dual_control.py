"""Dual control (issue 7): a dangerous act waits for a second, different security officer; an
expired, rejected or already decided request cannot be approved; the act runs once, also when
two officers approve at the same moment (SQLite and PostgreSQL); bad input files nothing;
development may switch it off, production may not; all of it is audited."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest

from ledger.audit import AuditLog
from ledger.config import ConfigError
from support.cli import run_cli
from trust.approvals import (
    ApprovalNotFound,
    ApprovalRefused,
    ApprovalRequestError,
    Approvals,
    DangerousAct,
    dual_control_required,
    register_act,
)

ALICE, BOB, CAROL = ({"ZHENGYIN_ACTOR": n} for n in ("officer-alice", "officer-bob", "officer-carol"))


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    path = tmp_path_factory.mktemp("dual-home")
    code, _, err = run_cli(path, "init")
    assert code == 0, err
    return path


def _run(home, *args, env=ALICE):
    return run_cli(home, *args, "--json", env=env)


def _json(home, *args, env=ALICE):
    code, out, err = _run(home, *args, env=env)
    assert code == 0, err + out
    return json.loads(out)


def _key_state(home, label: str, version: int) -> str:
    return next(k["state"] for k in _json(home, "keys", "list") if (k["label"], k["version"]) == (label, version))


def _actions(home, subject: str) -> list[str]:
    return [e["action"] for e in reversed(_json(home, "audit", "list", "--subject", subject, "--limit", "50"))]


def test_destroy_waits_for_a_second_officer_and_runs_once(home):
    _json(home, "keys", "generate", "dual-a")
    filed = _json(home, "keys", "destroy", "dual-a", "1", "--yes")
    assert filed["pending_approval"] and filed["requested_by"] == "cli:officer-alice"
    assert _key_state(home, "dual-a", 1) == "active"
    code, _, err = _run(home, "approvals", "approve", filed["id"])  # the requester herself
    assert code == 5 and "different security officer" in err
    assert _key_state(home, "dual-a", 1) == "active"
    done = _json(home, "approvals", "approve", filed["id"], "--reason", "checked the ticket", env=BOB)
    assert done["status"] == "executed" and done["decided_by"] == "cli:officer-bob"
    assert done["result"]["state"] == "destroyed" and _key_state(home, "dual-a", 1) == "destroyed"
    code, _, err = _run(home, "approvals", "approve", filed["id"], env=CAROL)  # approving twice
    assert code == 5 and "executed" in err
    actions = _actions(home, f"approval:{filed['id']}")
    assert actions[:2] == ["approval.request", "approval.refused"]
    assert actions[2:] == ["approval.approve", "approval.execute"]
    executed = _json(home, "audit", "list", "--action", "approval.execute", "--limit", "1")[0]
    assert executed["details"]["requested_by"] == "cli:officer-alice"
    assert executed["details"]["approved_by"] == "cli:officer-bob"
    assert _json(home, "audit", "verify")["ok"]


def test_a_rejected_request_cannot_be_approved(home):
    leaf = _json(home, "ca", "issue", "--profile", "department-signer", "--key", "dev-dept-signer",
                 "--cn", "Dual control")
    filed = _json(home, "ca", "revoke", leaf["serial"], "--reason", "superseded")
    rejected = _json(home, "approvals", "reject", filed["id"], "--reason", "wrong certificate", env=BOB)
    assert rejected["status"] == "rejected" and rejected["decision_reason"] == "wrong certificate"
    code, _, err = _run(home, "approvals", "approve", filed["id"], env=CAROL)
    assert code == 5 and "rejected" in err
    assert _json(home, "ca", "show", leaf["serial"])["status"] == "valid"
    # a new request for the same act may be filed once the old one is decided
    again = _json(home, "ca", "revoke", leaf["serial"], "--reason", "superseded")
    assert again["id"] != filed["id"]
    code, _, err = _run(home, "ca", "revoke", leaf["serial"], "--reason", "superseded")  # one pending at a time
    assert code == 5 and again["id"] in err
    assert "approval.reject" in _actions(home, f"approval:{filed['id']}")


@pytest.mark.parametrize("args, code, text", [
    (("keys", "destroy", "no-such-key", "1", "--yes"), 4, "no-such-key"),
    (("keys", "destroy", "dev-dept-signer", "99", "--yes"), 4, "99"),
    (("ca", "revoke", "abcdef", "--reason", "whim"), 6, "reason"),
    (("ca", "revoke", "abcdef"), 4, "no certificate"),
    (("seal", "revoke", "35010099999999"), 4, "no seal"),
    (("keys", "compromised", "--seal", "35010099999999", "--since", "2026-01-01T00:00:00Z"), 4, "no seal"),
    (("approvals", "approve", "0123456789abcdef"), 4, "no approval request"),
    (("approvals", "reject", "x" * 40), 4, "no approval request"),
])
def test_bad_requests_file_nothing(home, args, code, text):
    before = _json(home, "approvals", "list")
    got, _, err = _run(home, *args, env=BOB)
    assert got == code and text in err, err
    assert _json(home, "approvals", "list") == before


def test_compromise_time_in_the_future_is_refused(home):
    seal = next(s for s in _json(home, "seal", "list") if s["status"] == "active")
    future = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    code, _, err = _run(home, "keys", "compromised", "--seal", seal["esid"], "--since", future)
    assert code == 5 and "future" in err


def test_development_may_switch_dual_control_off(home):
    env = ALICE | {"ZHENGYIN_DUAL_CONTROL": "off"}
    _json(home, "keys", "generate", "dual-b", env=env)
    done = _json(home, "keys", "destroy", "dual-b", "1", "--yes", env=env)
    assert done["status"] == "executed" and "pending_approval" not in done
    assert _key_state(home, "dual-b", 1) == "destroyed"
    entry = _json(home, "audit", "list", "--subject", f"approval:{done['id']}")[0]
    assert entry["action"] == "approval.execute" and entry["details"]["approved_by"] is None
    request = _json(home, "audit", "list", "--subject", f"approval:{done['id']}", "--action",
                    "approval.request")[0]
    assert request["details"]["dual_control"] is False


def test_production_never_switches_it_off(monkeypatch):
    monkeypatch.setenv("ZHENGYIN_DUAL_CONTROL", "off")
    with pytest.raises(ConfigError, match="production"):
        dual_control_required(SimpleNamespace(production=True))
    assert dual_control_required(SimpleNamespace(production=False)) is False
    monkeypatch.setenv("ZHENGYIN_DUAL_CONTROL", "maybe")
    with pytest.raises(ConfigError):
        dual_control_required(SimpleNamespace(production=False))
    monkeypatch.delenv("ZHENGYIN_DUAL_CONTROL")
    assert dual_control_required(SimpleNamespace(production=True)) is True


# ---- the desk itself, on both databases ---------------------------------------------------------
@dataclass
class Officer:
    """What :class:`Approvals` needs of a domain: database, audit log, actor, settings."""

    db: object
    audit: AuditLog
    actor: str
    settings: object = field(default_factory=lambda: SimpleNamespace(production=False))

    def acting_as(self, actor: str) -> Officer:
        return replace(self, actor=actor)


RUNS: list[tuple[str, dict]] = []


def _check(domain, params):
    if params.get("target") is None:
        raise ApprovalRequestError("target is needed")
    return f"thing:{params['target']}", {"target": params["target"], "fail": bool(params.get("fail"))}


def _act(domain, params):
    RUNS.append((domain.actor, params))
    if params["fail"]:
        raise RuntimeError("the act went wrong")
    return {"done": params["target"]}


TEST_ACT = register_act(DangerousAct("test.act", "do", _check, _act))


def _desk(db, who: str) -> Approvals:
    return Approvals(Officer(db, AuditLog(db), who))


def test_expired_requests_cannot_be_approved(db):
    filed = _desk(db, "alice").request(TEST_ACT.action, {"target": "e"}, validity=timedelta(minutes=5))
    RUNS.clear()
    later = filed.request.requested_at + timedelta(minutes=6)
    with pytest.raises(ApprovalRefused, match="expired"):
        _desk(db, "bob").approve(filed.request.id, now=later)
    assert _desk(db, "bob").find(filed.request.id).status == "expired"
    assert not [r for r in RUNS if r[1]["target"] == "e"]
    assert [r.id for r in _desk(db, "bob").list(status="expired")] == [filed.request.id]
    newest = AuditLog(db).entries(subject=f"approval:{filed.request.id}", limit=1)[0]
    assert newest.action == "approval.expire"
    with pytest.raises(ApprovalRequestError):
        _desk(db, "alice").request(TEST_ACT.action, {"target": "e"}, validity=timedelta(days=30))


def test_two_officers_approving_at_once_run_the_act_once(db):
    target = f"race-{db.dialect}"
    filed = _desk(db, "alice").request(TEST_ACT.action, {"target": target})
    barrier, outcomes = threading.Barrier(4), []

    def approve(who: str) -> None:
        barrier.wait()
        try:
            outcomes.append(_desk(db, who).approve(filed.request.id).status)
        except ApprovalRefused as exc:
            outcomes.append(f"refused: {exc}")

    threads = [threading.Thread(target=approve, args=(w,)) for w in ("bob", "carol", "dave", "erin")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(outcomes)[0] == "executed" and sum(o == "executed" for o in outcomes) == 1, outcomes
    runs = [r for r in RUNS if r[1]["target"] == target]
    assert len(runs) == 1 and runs[0][0].startswith("alice, approved by ")
    assert AuditLog(db).verify().ok


def test_a_failing_act_is_recorded_as_failed(db):
    filed = _desk(db, "alice").request(TEST_ACT.action, {"target": "f", "fail": True})
    with pytest.raises(RuntimeError):
        _desk(db, "bob").approve(filed.request.id)
    row = _desk(db, "bob").find(filed.request.id)
    assert row.status == "failed" and "went wrong" in row.result["error"]
    with pytest.raises(ApprovalRefused):
        _desk(db, "carol").approve(filed.request.id)
    assert [e.details["outcome"] for e in AuditLog(db).entries(action="approval.execute",
                                                                 subject=f"approval:{filed.request.id}")] == ["failed"]


def test_unknown_acts_and_requests(db):
    with pytest.raises(ApprovalRequestError, match="not an act under dual control"):
        _desk(db, "alice").request("keys.nuke", {})
    with pytest.raises(ApprovalRequestError):
        _desk(db, "alice").request(TEST_ACT.action, {})
    with pytest.raises(ApprovalNotFound):
        _desk(db, "bob").approve("ffffffffffffffff")
    assert _desk(db, "bob").list() == []
