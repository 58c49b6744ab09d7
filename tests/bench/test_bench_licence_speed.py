"""The licence benchmark works (tiny counts): it asserts no speed, only that it measures what it
says — fresh licences, the pipeline against its baselines, the steps, a real bulk run on two
workers with its memory — and writes its own section of RESULTS.md."""

from __future__ import annotations

import os

from bench import licence_speed
from ca.names import validate_credit_code
from licences.catalogue import Catalogue


def test_records_are_fresh_and_valid():
    records = licence_speed.Records()
    first, second = records.take(), records.take()
    assert first["source_id"] != second["source_id"]
    for key in ("统一社会信用代码", "名称", "住所", "经营范围"):
        assert first["data"][key] != second["data"][key]
    licence_type = Catalogue.load().get(licence_speed.BUSINESS)
    for record in (first, second):
        assert licence_type.errors(record["data"]) == []
        assert validate_credit_code(record["data"]["统一社会信用代码"])


def test_the_process_tree_is_measured():
    assert licence_speed._tree_rss(os.getpid()) > 10 * 2**20
    assert licence_speed._tree_rss(os.getppid()) >= licence_speed._tree_rss(os.getpid())


def test_measure_and_table(tmp_path, monkeypatch):
    result = licence_speed.measure(0.01, records=6, workers=2)
    pipeline, bulk = result["pipeline"], result["bulk"]
    assert set(pipeline["ms"]) == {"licence", "SM2 signature", "unsigned PDF", "unsigned OFD"}
    assert all(v > 0 for v in pipeline["ms"].values())
    assert pipeline["ms"]["licence"] > pipeline["ms"]["SM2 signature"]
    steps = pipeline["steps"]
    assert {"OFD sealed (1 SM2 signature)", "PDF signed (1 SM2 signature)",
            "stored and recorded (files, row, audit)"} <= set(steps)
    assert sum(v for *_, label, parent in licence_speed.STEPS if parent is None
               for v in [steps.get(label, 0.0)]) <= pipeline["steps_total"]
    assert bulk["issued"] == 6 and bulk["rejected"] == 0 and bulk["workers"] == 2
    assert bulk["peak_tree_rss"] > bulk["largest_process_rss"] > 0
    assert bulk["cpu_seconds"] > 0 and set(pipeline["cpu_ms"]) == set(pipeline["ms"])
    assert all(v > 0 for v in pipeline["cpu_ms"].values())

    text = licence_speed.table(result)
    assert "| licence: OFD + PDF + QR + 2 seal signatures + registry commit |" in text
    assert "× one SM2 signature" in text and "of which CMS SignedData built" in text
    assert "**Bulk conversion**" in text and "peak RSS, process tree" in text
    assert "CPU ms per licence" in text and "per CPU-second" in text

    results = tmp_path / "RESULTS.md"
    results.write_text("# B\n\nintro\n<!-- pdf-speed:begin -->\npdf\n<!-- pdf-speed:end -->\n")
    monkeypatch.setattr(licence_speed, "RESULTS", results)
    licence_speed.write_results("first")
    licence_speed.write_results(text)
    written = results.read_text()
    assert written.count("## Licences") == 1 and "first" not in written and text in written
    assert written.startswith("# B\n\nintro\n<!-- pdf-speed:begin -->\npdf\n")
