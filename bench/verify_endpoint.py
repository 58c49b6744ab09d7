"""The QR-check endpoint under load: requests/s and p99 at 64 connections, next to hello-world.

Run: ``python -m bench.verify_endpoint [--seconds S] [--rounds R] [--connections C] [--write]``;
``--write`` replaces the section in bench/RESULTS.md.

A fresh development home in a temporary directory (SQLite, the embedded default; the caller's
``ZHENGYIN_HOME`` and ``ZHENGYIN_DATABASE_URL`` are ignored) with one 营业执照 issued, served by
``zhengyin serve-verify --workers 2`` (uvicorn, two worker processes, access log on as deployed;
rate limits lifted, since every request comes from one address). Two endpoints of that one
server, measured by one client in turns (hello, QR, hello, QR, …; median of the rounds):

* **hello world**: ``GET /healthz`` — a constant JSON answer through the same middleware
  (security headers) and the same uvicorn: what the framework and the server cost;
* **QR check**: ``GET /V/{payload}`` — the page a phone opens from the licence's QR code:
  payload decoded, its SM2 signature verified against the department signer's certificate,
  the registry row read, the page rendered.

The goal (issue 6): the QR check at no less than half the hello-world rate, p99 ≤ 20 ms.

The client is ``wrk`` (Debian's package; C, epoll, ``-t`` threads): the load generator must not
be the bottleneck, and wrk spends a small fraction of a core on a few thousand requests a second.
Its CPU time is measured (``getrusage`` of the finished child) and reported next to the rates,
so a reader can tell whether the client competed with the server for the machine's cores.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from bench.results import RESULTS, cpu_model, replace_section

BEGIN, END = "<!-- verify-endpoint:begin -->", "<!-- verify-endpoint:end -->"
BUSINESS = "11100000MB0000019L001"
GOAL_RATIO, GOAL_P99_MS = 0.5, 20.0
CLI = "import sys; from trust.cli import main; sys.argv[0] = 'zhengyin'; main()"
UNLIMITED = {"ZHENGYIN_VERIFY_RATE": "1000000", "ZHENGYIN_VERIFY_BURST": "1000000"}
_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


class BenchError(RuntimeError):
    """The benchmark could not run (no wrk, the server did not start, errors under load)."""


def _environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("ZHENGYIN_HOME", "ZHENGYIN_DATABASE_URL")}
    return env | UNLIMITED


def _cli(home: Path, *args: str) -> str:
    result = subprocess.run([sys.executable, "-c", CLI, *args, "--home", str(home)], capture_output=True,
                            text=True, env=_environment(), timeout=600)
    if result.returncode != 0:
        raise BenchError(f"zhengyin {' '.join(args)} failed: {result.stderr[-1000:]}")
    return result.stdout


def prepare_home(home: Path) -> str:
    """A development home with one licence issued; the path (``/V/…``) of its QR code."""
    from licences.catalogue import Catalogue

    _cli(home, "init")
    data = home / "licence.json"
    data.write_text(json.dumps(Catalogue.load().get(BUSINESS).example, ensure_ascii=False), encoding="utf-8")
    issued = json.loads(_cli(home, "licence", "issue", "--type", BUSINESS, "--data", str(data),
                             "--out", str(home / "issued"), "--json"))
    return "/V/" + issued["qr"].split("/V/", 1)[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def serve(home: Path, workers: int):
    """``zhengyin serve-verify --workers N`` on a free port; yields its base URL once it answers."""
    port = _free_port()
    log = (home / "serve-verify.log").open("wb")
    process = subprocess.Popen([sys.executable, "-c", CLI, "serve-verify", "--home", str(home), "--port",
                                str(port), "--workers", str(workers)], stdout=log, stderr=subprocess.STDOUT,
                               env=_environment())
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{base}/healthz", timeout=1) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                log_text = (home / "serve-verify.log").read_text()[-1000:]
                raise BenchError(f"serve-verify did not start: {log_text}")
            time.sleep(0.2)
        yield base, process.pid
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def server_cpu(root: int) -> float:
    """CPU seconds (user + system) used so far by process ``root`` and all its descendants (the
    uvicorn supervisor and its workers), from /proc."""
    ticks = os.sysconf("SC_CLK_TCK")
    parents: dict[int, int] = {}
    used: dict[int, float] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # a process that ended meanwhile
        pid = int(stat.parent.name)
        parents[pid] = int(fields[1])
        used[pid] = (int(fields[11]) + int(fields[12])) / ticks
    tree, grown = {root}, True
    while grown:
        grown = False
        for pid, parent in parents.items():
            if parent in tree and pid not in tree:
                tree.add(pid)
                grown = True
    return sum(used.get(pid, 0.0) for pid in tree)


def _ms(text: str) -> float:
    number, unit = re.fullmatch(r"([0-9.]+)(us|ms|s)", text).groups()
    return float(number) * _UNITS[unit]


def parse_wrk(output: str) -> dict[str, float]:
    """Requests/s, latency percentiles (ms) and error counts from ``wrk --latency`` output."""
    rate = re.search(r"Requests/sec:\s+([0-9.]+)", output)
    percentiles = dict(re.findall(r"^\s+(50|75|90|99)%\s+([0-9.]+(?:us|ms|s))\s*$", output, re.M))
    if rate is None or "99" not in percentiles:
        raise BenchError(f"cannot read wrk's output:\n{output}")
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    requests = re.search(r"(\d+) requests in", output)
    return {"rps": float(rate[1]), "p50": _ms(percentiles["50"]), "p90": _ms(percentiles["90"]),
            "p99": _ms(percentiles["99"]), "requests": int(requests[1]) if requests else 0,
            "non_2xx": int(non_2xx[1]) if non_2xx else 0,
            "socket_errors": sum(map(int, socket_errors.groups())) if socket_errors else 0}


def run_wrk(url: str, seconds: float, connections: int, threads: int, server: int | None = None
            ) -> dict[str, float]:
    """One wrk run; adds the client's CPU time (user + system seconds) as ``client_cpu`` and,
    given the server's pid, the server's CPU milliseconds per request as ``server_ms``."""
    wrk = shutil.which("wrk")
    if wrk is None:
        raise BenchError("wrk is not installed (Debian package wrk: sh .ci/debian-packages test)")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    server_before = server_cpu(server) if server else 0.0
    command = [wrk, f"-t{threads}", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--latency",
               "--timeout", "10s", url]
    result = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode != 0:
        raise BenchError(f"wrk failed: {result.stderr}")
    measured = parse_wrk(result.stdout)
    measured["client_cpu"] = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    measured["seconds"] = max(1, round(seconds))
    if server and measured["requests"]:
        measured["server_ms"] = (server_cpu(server) - server_before) * 1000 / measured["requests"]
    return measured


def _median(runs: list[dict[str, float]]) -> dict[str, float]:
    return {key: statistics.median(r[key] for r in runs) for key in runs[0]}


def measure(seconds: float = 5.0, rounds: int = 3, connections: int = 64, workers: int = 2,
            threads: int = 2) -> dict:
    """Both endpoints of one serve-verify, in turns; the medians and the run's circumstances."""
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="zhengyin-bench-verify-") as temp:
        home = Path(temp)
        qr_path = prepare_home(home)
        with serve(home, workers) as (base, pid):
            urls = {"hello": f"{base}/healthz", "qr": f"{base}{qr_path}"}
            for url in urls.values():  # warm up: caches, combs of the signer's key, connections
                run_wrk(url, 1, connections, threads)
            runs: dict[str, list] = {"hello": [], "qr": []}
            for _ in range(rounds):
                for name, url in urls.items():
                    runs[name].append(run_wrk(url, seconds, connections, threads, pid))
        for name, measured in runs.items():
            bad = sum(r["non_2xx"] + r["socket_errors"] for r in measured)
            if bad:
                raise BenchError(f"{name}: {bad} failed requests under load (non-2xx or socket errors)")
    return {"when": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), "cpu": cpu_model(),
            "cores": os.cpu_count(), "python": platform.python_version(), "seconds": seconds,
            "rounds": rounds, "connections": connections, "workers": workers, "threads": threads,
            "load": (load_before, os.getloadavg()[0]),
            "hello": _median(runs["hello"]), "qr": _median(runs["qr"])}


