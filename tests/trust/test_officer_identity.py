"""Who a security officer is (review of issue 7's dual control): the OS account, never LOGNAME or
USER; in production only the accounts in ``[officers] names`` (not root) may request, approve or
reject, ZHENGYIN_ACTOR is refused and ZHENGYIN_OFFICERS cannot widen the list; and a home whose
file says production cannot be switched back to development by the environment."""

from __future__ import annotations

import json
import pwd
from dataclasses import replace

import pytest

from ledger.config import ConfigError, load_settings
from support.cli import run_cli
from trust.approvals import ApprovalRefused, Approvals
from trust.domain import ActorError, TrustDomain, default_actor

ME = pwd.getpwuid(__import__("os").geteuid()).pw_name


@pytest.fixture
def no_actor_env(monkeypatch):
    for name in ("ZHENGYIN_ACTOR", "ZHENGYIN_ENV", "ZHENGYIN_OFFICERS", "ZHENGYIN_DUAL_CONTROL"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def home(tmp_path, no_actor_env):
    code, _, err = run_cli(tmp_path, "init")
    assert code == 0, err
    return tmp_path


def _make_production(home, officers=("officer-alice", "officer-bob")) -> None:
    path = home / "zhengyin.toml"
    text = path.read_text(encoding="utf-8").replace('env = "development"', 'env = "production"')
    names = ", ".join(f'"{n}"' for n in officers)
    path.write_text(text + f"\n[officers]\nnames = [{names}]\n", encoding="utf-8")


def _generate(home, label: str) -> None:
    code, _, err = run_cli(home, "keys", "generate", label)
    assert code == 0, err


def _domain(home, actor: str) -> TrustDomain:
    return TrustDomain.open(str(home), actor=actor)


# ---- the identity -------------------------------------------------------------------------------
def test_logname_and_user_do_not_change_who_acts(monkeypatch, no_actor_env, tmp_path):
    monkeypatch.setenv("LOGNAME", "officer-bob")
    monkeypatch.setenv("USER", "officer-bob")
    settings = load_settings(tmp_path, environ={})
    assert default_actor(settings) == f"cli:{ME}"
    assert default_actor(replace(settings, env="production")) == f"cli:{ME}"


def test_the_actor_override_is_for_development_only(monkeypatch, no_actor_env, tmp_path):
    monkeypatch.setenv("ZHENGYIN_ACTOR", "officer-bob")
    settings = load_settings(tmp_path, environ={})
    assert default_actor(settings) == "cli:officer-bob"
    with pytest.raises(ActorError, match="only in development"):
        default_actor(replace(settings, env="production"))
    monkeypatch.setenv("ZHENGYIN_ACTOR", "bob approved by: alice")
    with pytest.raises(ActorError, match="account name"):
        default_actor(settings)


def test_logname_cannot_make_the_requester_a_second_officer(home, monkeypatch):
    """The reviewer's case: ``LOGNAME=bob zhengyin approvals approve ID`` by the requester."""
    _generate(home, "self-approve")
    code, out, err = run_cli(home, "keys", "destroy", "self-approve", "1", "--yes", "--json",
                             env={"LOGNAME": "officer-alice"})
    assert code == 0, err
    filed = json.loads(out)
    assert filed["requested_by"] == f"cli:{ME}"
    code, _, err = run_cli(home, "approvals", "approve", filed["id"], env={"LOGNAME": "officer-bob",
                                                                         "USER": "officer-bob"})
    assert code == 5 and "different security officer" in err
    code, out, _ = run_cli(home, "approvals", "show", filed["id"], "--json")
    assert json.loads(out)["status"] == "pending"


# ---- the officers' list -------------------------------------------------------------------------
def test_officers_from_the_file_and_the_environment(tmp_path):
    (tmp_path / "zhengyin.toml").write_text('[officers]\nnames = ["alice", "bob"]\n')
    assert load_settings(tmp_path, environ={}).officers == ("alice", "bob")
    # development: the variable replaces the list
    assert load_settings(tmp_path, environ={"ZHENGYIN_OFFICERS": "carol"}).officers == ("carol",)
    (tmp_path / "zhengyin.toml").write_text('[zhengyin]\nenv = "production"\n[officers]\nnames = ["alice", "bob"]\n')
    assert load_settings(tmp_path, environ={"ZHENGYIN_OFFICERS": "bob"}).officers == ("bob",)  # narrowed
    with pytest.raises(ConfigError, match="never widen"):
        load_settings(tmp_path, environ={"ZHENGYIN_OFFICERS": "alice,mallory"})
    with pytest.raises(ConfigError, match="never widen"):  # production from the variable: same rule
        load_settings(tmp_path, environ={"ZHENGYIN_ENV": "production", "ZHENGYIN_OFFICERS": "mallory"})
    for bad in ('names = "alice"', 'names = ["al ice"]', 'names = ["cli:bob"]', 'nmaes = ["alice"]'):
        (tmp_path / "zhengyin.toml").write_text(f"[officers]\n{bad}\n")
        with pytest.raises(ConfigError, match="officers"):
            load_settings(tmp_path, environ={})


def test_in_production_only_listed_officers_request_and_decide(home):
    _generate(home, "prod-destroy")
    _make_production(home)
    for outsider in ("cli:mallory", "cli:root"):
        domain = _domain(home, outsider)
        try:
            with pytest.raises(ApprovalRefused, match=r"not a security officer|root cannot"):
                Approvals(domain).request("keys.destroy", {"label": "prod-destroy", "version": 1})
            assert Approvals(domain).list() == []  # nothing filed
            assert domain.audit.entries(action="approval.refused", limit=1)[0].actor == outsider
        finally:
            domain.close()
    alice, bob, mallory = (_domain(home, f"cli:{n}") for n in ("officer-alice", "officer-bob", "mallory"))
    try:
        filed = Approvals(alice).request("keys.destroy", {"label": "prod-destroy", "version": 1})
        assert not filed.executed
        with pytest.raises(ApprovalRefused, match="not a security officer"):
            Approvals(mallory).approve(filed.request.id)
        with pytest.raises(ApprovalRefused, match="not a security officer"):
            Approvals(mallory).reject(filed.request.id)
        with pytest.raises(ApprovalRefused, match="different security officer"):
            Approvals(alice).approve(filed.request.id)
        assert Approvals(bob).find(filed.request.id).status == "pending"
        done = Approvals(bob).approve(filed.request.id)
        assert done.status == "executed" and done.decided_by == "cli:officer-bob"
    finally:
        for d in (alice, bob, mallory):
            d.close()


def test_in_production_without_a_list_nobody_is_an_officer(home):
    _generate(home, "no-list")
    _make_production(home, officers=())
    domain = _domain(home, "cli:officer-alice")
    try:
        with pytest.raises(ApprovalRefused, match="no security officers are configured"):
            Approvals(domain).request("keys.destroy", {"label": "no-list", "version": 1})
    finally:
        domain.close()


def test_on_a_production_command_line_the_os_account_decides(home):
    """This test runs as some OS account that is not listed (root in the CI container): LOGNAME,
    USER and ZHENGYIN_ACTOR naming a listed officer change nothing."""
    _generate(home, "prod-cli")
    _make_production(home)
    alice = _domain(home, "cli:officer-alice")
    try:
        filed = Approvals(alice).request("keys.destroy", {"label": "prod-cli", "version": 1}).request
    finally:
        alice.close()
    code, _, err = run_cli(home, "approvals", "approve", filed.id, env={"LOGNAME": "officer-bob",
                                                                      "USER": "officer-bob"})
    assert code == 5 and ("not a security officer" in err or "root cannot" in err)
    code, _, err = run_cli(home, "approvals", "approve", filed.id, env={"ZHENGYIN_ACTOR": "officer-bob"})
    assert code == 3 and "only in development" in err
    code, out, _ = run_cli(home, "approvals", "show", filed.id, "--json")
    assert json.loads(out)["status"] == "pending"


# ---- production is one-way ----------------------------------------------------------------------
def test_the_environment_cannot_downgrade_a_production_home(tmp_path):
    (tmp_path / "zhengyin.toml").write_text('[zhengyin]\nenv = "production"\n')
    assert load_settings(tmp_path, environ={}).production
    assert load_settings(tmp_path, environ={"ZHENGYIN_ENV": "production"}).production
    with pytest.raises(ConfigError, match="cannot downgrade"):
        load_settings(tmp_path, environ={"ZHENGYIN_ENV": "development"})
    # upgrading a development home from the environment still works
    (tmp_path / "zhengyin.toml").write_text('[zhengyin]\nenv = "development"\n')
    assert load_settings(tmp_path, environ={"ZHENGYIN_ENV": "production"}).production
    (tmp_path / "zhengyin.toml").write_text('[zhengyin]\nenv = "staging"\n')
    with pytest.raises(ConfigError, match=r"zhengyin\.env"):
        load_settings(tmp_path, environ={})


def test_dual_control_cannot_be_switched_off_by_downgrading_on_the_command_line(home):
    _generate(home, "prod-off")
    _make_production(home)
    code, _, err = run_cli(home, "keys", "destroy", "prod-off", "1", "--yes",
                           env={"ZHENGYIN_ENV": "development", "ZHENGYIN_DUAL_CONTROL": "off",
                                "ZHENGYIN_ACTOR": "officer-alice"})
    assert code == 3 and "cannot downgrade" in err
    code, out, _ = run_cli(home, "keys", "list", "--json", env={"ZHENGYIN_OFFICERS": "officer-alice"})
    assert code == 0, out
    assert next(k["state"] for k in json.loads(out) if k["label"] == "prod-off") == "active"
