"""Bulk conversion end to end on a development home: JSONL and CSV in, licences in the library
exactly once, every rejected record in the report with its line and reasons, bad files refused
before anything is issued, and a run killed with SIGKILL resumed without a duplicate."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from ca.names import credit_code_check_character
from keys_dev.domain import DEMO_DEPARTMENT_CODE
from licences.catalogue import Catalogue
from licences.registry import LicenceRecord
from support.cli import run_cli
from trust.domain import TrustDomain

BUSINESS = "11100000MB0000019L001"
ZHENGYIN = Path(sys.executable).with_name("zhengyin")


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    path = tmp_path_factory.mktemp("batch-home")
    code, _, err = run_cli(path, "init")
    assert code == 0, err
    return path


@pytest.fixture(scope="module")
def example() -> dict:
    return dict(Catalogue.load().get(BUSINESS).example)


def credit_code(prefix: str, number: int) -> str:
    first = f"{prefix}{number:0{17 - len(prefix)}d}"
    return first + credit_code_check_character(first)


def business(example: dict, prefix: str, number: int) -> dict:
    """A business licence of its own: the credit code is the licence number, unique per holder."""
    return example | {"统一社会信用代码": credit_code(prefix, number),
                      "名称": f"示例{prefix}第{number}号有限公司"}


def recorded(home, prefix: str) -> dict[str, int]:
    """source_id -> how many licences the library holds for it, for the source IDs of one test."""
    domain = TrustDomain.open(str(home))
    try:
        with domain.db.transaction() as s:
            rows = s.execute(select(LicenceRecord.source_id, func.count())
                             .where(LicenceRecord.source_id.like(f"{prefix}-%"))
                             .group_by(LicenceRecord.source_id))
            return {source: count for source, count in rows}
    finally:
        domain.close()


def report_lines(path: Path) -> tuple[list[dict], dict]:
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert "summary" in lines[-1] and all("summary" not in line for line in lines[:-1])
    return lines[:-1], lines[-1]["summary"]


def batch(home, *args: str) -> tuple[int, dict | None, str]:
    code, out, err = run_cli(home, "licence", "batch", *args, "--json")
    try:
        return code, json.loads(out), err
    except json.JSONDecodeError:
        return code, None, err


def test_jsonl_issues_good_records_and_reports_every_bad_one(home, example, tmp_path):
    good = [{"source_id": f"J-{i}", "data": business(example, "913501J", i)} for i in range(5)]
    lines = [json.dumps(r, ensure_ascii=False) for r in good]
    wrong = example | {"统一社会信用代码": "123", "成立日期": "2019-13-40", "多余": 1}
    lines += [
        "{not json",                                                                        # 6
        json.dumps({"data": business(example, "913501J", 90)}, ensure_ascii=False),         # 7: no source_id
        json.dumps({"source_id": "J-1", "data": business(example, "913501J", 91)}, ensure_ascii=False),  # 8
        json.dumps({"source_id": "J-bad", "data": wrong}, ensure_ascii=False),             # 9
        "",                                                                                 # blank: skipped
        json.dumps({"source_id": "J-extra", "data": {}, "note": "x"}),                      # 11
        json.dumps(["J-list"]),                                                             # 12
    ]
    source = tmp_path / "legacy.jsonl"
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")

    code, summary, err = batch(home, str(source), "--type", BUSINESS, "--workers", "1")
    assert code == 1, err
    assert summary["read"] == 11 and summary["issued"] == 5 and summary["rejected"] == 6, summary
    assert summary["already_issued"] == 0 and summary["report"] == str(tmp_path / "legacy.report.jsonl")

    rejected, written = report_lines(tmp_path / "legacy.report.jsonl")
    assert written["issued"] == 5 and written["rejected"] == 6 and written["elapsed_seconds"] > 0
    by_line = {r["line"]: r for r in rejected}
    assert sorted(by_line) == [6, 7, 8, 9, 11, 12]
    assert by_line[6]["reasons"][0]["validator"] == "json"
    assert by_line[7]["source_id"] is None and by_line[7]["reasons"][0]["path"] == "$.source_id"
    assert by_line[8]["source_id"] == "J-1" and "line 2" in by_line[8]["reasons"][0]["message_en"]
    paths = {r["path"] for r in by_line[9]["reasons"]}
    assert {"$.统一社会信用代码", "$.成立日期"} <= paths and len(by_line[9]["reasons"]) >= 3
    assert all(r["message_zh"] and r["message_en"] for r in by_line[9]["reasons"])
    assert any("统一社会信用代码" in r["message_zh"] for r in by_line[9]["reasons"])
    assert by_line[11]["source_id"] == "J-extra" and "note" in by_line[11]["reasons"][0]["message_en"]
    assert recorded(home, "J") == {f"J-{i}": 1 for i in range(5)}

    # Run again: nothing new is issued, the same records are rejected for the same reasons.
    code, again, err = batch(home, str(source), "--type", BUSINESS, "--workers", "1")
    assert code == 1, err
    assert (again["issued"], again["already_issued"], again["rejected"]) == (0, 5, 6)
    assert recorded(home, "J") == {f"J-{i}": 1 for i in range(5)}


def test_csv_with_typed_cells_two_workers_and_documents_written(home, example, tmp_path):
    fields = list(example)
    source = tmp_path / "legacy.csv"
    with source.open("w", encoding="utf-8-sig", newline="") as handle:  # Excel writes a BOM
        writer = csv.writer(handle)
        writer.writerow(["source_id", *fields])
        for i in range(4):
            data = business(example, "913501C", i)
            if i == 0:
                data["注册资本"] = ""             # empty cell: absent (an optional field)
            if i == 1:
                data["经营范围"] = "第一行\n第二行"  # a quoted cell across lines: a field error
            writer.writerow([f"C-{i}", *(data.get(f, "") for f in fields)])
        writer.writerow(["C-short", "only one cell"])
        writer.writerow(["C-4", *(business(example, "913501C", 4).get(f, "") for f in fields)])
    out = tmp_path / "documents"

    code, summary, err = batch(home, str(source), "--type", BUSINESS, "--workers", "2", "--out", str(out),
                               "--report", str(tmp_path / "rejects.jsonl"))
    assert code == 1, err
    assert (summary["read"], summary["issued"], summary["rejected"]) == (6, 4, 2), summary
    rejected, _ = report_lines(tmp_path / "rejects.jsonl")
    by_id = {r["source_id"]: r for r in rejected}
    assert set(by_id) == {"C-1", "C-short"}
    assert by_id["C-1"]["line"] == 3 and by_id["C-1"]["reasons"][0]["path"] == "$.经营范围"
    assert by_id["C-short"]["line"] == 7 and by_id["C-short"]["reasons"][0]["validator"] == "csv"
    assert recorded(home, "C") == {"C-0": 1, "C-2": 1, "C-3": 1, "C-4": 1}

    domain = TrustDomain.open(str(home))
    try:
        first = domain.licences.find_by_source(DEMO_DEPARTMENT_CODE, BUSINESS, "C-0")
    finally:
        domain.close()
    assert first is not None and "注册资本" not in first.data
    written = sorted(p.name for p in out.iterdir())
    assert len(written) == 8 and all(n.endswith((".ofd", ".pdf")) for n in written)
    stem = first.identifier.replace(".", "_")
    for kind in ("ofd", "pdf"):
        code, report, err = run_cli(home, "verify", str(out / f"{stem}.{kind}"), "--json")
        assert code == 0 and json.loads(report)["indication"] == "TOTAL_PASSED", err


@pytest.mark.parametrize("name, content, message", [
    ("gbk.jsonl", '{"source_id": "G-1", "data": {"名称": "示例"}}\n'.encode("gbk"), "not UTF-8"),
    ("empty.jsonl", b"\n  \n", "empty"),
    ("records.txt", b'{"source_id": "T-1", "data": {}}\n', ".jsonl"),
    ("header.csv", "source_id,名称,不存在的列\nH-1,示例,x\n".encode(), "不存在的列"),
    ("noid.csv", "编号,名称\n1,示例\n".encode(), "source_id column"),
])
def test_bad_files_are_refused_before_anything_is_issued(home, tmp_path, name, content, message):
    source = tmp_path / name
    source.write_bytes(content)
    code, _, err = run_cli(home, "licence", "batch", str(source), "--type", BUSINESS, "--workers", "1")
    assert code == 6 and message in err, err
    assert not (tmp_path / f"{source.stem}.report.jsonl").exists()


def test_a_directory_an_unknown_type_and_a_missing_file(home, tmp_path):
    code, _, err = run_cli(home, "licence", "batch", str(tmp_path), "--type", BUSINESS)
    assert code == 6 and "directory" in err
    source = tmp_path / "one.jsonl"
    source.write_text('{"source_id": "U-1", "data": {}}\n', encoding="utf-8")
    code, _, err = run_cli(home, "licence", "batch", str(source), "--type", "NOPE")
    assert code == 4 and "NOPE" in err
    code, _, err = run_cli(home, "licence", "batch", str(tmp_path / "missing.jsonl"), "--type", BUSINESS)
    assert code == 6 and "missing.jsonl" in err
    assert recorded(home, "U") == {}


def test_a_run_killed_with_sigkill_resumes_and_issues_each_record_exactly_once(home, example, tmp_path):
    count = 30
    source = tmp_path / "kill.jsonl"
    source.write_text("".join(json.dumps({"source_id": f"K-{i}", "data": business(example, "913501K", i)},
                                         ensure_ascii=False) + "\n" for i in range(count)), encoding="utf-8")
    command = [str(ZHENGYIN), "licence", "batch", str(source), "--type", BUSINESS, "--workers", "2",
               "--home", str(home), "--json"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    try:
        while sum(recorded(home, "K").values()) < 4:
            assert process.poll() is None, process.stderr.read().decode()
            assert time.monotonic() < deadline, "the batch recorded nothing within two minutes"
            time.sleep(0.05)
    finally:
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
    assert process.returncode == -signal.SIGKILL
    time.sleep(1.5)
    settled = recorded(home, "K")
    time.sleep(1.5)
    assert recorded(home, "K") == settled, "workers kept issuing after their parent was killed"
    assert 4 <= sum(settled.values()) < count and set(settled.values()) == {1}

    code, summary, err = batch(home, str(source), "--type", BUSINESS, "--workers", "2")
    assert code == 0, err
    assert summary["read"] == count and summary["rejected"] == 0
    assert summary["already_issued"] == len(settled) and summary["issued"] == count - len(settled)
    assert recorded(home, "K") == {f"K-{i}": 1 for i in range(count)}
