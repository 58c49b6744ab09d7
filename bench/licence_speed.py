"""Licences per second: the whole issuance pipeline on one core, and bulk conversion on workers.

Run: ``python -m bench.licence_speed [--seconds S] [--records N] [--workers W] [--write]``;
``--write`` replaces the section in bench/RESULTS.md. Both parts run on a fresh development
home in a temporary directory (SQLite, the embedded default; ``ZHENGYIN_HOME`` and
``ZHENGYIN_DATABASE_URL`` are ignored), every licence a 营业执照 with data of its own (credit
code, name, address, scope and legal representative drawn from GB 2312's level-1 hanzi), so
each one subsets its own font, encodes its own QR code and is a new registry row.

(a) **Pipeline, one core**: :meth:`licences.issuance.LicenceDesk.issue` end to end — validate,
allocate the identifier, sign the QR payload, lay out, write and seal the OFD, write and sign
the PDF, store both and commit the registry row with its audit entry — against baselines
measured in the same run, taking turns: one SM2 signature with the seal's key through the key
store (a licence makes three: QR, OFD, PDF), and the unsigned PDF and OFD of a fresh page. A
second pass times each step (the functions the pipeline calls, wrapped) to say where the time
goes.

(b) **Bulk conversion**: ``zhengyin licence batch`` on a JSONL file of ``--records`` records
(default 100,000) with ``--workers`` worker processes (default 2), run as a subprocess: the wall
time, the batch's own elapsed time, licences per second, the CPU time of the batch and its
workers (``getrusage(RUSAGE_CHILDREN)``: what a licence costs whatever else the machine runs),
and the peak memory — the sum of the resident sets of the whole process tree, and the largest
single process, sampled from /proc every 0.2 s.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from pathlib import Path

from bench.pdf_speed import HANZI
from bench.results import RESULTS, cpu_model, replace_section

BEGIN, END = "<!-- licence-speed:begin -->", "<!-- licence-speed:end -->"
BUSINESS = "11100000MB0000019L001"
BASE32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"


# -- fresh licences ---------------------------------------------------------------------------

class Records:
    """Business-licence records that never repeat: each has its own credit code (the licence
    number, of which the library keeps one live licence) and its own text."""

    def __init__(self, seed: int = 20261202) -> None:
        from licences.catalogue import Catalogue

        self.rng = random.Random(seed)
        self.example = dict(Catalogue.load().get(BUSINESS).example)
        self.prefix = f"91{self.rng.randint(1000, 9999)}"
        self.serial = 0

    def words(self, count: int) -> str:
        return "".join(self.rng.choice(HANZI) for _ in range(count))

    def take(self) -> dict:
        from ca.names import credit_code_check_character

        self.serial += 1
        first = f"{self.prefix}{self.serial:011d}"
        data = self.example | {
            "统一社会信用代码": first + credit_code_check_character(first),
            "名称": f"{self.words(6)}有限公司",
            "法定代表人": self.words(3),
            "住所": f"示例省示例市{self.words(8)}路{self.serial % 999 + 1}号",
            "经营范围": f"一般项目：{self.words(60)}",
        }
        return {"source_id": f"B{self.serial:09d}", "data": data}


@contextlib.contextmanager
def fresh_home() -> Iterator[Path]:
    """A development home of its own (CA, seal maker, the demo department's seals), removed after."""
    from trust.bootstrap import initialise

    folder = Path(tempfile.mkdtemp(prefix="zhengyin-bench-"))
    saved = {k: os.environ.pop(k) for k in ("ZHENGYIN_HOME", "ZHENGYIN_DATABASE_URL") if k in os.environ}
    try:
        initialise(str(folder / "home"))
        yield folder / "home"
    finally:
        os.environ.update(saved)
        shutil.rmtree(folder, ignore_errors=True)


# -- (a) the pipeline on one core -------------------------------------------------------------

def _ms_per(work: Callable[[], object], count: int) -> float:
    return _timed(work, count)[0]


def _timed(work: Callable[[], object], count: int) -> tuple[float, float]:
    """Wall-clock and CPU (this process) milliseconds per call of ``work``."""
    start, cpu = time.perf_counter(), time.process_time()
    for _ in range(count):
        work()
    return ((time.perf_counter() - start) / count * 1000, (time.process_time() - cpu) / count * 1000)


#: The steps of one issuance: (module, class or None, function, label, the step it runs inside).
STEPS = (
    ("licences.issuance", "LicenceDesk", "licence_seal", "seal lookup (kept 2 s: registry, signer key)",
     None),
    ("licences.lifecycle", "LicenceLibrary", "allocate_identifier", "identifier (serial transaction)", None),
    ("licences.issuance", None, "encode_payload", "QR payload (1 SM2 signature)", None),
    ("licences.issuance", None, "render", "layout", None),
    ("licences.issuance", None, "ofd_package", "OFD written", None),
    ("ofd.writer", None, "qr_png", "QR code encoded", "OFD written"),
    ("pages.sfnt", None, "subset", "font subset", "OFD written"),
    ("licences.issuance", None, "seal_ofd", "OFD sealed (1 SM2 signature)", None),
    ("licences.issuance", None, "write_pdf", "PDF written", None),
    ("licences.issuance", None, "sign_pdf", "PDF signed (1 SM2 signature)", None),
    ("pdf.signing", None, "sign_signed_data", "CMS SignedData built", "PDF signed (1 SM2 signature)"),
    ("licences.lifecycle", "LicenceLibrary", "record_issued", "stored and recorded (files, row, audit)",
     None),
)


@contextlib.contextmanager
def timed_steps(totals: Counter) -> Iterator[None]:
    """Every step of :data:`STEPS` that exists wrapped, adding its time to ``totals``."""
    import importlib

    restore = []
    for module, cls, name, label, _ in STEPS:
        owner = importlib.import_module(module)
        if cls is not None:
            owner = getattr(owner, cls, None)
        original = getattr(owner, "__dict__", {}).get(name)
        if original is None:  # the pipeline changed: that step is simply not shown
            continue
        function = original.__func__ if isinstance(original, staticmethod) else original

        def wrapped(*args, _function=function, _label=label, **kwargs):
            start = time.perf_counter()
            try:
                return _function(*args, **kwargs)
            finally:
                totals[_label] += time.perf_counter() - start

        setattr(owner, name, staticmethod(wrapped) if isinstance(original, staticmethod) else wrapped)
        restore.append((owner, name, original))
    try:
        yield
    finally:
        for owner, name, original in reversed(restore):
            setattr(owner, name, original)


def measure_pipeline(home: Path, seconds: float, batch: int = 10) -> dict:
    """Median ms per licence and per baseline, taking turns for about ``seconds`` each."""
    from keys_dev.domain import DEMO_DEPARTMENT_CODE
    from licences.identifiers import LicenceIdentifier
    from licences.layout import render
    from ofd.writer import write_ofd
    from pdf.writer import write_pdf
    from trust.domain import TrustDomain

    domain = TrustDomain.open(str(home), actor="bench")
    desk = domain.licence_desk
    records = Records()
    licence_type = desk.catalogue.get(BUSINESS)
    identity, department = desk.licence_seal(DEMO_DEPARTMENT_CODE, datetime.now(UTC))

    def issue() -> None:
        record = records.take()
        desk.issue(BUSINESS, record["data"], issuer_code=DEMO_DEPARTMENT_CODE, source_id=record["source_id"])

    def page():
        record = records.take()
        payload = "HTTP://LOCALHOST:8081/V/" + "".join(records.rng.choice(BASE32) for _ in range(200))
        identifier = LicenceIdentifier(BUSINESS, DEMO_DEPARTMENT_CODE, records.serial, 1)
        return render(licence_type, record["data"], identifier=identifier, qr_payload=payload,
                      issue_date=date.today(), issuer_name=department)

    messages = iter(range(10**9))
    work: dict[str, Callable[[], object]] = {
        "licence": issue,
        "SM2 signature": lambda: identity.signer.sign(b"bench %d" % next(messages)),
        "unsigned PDF": lambda: write_pdf(page()),
        "unsigned OFD": lambda: write_ofd(page()),
    }
    try:
        for run in work.values():  # warm-up: imports, the parsed font, caches per seal
            _ms_per(run, 2)
        times: dict[str, list[float]] = {name: [] for name in work}
        cpu: dict[str, list[float]] = {name: [] for name in work}
        deadline = time.perf_counter() + seconds * len(work)
        while not times["licence"] or time.perf_counter() < deadline:
            for name, run in work.items():
                wall, used = _timed(run, batch)
                times[name].append(wall)
                cpu[name].append(used)
        steps: Counter = Counter()
        count = max(batch, 5)
        with timed_steps(steps):
            total = _ms_per(issue, count)
    finally:
        domain.close()
    return {"ms": {name: statistics.median(values) for name, values in times.items()},
            "cpu_ms": {name: statistics.median(values) for name, values in cpu.items()},
            "rounds": len(times["licence"]), "batch": batch,
            "steps": {label: seconds_ * 1000 / count for label, seconds_ in steps.items()},
            "steps_total": total}


# -- (b) bulk conversion ----------------------------------------------------------------------

def _tree_rss(root: int) -> int:
    """Resident bytes of ``root`` and all its descendants, from /proc."""
    return _tree_memory(root)[0]


def _tree_memory(root: int) -> tuple[int, int]:
    """Resident bytes of ``root`` and all its descendants, and of the largest of them, from /proc."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as handle:
                fields = handle.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        pid, parent = int(entry.name), int(fields[1])
        children.setdefault(parent, []).append(pid)
        rss[pid] = int(fields[21]) * os.sysconf("SC_PAGE_SIZE")
    total, largest, pending = 0, 0, [root]
    while pending:
        pid = pending.pop()
        total += rss.get(pid, 0)
        largest = max(largest, rss.get(pid, 0))
        pending.extend(children.get(pid, ()))
    return total, largest


def write_records(path: Path, count: int) -> None:
    records = Records(seed=count)
    with path.open("w", encoding="utf-8") as handle:
        for _ in range(count):
            handle.write(json.dumps(records.take(), ensure_ascii=False) + "\n")


def measure_bulk(home: Path, records: int, workers: int) -> dict:
    """``zhengyin licence batch`` on ``records`` fresh records with ``workers`` workers."""
    source = home.parent / "legacy.jsonl"
    write_records(source, records)
    command = [sys.executable, "-c", "from trust.cli import main; main()", "licence", "batch", str(source),
               "--type", BUSINESS, "--workers", str(workers), "--home", str(home), "--json"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        process = subprocess.Popen(command, stdout=out, stderr=err)
        peak = largest = 0
        while process.poll() is None:
            total, biggest = _tree_memory(process.pid)
            peak, largest = max(peak, total), max(largest, biggest)
            time.sleep(0.2)
        wall = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        out.seek(0)
        err.seek(0)
        output, problems = out.read().decode(), err.read().decode()
    if process.returncode != 0:
        raise RuntimeError(f"the batch exited {process.returncode}: {problems.strip()[-2000:]}")
    summary = json.loads(output)
    # The batch process and its workers (which it waits for): CPU they used, whatever else ran.
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return {"records": records, "workers": workers, "wall": wall, "elapsed": summary["elapsed_seconds"],
            "issued": summary["issued"], "rejected": summary["rejected"], "peak_tree_rss": peak,
            "largest_process_rss": largest or None, "cpu_seconds": cpu}


# -- the table --------------------------------------------------------------------------------

def measure(seconds: float, records: int, workers: int) -> dict:
    load = os.getloadavg()[0]  # the machine is shared: say how busy it was
    with fresh_home() as home:
        pipeline = measure_pipeline(home, seconds)
    bulk = None
    if records:
        with fresh_home() as home:
            bulk = measure_bulk(home, records, workers)
    return {"when": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), "cpu": cpu_model(),
            "cores": os.cpu_count(), "python": platform.python_version(), "pipeline": pipeline, "bulk": bulk,
            "load": (load, os.getloadavg()[0])}


def _pipeline_lines(p: dict) -> list[str]:
    ms, cpu = p["ms"], p.get("cpu_ms") or p["ms"]
    licence, per_sign = ms["licence"], cpu["licence"] / cpu["SM2 signature"]
    lines = [f"**Pipeline, one core** ({p['rounds']} rounds of {p['batch']} fresh 营业执照 each, median; "
             "CPU ms is this process's own CPU time, which other work on a shared machine does not inflate):",
             "", "| what | ms | CPU ms | per second per core (CPU) | × one SM2 signature |",
             "|---|---:|---:|---:|---:|"]
    rows = (("licence: OFD + PDF + QR + 2 seal signatures + registry commit", "licence"),
            ("baseline: one SM2 signature (seal key, key store)", "SM2 signature"),
            ("baseline: the unsigned PDF of a fresh page", "unsigned PDF"),
            ("baseline: the unsigned OFD of a fresh page", "unsigned OFD"))
    for label, name in rows:
        lines.append(f"| {label} | {ms[name]:.2f} | {cpu[name]:.2f} | {1000 / cpu[name]:,.0f} | "
                     f"{cpu[name] / cpu['SM2 signature']:.1f} |")
    rate = 1000 / cpu["licence"]
    goal = "reached" if rate >= 200 else "not reached"
    total = p["steps_total"]
    lines += ["", f"A licence costs {per_sign:.0f} SM2 signatures' CPU time (it makes 3) and "
              f"{cpu['licence'] / cpu['unsigned PDF']:.1f}× its unsigned PDF; the issue's goal of 200 "
              f"licences/s per core is {goal} ({rate:,.0f} per CPU-second, {1000 / licence:,.0f}/s by "
              "the wall clock).", "",
              f"Where a licence's time goes ({total:.1f} ms per licence with every step timed, "
              "wall clock):", "",
              "| step | ms | share |", "|---|---:|---:|"]
    top = 0.0
    for *_, label, parent in STEPS:
        if label not in p["steps"]:
            continue
        value = p["steps"][label]
        top += 0.0 if parent else value
        lines.append(f"| {'… of which ' if parent else ''}{label} | {value:.2f} | {value / total:.0%} |")
    rest = total - top
    lines.append(f"| the rest (validation, metadata, the pipeline's own work) | {rest:.2f} | "
                 f"{rest / total:.0%} |")
    return lines


def _bulk_lines(bulk: dict) -> list[str]:
    rate = bulk["issued"] / bulk["elapsed"] if bulk["elapsed"] else 0.0
    projected = 100_000 / rate / 60 if rate else float("inf")
    largest = bulk["largest_process_rss"]
    cpu = bulk.get("cpu_seconds")
    cpu_ms = cpu / bulk["issued"] * 1000 if cpu and bulk["issued"] else None
    cells = [f"{bulk['records']:,}", f"{bulk['issued']:,}", f"{bulk['wall']:.1f}", f"{bulk['elapsed']:.1f}",
             f"{rate:,.1f}", f"{rate / bulk['workers']:,.1f}", f"{cpu_ms:.1f}" if cpu_ms else "n/a",
             f"{bulk['peak_tree_rss'] / 2**20:,.0f} MiB", f"{largest / 2**20:,.0f} MiB" if largest else "n/a"]
    header = ["records", "issued", "wall s", "batch s", "licences/s", "per worker", "CPU ms per licence",
              "peak RSS, process tree", "largest process"]
    lines = ["", f"**Bulk conversion** (`zhengyin licence batch`, {bulk['workers']} workers, "
             f"{bulk['records']:,} fresh records, SQLite):", "",
             "| " + " | ".join(header) + " |", "|" + "---:|" * len(header),
             "| " + " | ".join(cells) + " |", "",
             f"At this rate 100,000 records take {projected:.1f} min "
             "(the issue's goal: 10 minutes within 1 GB)."]
    if cpu_ms:
        idle = 100_000 * cpu_ms / 1000 / bulk["workers"] / 60
        lines[-1] += (f" At the CPU cost measured (all processes of the run, {cpu_ms:.1f} ms a licence), "
                      f"{bulk['workers']} cores of their own would take {idle:.1f} min.")
    return lines


def table(result: dict) -> str:
    before, after = result["load"]
    lines = [f"Measured {result['when']} on {result['cpu']} ({result['cores']} cores), "
             f"Python {result['python']}; load average {before:.1f} before, {after:.1f} after.", "",
             *_pipeline_lines(result["pipeline"])]
    if result["bulk"]:
        lines += _bulk_lines(result["bulk"])
    return "\n".join(lines)


def write_results(text: str) -> None:
    replace_section(RESULTS, BEGIN, END, text, "Licences (bench/licence_speed.py)")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="time per pipeline variant")
    parser.add_argument("--records", type=int, default=100_000, help="records for bulk conversion (0: skip)")
    parser.add_argument("--workers", type=int, default=2, help="worker processes for bulk conversion")
    parser.add_argument("--write", action="store_true", help="update bench/RESULTS.md")
    args = parser.parse_args(argv)
    text = table(measure(args.seconds, args.records, args.workers))
    print(text)
    if args.write:
        write_results(text)


if __name__ == "__main__":
    main()
