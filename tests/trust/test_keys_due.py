"""``zhengyin keys due``: every seal and CA key in use against the rotation policy, with its age,
its limit and the command that rotates it; exit 0 when nothing is due, 1 when something is."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from ca.authority import utc_now
from seals.rotation_policy import key_ages, keys_due
from support.cli import run_cli
from trust.domain import TrustDomain


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    path = tmp_path_factory.mktemp("due-home")
    assert run_cli(path, "init")[0] == 0
    return path


def _config(home, rotation: str) -> None:
    path = home / "zhengyin.toml"
    text = path.read_text(encoding="utf-8").split("\n[rotation")[0]
    path.write_text(text + rotation, encoding="utf-8")


def _due(home, *args: str) -> tuple[int, dict]:
    code, out, err = run_cli(home, "keys", "due", *args, "--json")
    assert code in (0, 1), err
    return code, json.loads(out)


def _seals(home) -> list[dict]:
    return json.loads(run_cli(home, "seal", "list", "--json")[1])


def test_nothing_is_due_in_a_fresh_home(home):
    _config(home, "")
    code, report = _due(home)
    assert code == 0 and report["due"] == []
    assert report["checked"] == 2 + len([s for s in _seals(home) if s["status"] == "active"])
    code, out, _ = run_cli(home, "keys", "due")
    assert code == 0 and "nothing due" in out


def test_keys_reaching_their_limit_within_the_window_are_listed_with_what_to_run(home):
    _config(home, "")
    code, report = _due(home, "--within", "366")  # seals: 365 days; CAs: five years
    assert code == 1
    assert {d["kind"] for d in report["due"]} == {"seal"}
    assert len(report["due"]) == len([s for s in _seals(home) if s["status"] == "active"])
    first = report["due"][0]
    assert first["command"] == f"zhengyin keys rotate --seal {first['subject']}"
    assert first["max_age_days"] == 365 and not first["overdue"] and 364 < first["days_left"] <= 365
    assert first["keys"] == [f"seal-{first['subject']}-signer/v1"]
    code, out, _ = run_cli(home, "keys", "due", "--within", "366")
    assert code == 1 and first["command"] in out


def test_per_seal_and_per_ca_limits(home):
    es_id = _seals(home)[0]["esid"]
    _config(home, f'\n[rotation]\nseal_max_age_days = 365\n[rotation.seals]\n"{es_id}" = 30\n'
                  '[rotation.ca]\nissuing = 10\n')
    code, report = _due(home, "--within", "31")
    assert code == 1
    assert [(d["kind"], d["subject"]) for d in report["due"]] == [("ca", "issuing"), ("seal", es_id)]
    assert report["due"][0]["command"] == "zhengyin ca rotate issuing"
    assert report["policy"]["seals"] == {es_id: 30} and report["policy"]["ca"] == {"issuing": 10}
    _config(home, "")


def test_overdue_keys_and_a_rotation_starting_the_age_again(home):
    _config(home, "")
    td = TrustDomain.open(str(home))
    try:
        policy = td.settings.rotation
        later = utc_now() + timedelta(days=400)
        overdue = keys_due(td.seals, policy, now=later)
        assert overdue and all(a.overdue and a.kind == "seal" for a in overdue)
        assert all(a.age_days > 399 for a in overdue)
        target = overdue[0].subject
        from seals.rotation import rotate_seal

        rotation = rotate_seal(td.seals, target)
        ages = {a.subject: a for a in key_ages(td.seals, policy)}
        assert ages[target].keys == rotation.new_keys
        assert ages[target].created > min(a.created for a in overdue)  # the new key version's age
        with pytest.raises(ValueError):
            keys_due(td.seals, policy, within_days=-1)
    finally:
        td.close()


def test_a_revoked_seal_is_not_listed_and_a_bad_policy_stops_the_command(home):
    _config(home, "")
    td = TrustDomain.open(str(home))
    try:
        record = td.seals.apply("示例市市场监督管理局", "11350100MB0000000Y", "finance")
        td.seals.approve(record.es_id)
        td.seals.make(record.es_id)
        td.seals.revoke(record.es_id, "not needed")
    finally:
        td.close()
    _, report = _due(home, "--within", "366")
    assert record.es_id not in {d["subject"] for d in report["due"]}
    _config(home, "\n[rotation]\nseal_max_age_days = -3\n")
    code, _, err = run_cli(home, "keys", "due")
    assert code == 3 and "seal_max_age_days" in err
    _config(home, "")
    assert run_cli(home, "keys", "due", "--within", "-1")[0] == 2
