"""BouncyCastle (Debian's libbcprov-java / libbcpkix-java) as an independent implementation.

The Java tools live in tests/interop/java; each is compiled once per session. Without javac,
java or a jar the tests that need them skip, except under CI=true, where they fail: CI
installs them (.ci/debian-packages).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
BCPROV = Path(os.environ.get("ZHENGYIN_BCPROV_JAR", "/usr/share/java/bcprov.jar"))
BC_JARS = [Path(os.environ.get(f"ZHENGYIN_{name.upper()}_JAR", f"/usr/share/java/{name}.jar"))
           for name in ("bcprov", "bcpkix", "bcutil")]
JAVA_SOURCES = Path(__file__).resolve().parents[1] / "interop" / "java"
SM2_TOOL = JAVA_SOURCES / "Sm2Tool.java"
BC_TIMEOUT = 120


def unavailable(reason: str):
    """Skip for want of a tool, except under CI=true, where every interop test must run."""
    if IN_CI:
        pytest.fail(reason + " (CI=true: the interop tests must run)")
    pytest.skip(reason)


@dataclass(frozen=True)
class BcTool:
    """tests/interop/java/Sm2Tool.java, compiled once per session against bcprov.jar."""

    classpath: str

    def command(self, *args: str) -> list[str]:
        return ["java", "-Xshare:auto", "-XX:TieredStopAtLevel=1", "-cp", self.classpath, "Sm2Tool", *args]

    def run(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(self.command(*args), capture_output=True, timeout=BC_TIMEOUT, check=False)

    def batch(self, lines: list[str], work: Path) -> list[str]:
        """One JVM for many jobs: one answer line per job line."""
        jobs = work / "jobs.txt"
        jobs.write_text("\n".join(lines) + "\n", encoding="ascii")
        res = self.run("batch", str(jobs))
        assert res.returncode == 0, res.stderr.decode(errors="replace")
        out = res.stdout.decode("ascii").splitlines()
        assert len(out) == len(lines), res.stderr.decode(errors="replace")
        return out


def compile_java_tool(tmp_path_factory, source: Path, jars: list[Path]) -> str:
    """Compile one tool under tests/interop/java against Debian's BouncyCastle jars, once;
    returns the classpath to run it with. Missing tools skip (fail under CI=true)."""
    for tool in ("javac", "java"):
        if shutil.which(tool) is None:
            unavailable(f"{tool} not found (apt-get install default-jdk-headless)")
    for jar in jars:
        if not jar.is_file():
            unavailable(f"{jar} not found (apt-get install libbcprov-java libbcpkix-java)")
    classes = tmp_path_factory.mktemp(source.stem.lower())
    classpath = os.pathsep.join(map(str, jars))
    res = subprocess.run(["javac", "-nowarn", "-cp", classpath, "-d", str(classes), str(source)],
                         capture_output=True, timeout=BC_TIMEOUT, check=False)
    if res.returncode != 0:
        pytest.fail(f"{source.name} does not compile: {res.stderr.decode(errors='replace')}")
    return f"{classes}{os.pathsep}{classpath}"