def table(result: dict) -> str:
    hello, qr = result["hello"], result["qr"]
    ratio = qr["rps"] / hello["rps"] if hello["rps"] else 0.0
    met = ratio >= GOAL_RATIO and qr["p99"] <= GOAL_P99_MS
    cpu_ratio = hello.get("server_ms", 0.0) / qr["server_ms"] if qr.get("server_ms") else 0.0
    before, after = result["load"]

    def row(label: str, m: dict[str, float]) -> str:
        cpu = m["client_cpu"] / m["seconds"]
        return (f"| {label} | {m['rps']:,.0f} | {m['p50']:.2f} | {m['p90']:.2f} | {m['p99']:.2f} | "
                f"{m.get('server_ms', 0.0):.2f} | {cpu:.2f} |")

    return "\n".join([
        f"Measured {result['when']} on {result['cpu']} ({result['cores']} cores), Python {result['python']}; "
        f"load average {before:.1f} before, {after:.1f} after.",
        f"`zhengyin serve-verify --workers {result['workers']}`, client `wrk -t{result['threads']} "
        f"-c{result['connections']} --latency` on the same machine; {result['rounds']} rounds of "
        f"{result['seconds']:g} s per endpoint, taken in turns, median.",
        "",
        "| endpoint | requests/s | p50 ms | p90 ms | p99 ms | server CPU ms / request | client CPU (cores) |",
        "|---|---:|---:|---:|---:|---:|---:|",
        row("hello world (`GET /healthz`)", hello),
        row("QR check (`GET /V/{payload}`)", qr),
        "",
        f"QR check / hello world: **{ratio:.2f}×** (goal ≥ {GOAL_RATIO}); "
        f"QR check p99 **{qr['p99']:.1f} ms** (goal ≤ {GOAL_P99_MS:g} ms): "
        f"goal **{'met' if met else 'missed'}**. Server CPU per request, hello world / QR check: "
        f"{cpu_ratio:.2f}× (what the rates would show on cores of their own).",
    ])


def write_results(text: str) -> None:
    replace_section(RESULTS, BEGIN, END, text, "Public QR-check endpoint (bench/verify_endpoint.py)")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=3, help="runs per endpoint, taken in turns")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--workers", type=int, default=2, help="uvicorn worker processes")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--write", action="store_true", help="update bench/RESULTS.md")
    args = parser.parse_args(argv)
    try:
        result = measure(args.seconds, args.rounds, args.connections, args.workers, args.threads)
    except BenchError as exc:
        raise SystemExit(f"bench.verify_endpoint: {exc}") from None
    text = table(result)
    print(text)
    if args.write:
        write_results(text)


if __name__ == "__main__":
    main()
