"""What makes the QR page cheap under load without making it stale: a worker keeps a QR text's
verification per signer-certificate list (re-read every trust_ttl, so a revoked signer still
stops verifying) and its whole answer while the register is unchanged (SQLite's data_version:
any commit, from this process or another, forgets it), keeps a bounded number of them, and
loads shared trust material once, not once per thread of a burst."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime

import pytest

import verify_api.licence_check as licence_check
from licences.qr_payload import QrVerification
from support.cli import issue_example, run_cli
from verify_api.licence_check import KeptAnswers, check_qr
from verify_api.records import PublicRecords

NOW = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)
CLI = "import sys; from trust.cli import main; sys.argv[0] = 'zhengyin'; main()"


def _counting(monkeypatch, *, readable: bool = True) -> list[str]:
    calls: list[str] = []

    def verify(text, signers, *, at):
        calls.append(text)
        return QrVerification((), claims=object() if readable else None)

    monkeypatch.setattr(licence_check, "verify_payload", verify)
    monkeypatch.setattr(licence_check, "_VERIFIED", KeptAnswers(size=3))
    return calls


def test_an_answer_is_kept_only_for_the_same_signer_list_and_register_version():
    kept, signers = KeptAnswers(size=8), [b"cert"]
    kept.put("QR-1", signers, 7, "answer")
    assert kept.get("QR-1", signers, 7) == (True, "answer")
    assert kept.get("QR-1", [b"cert"], 7) == (False, None)  # the list re-read (trust_ttl passed)
    assert kept.get("QR-1", signers, 8) == (False, None)  # something was committed meanwhile
    assert kept.get("QR-2", signers, 7) == (False, None)


def test_a_payload_is_verified_once_per_signer_list_and_day(monkeypatch):
    calls = _counting(monkeypatch)
    signers = [b"cert"]
    first = licence_check._verify("QR-1", signers, NOW)
    assert licence_check._verify("QR-1", signers, NOW) is first and calls == ["QR-1"]
    licence_check._verify("QR-1", [b"cert"], NOW)
    licence_check._verify("QR-1", signers, NOW.replace(day=3))  # another China day: verified again
    assert calls == ["QR-1"] * 3


def test_the_cache_is_bounded_and_keeps_no_unreadable_text(monkeypatch):
    calls = _counting(monkeypatch)
    signers = [b"cert"]
    for text in ("a", "b", "c", "d"):
        licence_check._verify(text, signers, NOW)
    licence_check._verify("a", signers, NOW)  # the least recently used went first
    assert calls == ["a", "b", "c", "d", "a"] and len(licence_check._VERIFIED._entries) == 3
    calls = _counting(monkeypatch, readable=False)
    licence_check._verify("garbage", signers, NOW)
    licence_check._verify("garbage", signers, NOW)
    assert calls == ["garbage", "garbage"] and not licence_check._VERIFIED._entries


@pytest.fixture(scope="module")
def issued_home(tmp_path_factory):
    home = tmp_path_factory.mktemp("qr-cache-home")
    code, _, err = run_cli(home, "init")
    assert code == 0, err
    issued = [issue_example(home, name, home / "out") for name in ("营业执照", "食品经营许可证")]
    return home, issued


def _payload(issued: dict) -> str:
    return issued["qr"].split("/V/", 1)[1]


def _counted_lookups(monkeypatch, records: PublicRecords) -> list[str]:
    lookups: list[str] = []
    find = records.find_by_qr

    def counted(identifier, nonce_hex):
        lookups.append(identifier)
        return find(identifier, nonce_hex)

    monkeypatch.setattr(records, "find_by_qr", counted)
    monkeypatch.setattr(licence_check, "_ANSWERS", KeptAnswers())
    return lookups


def test_the_register_is_read_again_after_any_commit_even_from_another_process(issued_home, monkeypatch):
    home, issued = issued_home
    records = PublicRecords(home, trust_ttl=60)
    try:
        lookups = _counted_lookups(monkeypatch, records)
        now = datetime.now(UTC)
        first = check_qr(records, _payload(issued[0]), now)
        assert first is not None and first.status_name == "valid"
        assert check_qr(records, _payload(issued[0]), now) is first and len(lookups) == 1
        # Another process revokes it: the very next check reads the register and says so.
        revoke = subprocess.run([sys.executable, "-c", CLI, "licence", "revoke", issued[0]["identifier"],
                                 "--reason", "测试", "--home", str(home)], capture_output=True, text=True,
                                env={k: v for k, v in os.environ.items() if not k.startswith("ZHENGYIN_")})
        assert revoke.returncode == 0, revoke.stderr
        revoked = check_qr(records, _payload(issued[0]), now)
        assert revoked is not None and revoked.status_name == "revoked" and len(lookups) == 2
    finally:
        records.close()


def test_without_a_register_version_every_check_reads_the_register(issued_home, monkeypatch):
    home, issued = issued_home
    records = PublicRecords(home, trust_ttl=60)
    try:
        lookups = _counted_lookups(monkeypatch, records)
        monkeypatch.setattr(records, "register_version", lambda: None)  # as on a database server
        now = datetime.now(UTC)
        for _ in range(3):
            assert check_qr(records, _payload(issued[1]), now) is not None
        assert len(lookups) == 3
    finally:
        records.close()


def test_shared_material_is_loaded_once_by_a_burst_of_threads(tmp_path):
    records = PublicRecords(tmp_path, trust_ttl=60)
    loads: list[int] = []

    def slow_load():
        loads.append(1)
        time.sleep(0.2)
        return ["signers"]

    results: list[list[str]] = []
    threads = [threading.Thread(target=lambda: results.append(records._cached("signers", slow_load)))
               for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(loads) == 1 and len(results) == 16 and all(r is results[0] for r in results)
    expired = PublicRecords(tmp_path, trust_ttl=0)  # a ttl of 0: loaded on every ask
    expired._cached("k", slow_load)
    expired._cached("k", slow_load)
    assert len(loads) == 3


def test_unreadable_text_is_not_kept_and_a_reopened_register_counts_afresh(issued_home, monkeypatch):
    home, _ = issued_home
    records = PublicRecords(home, trust_ttl=60)
    try:
        _counted_lookups(monkeypatch, records)
        now = datetime.now(UTC)
        assert check_qr(records, "not-a-qr-payload", now) is None
        assert not licence_check._ANSWERS._entries  # junk cannot push a busy code's answer out
        generation, _ = records.register_version()
        records.close()  # the version connection reopens: its data_version starts again
        assert records.register_version()[0] == generation + 1
    finally:
        records.close()


def test_a_register_that_cannot_be_read_is_a_database_error_not_a_crash(tmp_path, monkeypatch):
    from ledger.database import DatabaseError

    records = PublicRecords(tmp_path, trust_ttl=60)

    def broken():
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(records.domain.db.engine, "raw_connection", broken)
    with pytest.raises(DatabaseError, match="cannot be read"):
        records.register_version()
