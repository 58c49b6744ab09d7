"""The benchmark script itself works (tiny durations); it asserts no speed, only that it measures."""

from __future__ import annotations

from bench import sm2_speed


def test_measure_and_table_have_every_backend_and_ratio(tmp_path, monkeypatch):
    result = sm2_speed.measure(0.02)
    assert set(result["backends"]) >= {"pure"}
    for ops in result["backends"].values():
        assert set(ops) == {"sign", "verify (cached)", "verify (uncached)"}
        assert all(v > 0 for v in ops.values())
    text = sm2_speed.table(result)
    assert "| pure | verify (cached) |" in text
    results = tmp_path / "RESULTS.md"
    results.write_text(f"# B\n\nbefore\n{sm2_speed.BEGIN}\nold\n{sm2_speed.END}\nafter\n")
    monkeypatch.setattr(sm2_speed, "RESULTS", results)
    sm2_speed.write_results(text)
    written = results.read_text()
    assert "old" not in written and text in written and written.endswith("after\n") and "before" in written


def test_openssl_speed_is_parsed():
    rates = sm2_speed.openssl_rates(1)
    assert rates is None or (rates["sign"] > 0 and rates["verify"] > 0)
