"""Publishes that race: several processes publishing at once take turns (the file lock), get
distinct, growing versions, make one signer key and certificate, and leave a matching list and
signature under every name; the database refuses a version that is not newer even when the
lock is bypassed; a publish waiting too long for the lock says so and changes nothing."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ca.crl import load_crl
from support.cli import run_cli
from trust.domain import TrustDomain
from trust.trust_list import (
    AUDIT_ACTION,
    SIGNER_KEY_LABEL,
    SIGNER_PROFILE,
    TrustListError,
    exclusive_publish,
    publish,
    verify_trust_list,
)

REPO = Path(__file__).resolve().parents[2]

#: Each process loads everything first, then waits for the start file, so they publish at once.
PUBLISHER = """
import json, os, sys, time
from trust.domain import TrustDomain
from trust.trust_list import publish
home, go = sys.argv[1], sys.argv[2]
td = TrustDomain.open(home)
td.ca.certificates()
while not os.path.exists(go):
    time.sleep(0.005)
report = publish(td)
print(json.dumps({"version": report.version, "signer": report.signer_serial}))
td.close()
"""


@pytest.fixture
def home(tmp_path):
    code, _, err = run_cli(tmp_path, "init")
    assert code == 0, err
    return tmp_path


def _crls(home: Path) -> list:
    return [load_crl((home / "public" / "crl" / f"{w}.crl").read_bytes()) for w in ("root", "issuing")]


@pytest.mark.slow
def test_parallel_publishes_take_turns(home, tmp_path_factory):
    go = tmp_path_factory.mktemp("start") / "go"
    processes = [subprocess.Popen([sys.executable, "-c", PUBLISHER, str(home), str(go)], cwd=REPO,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(4)]
    time.sleep(3)  # let them all load and wait at the start line
    go.touch()
    results = []
    for process in processes:
        out, err = process.communicate(timeout=300)
        assert process.returncode == 0, err
        results.append(json.loads(out.strip().splitlines()[-1]))
    versions = sorted(r["version"] for r in results)
    assert versions == [1, 2, 3, 4], versions  # none reused, none skipped
    assert len({r["signer"] for r in results}) == 1  # one signer, made once (no KeyExists)
    td = TrustDomain.open(str(home))
    try:
        audited = [e.details["version"] for e in reversed(td.audit.entries(action=AUDIT_ACTION, limit=50))]
        assert audited == [1, 2, 3, 4]  # in the order the audit chain recorded them: never backwards
        assert len(td.ca.certificates(profile=SIGNER_PROFILE)) == 1
        assert [v.version for v in td.keys.versions(SIGNER_KEY_LABEL)] == [1]
        root = td.ca.chain()[1]
    finally:
        td.close()
    public = home / "public"
    content, signature = (public / "trust-list.json").read_bytes(), (public / "trust-list.p7s").read_bytes()
    assert json.loads(content)["version"] == 4
    assert verify_trust_list(content, signature, [root], crls=_crls(home)).ok
    for version in versions:
        pair = ((public / f"trust-list-{version}.json").read_bytes(),
                (public / f"trust-list-{version}.p7s").read_bytes())
        result = verify_trust_list(*pair, [root], crls=_crls(home), revocation="off")
        assert result.ok and result.document["version"] == version


def test_the_database_refuses_a_version_that_is_not_newer(home, monkeypatch):
    """Two hosts sharing the database (their file locks apart) that both chose version N."""
    import trust.trust_list as trust_list

    td = TrustDomain.open(str(home))
    try:
        first = publish(td)
        before = {p.name: p.read_bytes() for p in (home / "public").iterdir() if p.is_file()}
        entries = len(td.audit.entries(limit=1000))
        monkeypatch.setattr(trust_list, "_audited_version", lambda td: 0)
        monkeypatch.setattr(trust_list, "_file_version", lambda directory: 0)  # it reads a stale state
        with pytest.raises(TrustListError, match="published meanwhile"):
            publish(td)
        after = {p.name: p.read_bytes() for p in (home / "public").iterdir() if p.is_file()}
        assert after == before  # nothing renamed into place, no staged file left behind
        assert len(td.audit.entries(limit=1000)) == entries  # the audit entry was rolled back
        assert td.audit.verify().ok
        assert json.loads(after["trust-list.json"])["version"] == first.version
    finally:
        td.close()


def test_a_publish_waiting_too_long_for_the_lock_changes_nothing(home, monkeypatch):
    import trust.trust_list as trust_list

    monkeypatch.setattr(trust_list, "LOCK_TIMEOUT", 0.3)
    td = TrustDomain.open(str(home))
    try:
        with exclusive_publish(home / "public"):  # another publish holds it
            started = time.monotonic()
            with pytest.raises(TrustListError, match="another `zhengyin publish`"):
                publish(td)
            assert time.monotonic() - started >= 0.3
        assert not (home / "public" / "trust-list.json").exists()
        assert td.audit.entries(action=AUDIT_ACTION) == []
        assert publish(td).version == 1  # free again
    finally:
        td.close()
