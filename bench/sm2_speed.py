"""SM2 sign/s and verify/s per core, for each backend, against tongsuopy and `openssl speed sm2`.

Everything is measured in one run on one core, so the ratios hold even when the machine's
absolute speed changes. Run: ``python -m bench.sm2_speed [--seconds S] [--write]``; ``--write``
replaces the table in bench/RESULTS.md.

What is measured (each a loop run for ``--seconds``):

* ``sign``: ``sign_digest`` on a fixed digest (the Z_A/SM3 part is the same for every backend);
* ``verify (cached)``: one public key verified again and again — after 2,500 warm-up
  verifications, so the pure backend has built the key's hot (width-12) comb;
* ``verify (uncached)``: a different public key for every verification — no per-key table;
* ``openssl speed -seconds S sm2``: OpenSSL 3's own sign/verify loop, the physical reference.
"""

from __future__ import annotations

import os
import platform
import re
import subprocess
import time
from collections.abc import Callable
from datetime import UTC, datetime

from bench.results import RESULTS, command_line, cpu_model, replace_section
from hsm.backends import available, get_backend
from hsm.sm3 import sm3

BEGIN, END = "<!-- sm2-speed:begin -->", "<!-- sm2-speed:end -->"


def rate(work: Callable[[int], None], seconds: float) -> float:
    """Operations per second of ``work(i)``, run for about ``seconds``."""
    work(0)  # warm-up
    count, start = 0, time.perf_counter()
    deadline = start + seconds
    while True:
        for _ in range(20):
            work(count)
            count += 1
        now = time.perf_counter()
        if now >= deadline:
            return count / (now - start)


def backend_rates(name: str, seconds: float) -> dict[str, float]:
    backend = get_backend(name)
    e = sm3(b"zhengyin benchmark")
    key = backend.generate()
    q = key.public_point
    r, s = key.sign_digest(e)
    results = {"sign": rate(lambda i: key.sign_digest(e), seconds)}

    for _ in range(2500):  # past every "build a table after N uses" threshold
        assert backend.verify_digest(q, e, r, s)
    results["verify (cached)"] = rate(lambda i: backend.verify_digest(q, e, r, s), seconds)

    pool = []
    for _ in range(64):
        k = backend.generate()
        pool.append((k.public_point, *k.sign_digest(e)))
    if name == "pure":
        from hsm.backends.pure import clear_key_cache
        clear_key_cache()

    def fresh(i: int) -> None:
        point, ri, si = pool[i % len(pool)]
        if name == "pure" and i % len(pool) == 0:
            clear_key_cache()  # keep every key below its table threshold
        backend.verify_digest(point, e, ri, si)

    results["verify (uncached)"] = rate(fresh, seconds)
    return results


def openssl_rates(seconds: float) -> dict[str, float] | None:
    try:
        out = subprocess.run(["openssl", "speed", "-seconds", str(int(max(1, seconds))), "sm2"],
                             capture_output=True, text=True, timeout=120).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.search(r"SM2 \(CurveSM2\)\s+\S+s\s+\S+s\s+([\d.]+)\s+([\d.]+)", out)
    return {"sign": float(match[1]), "verify": float(match[2])} if match else None


def measure(seconds: float) -> dict:
    rows: dict[str, dict[str, float]] = {}
    for name in available():
        rows[name] = backend_rates(name, seconds)
    return {"when": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), "cpu": cpu_model(),
            "cores": os.cpu_count(), "python": platform.python_version(),
            "backends": rows, "openssl": openssl_rates(seconds)}


def _ratio(value: float, base: float | None) -> str:
    return f"{value / base:.2f}" if base else "–"


def table(result: dict) -> str:
    tongsuo = result["backends"].get("tongsuo", {})
    openssl = result["openssl"] or {}
    lines = [f"Measured {result['when']} on {result['cpu']} ({result['cores']} cores; one core used), "
             f"Python {result['python']}.", "",
             "| backend | operation | per second | × tongsuopy | × openssl speed |",
             "|---|---|---:|---:|---:|"]
    for name, ops in result["backends"].items():
        for op, value in ops.items():
            ref = openssl.get("sign" if op == "sign" else "verify")
            lines.append(f"| {name} | {op} | {value:,.0f} | {_ratio(value, tongsuo.get(op))} | "
                         f"{_ratio(value, ref)} |")
    for op, value in openssl.items():
        base = tongsuo.get(op if op == "sign" else "verify (cached)")
        lines.append(f"| openssl speed | {op} | {value:,.0f} | {_ratio(value, base)} | 1.00 |")
    return "\n".join(lines)


def write_results(text: str) -> None:
    replace_section(RESULTS, BEGIN, END, text, "SM2 (bench/sm2_speed.py)")


def main(argv: list[str] | None = None) -> None:
    command_line(__doc__.split("\n")[0], measure, table, write_results, argv, "time per measurement")


if __name__ == "__main__":
    main()
