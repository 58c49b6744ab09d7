"""What every benchmark script shares: where results are written down, the CPU they ran on,
and the command line (``--seconds``, ``--write``)."""

from __future__ import annotations

import argparse
import platform
from collections.abc import Callable
from pathlib import Path

RESULTS = Path(__file__).with_name("RESULTS.md")


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def replace_section(path: Path, begin: str, end: str, text: str, heading: str) -> None:
    """Put ``text`` between a benchmark's markers in ``path`` (adding ``heading`` and the markers
    at the end when they are not there yet); the rest of the file is left as it is."""
    current = path.read_text(encoding="utf-8") if path.exists() else "# Benchmarks\n"
    if begin not in current:
        current = current.rstrip("\n") + f"\n\n## {heading}\n\n{begin}\n{end}\n"
    head, rest = current.split(begin, 1)
    _, tail = rest.split(end, 1)
    path.write_text(f"{head}{begin}\n{text}\n{end}{tail}", encoding="utf-8")


def command_line(description: str, measure: Callable[[float], object], table: Callable[[object], str],
                 write: Callable[[str], None], argv: list[str] | None, seconds_help: str) -> None:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--seconds", type=float, default=2.0, help=seconds_help)
    parser.add_argument("--write", action="store_true", help="update bench/RESULTS.md")
    args = parser.parse_args(argv)
    text = table(measure(args.seconds))
    print(text)
    if args.write:
        write(text)
