"""The endpoint benchmark works on a tiny load (1-second runs, 4 connections, one worker): both
endpoints answered without errors, the table and the goal line written, its own section of
RESULTS.md replaced; wrk's output parsed as wrk prints it. It asserts no speed."""

from __future__ import annotations

import shutil

import pytest

from bench import verify_endpoint

WRK_OUTPUT = """Running 1s test @ http://127.0.0.1:8081/healthz
  2 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     7.12ms    2.03ms  31.50ms   85.21%
    Req/Sec     4.51k   312.77     5.01k    70.00%
  Latency Distribution
     50%    6.80ms
     75%    7.90ms
     90%    9.12ms
     99%    1.02s
  8981 requests in 1.00s, 3.01MB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 5
Requests/sec:   8960.12
Transfer/sec:      3.00MB
"""


def test_wrk_output_is_read_with_its_units():
    measured = verify_endpoint.parse_wrk(WRK_OUTPUT)
    assert measured["rps"] == 8960.12 and measured["requests"] == 8981
    assert measured["p50"] == 6.8 and measured["p90"] == 9.12 and measured["p99"] == 1020.0
    assert measured["non_2xx"] == 5 and measured["socket_errors"] == 3
    with pytest.raises(verify_endpoint.BenchError):
        verify_endpoint.parse_wrk("wrk: connection refused")


@pytest.mark.slow
def test_tiny_run_measures_both_endpoints_and_writes_its_section(tmp_path, monkeypatch):
    if shutil.which("wrk") is None:
        pytest.skip("wrk is not installed (sh .ci/debian-packages test)")
    result = verify_endpoint.measure(seconds=1, rounds=1, connections=4, workers=1, threads=1)
    for name in ("hello", "qr"):
        assert result[name]["rps"] > 0 and result[name]["requests"] > 0
        assert result[name]["non_2xx"] == 0 and result[name]["server_ms"] > 0
    assert result["qr"]["server_ms"] > result["hello"]["server_ms"]  # the page does real work
    text = verify_endpoint.table(result)
    assert "| hello world (`GET /healthz`) |" in text and "| QR check (`GET /V/{payload}`) |" in text
    assert "goal **met**" in text or "goal **missed**" in text

    results = tmp_path / "RESULTS.md"
    results.write_text("# B\n\n<!-- sm2-speed:begin -->\nsm2\n<!-- sm2-speed:end -->\n")
    monkeypatch.setattr(verify_endpoint, "RESULTS", results)
    verify_endpoint.write_results("first")
    verify_endpoint.write_results(text)
    written = results.read_text()
    assert written.count("## Public QR-check endpoint") == 1 and "first" not in written and text in written
    assert written.startswith("# B\n\n<!-- sm2-speed:begin -->\nsm2\n<!-- sm2-speed:end -->")
