"""The audit export for an external auditor: every entry with its hash chain, re-verifiable
offline (ledger.audit.verify_export, or SM3 by hand with OpenSSL); an edited, deleted, inserted,
reordered or cut-off entry is found."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
from datetime import UTC, datetime

import pytest

from hsm.sm3 import sm3
from ledger.audit import AuditLog, export_jsonl, verify_export
from support.cli import run_cli


@pytest.fixture
def exported(db) -> tuple[list[str], str]:
    audit = AuditLog(db)
    for n in range(6):
        audit.record("test.act", actor=f"officer-{n % 2}", subject=f"thing:{n}", details={"n": n, "名": "审计"})
    out = io.StringIO()
    trailer = export_jsonl(db, out)
    assert trailer["entries"] == 6 and trailer["head_hash"] == audit.verify().head_hash
    return out.getvalue().splitlines(), trailer["head_hash"]


def _with(lines: list[str], index: int, change) -> list[str]:
    item = json.loads(lines[index])
    change(item)
    return [*lines[:index], json.dumps(item, ensure_ascii=False), *lines[index + 1:]]


def test_an_untouched_export_verifies(exported):
    lines, head = exported
    report = verify_export(lines, expected_head=head)
    assert report.ok and report.entries == 6 and report.head_hash == head


def _edit_payload(item):
    item["payload"] = item["payload"].replace('"n":2', '"n":7')


def _edit_and_rehash(item):
    _edit_payload(item)
    item["hash"] = sm3(item["payload"].encode()).hex()


@pytest.mark.parametrize("tamper, problem", [
    (lambda lines: _with(lines, 3, _edit_payload), "does not match its hash"),
    (lambda lines: _with(lines, 3, _edit_and_rehash), "does not link"),
    (lambda lines: [*lines[:3], *lines[4:]], "missing or out of order"),          # a row deleted
    (lambda lines: [*lines[:2], lines[3], lines[2], *lines[4:]], "missing or out of order"),
    (lambda lines: [*lines[:4], lines[3], *lines[4:]], "missing or out of order"),  # a row duplicated
    (lambda lines: lines[:-1], "cut off"),                                          # no trailer
    (lambda lines: [*lines[:-2], lines[-1]], "trailer does not match"),             # last row deleted
    (lambda lines: [*lines, lines[1]], "after the trailer"),
    (lambda lines: ["{}", *lines[1:]], "known format"),
    (lambda lines: [], "no header"),
    (lambda lines: _with(lines, 2, lambda item: item.pop("hash")), "not an entry"),
])
def test_tampering_is_found(exported, tamper, problem):
    lines, head = exported
    report = verify_export(tamper(list(lines)), expected_head=head)
    assert not report.ok and problem in report.problem, report


def test_a_consistently_truncated_export_is_found_against_the_known_head(exported):
    lines, head = exported
    trailer = json.loads(lines[-1])
    last_kept = json.loads(lines[-3])
    trailer.update(entries=5, head_hash=last_kept["hash"])
    cut = [*lines[:-2], json.dumps(trailer)]
    assert verify_export(cut).ok  # self-consistent: only the head known out of band tells
    report = verify_export(cut, expected_head=head)
    assert not report.ok and "expected head" in report.problem


def test_an_export_from_a_time_verifies_from_there(db):
    audit = AuditLog(db)
    audit.record("test.early", actor="a", subject="s")
    cut = datetime.now(UTC)
    for n in range(3):
        audit.record("test.late", actor="a", subject="s", details={"n": n})
    out = io.StringIO()
    trailer = export_jsonl(db, out, since=cut)
    lines = out.getvalue().splitlines()
    assert trailer["entries"] == 3 and json.loads(lines[0])["after_hash"] != "0" * 64
    assert verify_export(lines, expected_head=audit.verify().head_hash).ok


def test_each_entry_rehashes_with_the_openssl_cli(exported, tmp_path):
    """An auditor without this software: SM3 of each payload with `openssl dgst -sm3`."""
    if shutil.which("openssl") is None:
        pytest.skip("no openssl CLI")
    lines, _ = exported
    item = json.loads(lines[1])
    path = tmp_path / "payload"
    path.write_bytes(item["payload"].encode("utf-8"))
    run = subprocess.run(["openssl", "dgst", "-sm3", "-r", str(path)], capture_output=True, text=True, timeout=30)
    if run.returncode != 0:
        pytest.skip(f"this openssl has no SM3: {run.stderr.strip()}")
    assert run.stdout.split()[0] == item["hash"]


def test_export_and_verify_on_the_command_line(tmp_path):
    home = tmp_path / "home"
    for args in (("init",), ("keys", "generate", "export-test")):
        code, _, err = run_cli(home, *args)
        assert code == 0, err
    out = tmp_path / "audit.jsonl"
    code, printed, err = run_cli(home, "audit", "export", "--out", str(out), "--json")
    assert code == 0, err
    trailer = json.loads(printed)
    code, printed, _ = run_cli(home, "audit", "verify", "--file", str(out), "--head", trailer["head_hash"], "--json")
    assert code == 0 and json.loads(printed)["ok"]
    assert (json.loads(printed)["first_seq"], json.loads(printed)["after_hash"]) == (1, "0" * 64)
    code, printed, _ = run_cli(home, "audit", "verify", "--file", str(out))
    assert code == 0 and f"from entry 1 (after {'0' * 64})" in " ".join(printed.split())
    lines = out.read_text(encoding="utf-8").splitlines()
    index = next(i for i, line in enumerate(lines) if "export-test" in line)
    edited = _with(lines, index, lambda item: item.update(payload=item["payload"].replace("export-test", "x")))
    out.write_text("\n".join(edited), encoding="utf-8")
    code, printed, _ = run_cli(home, "audit", "verify", "--file", str(out), "--json")
    assert code == 1 and not json.loads(printed)["ok"]
    # the export itself is audited
    code, printed, _ = run_cli(home, "audit", "list", "--action", "audit.export", "--json")
    assert code == 0 and json.loads(printed)[0]["details"]["entries"] == trailer["entries"]
    code, _, err = run_cli(home, "audit", "export", "--out", str(out), "--format", "csv")
    assert code == 2


def _drop_first(lines: list[str], n: int) -> list[str]:
    """Delete the first ``n`` entries and edit header and trailer to match them: self-consistent."""
    header, entries, trailer = json.loads(lines[0]), lines[1:-1], json.loads(lines[-1])
    kept = entries[n:]
    header["after_hash"] = json.loads(json.loads(kept[0])["payload"])["prev"]
    trailer.update(entries=len(kept), first_seq=json.loads(kept[0])["seq"])
    return [json.dumps(header), *kept, json.dumps(trailer)]


def test_entries_deleted_from_the_start_of_a_whole_export_are_found(exported):
    lines, head = exported
    for cut in (_drop_first(lines, 2), [lines[0], *_drop_first(lines, 2)[1:]]):
        report = verify_export(cut, expected_head=head)  # the head matches: only the start tells
        assert not report.ok and "removed from its start" in report.problem, report
    bare = [lines[0], *lines[3:]]  # deleted, nothing else edited
    report = verify_export(bare, expected_head=head)
    assert not report.ok and "removed from its start" in report.problem


def test_the_trailer_states_where_the_export_starts(exported):
    lines, head = exported
    trailer = json.loads(lines[-1])
    trailer["first_seq"] = 2
    report = verify_export([*lines[:-1], json.dumps(trailer)], expected_head=head)
    assert not report.ok and "starts at entry 2" in report.problem


def test_the_report_says_where_the_checked_entries_start(db):
    audit = AuditLog(db)
    audit.record("test.early", actor="a", subject="s")
    cut = datetime.now(UTC)
    audit.record("test.late", actor="a", subject="s")
    whole, part = io.StringIO(), io.StringIO()
    export_jsonl(db, whole)
    export_jsonl(db, part, since=cut)
    report = verify_export(whole.getvalue().splitlines())
    assert report.ok and (report.first_seq, report.after_hash) == (1, "0" * 64)
    report = verify_export(part.getvalue().splitlines())
    assert report.ok and report.first_seq == 2 and report.after_hash == audit.entries(limit=2)[1].hash
    assert report.as_dict()["first_seq"] == 2
