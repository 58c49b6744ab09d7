"""A real ``zhengyin serve-verify`` (uvicorn) in a child process, for clients that need a socket:
the OpenSSL OCSP client, headless Chromium, load generators."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

#: Limits high enough that a test's own requests are never rate-limited.
UNLIMITED = {"ZHENGYIN_VERIFY_RATE": "1000000", "ZHENGYIN_VERIFY_BURST": "1000000",
             "ZHENGYIN_VERIFY_UPLOAD_RATE": "1000000", "ZHENGYIN_VERIFY_UPLOAD_BURST": "1000000"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serve_verify(home: Path, *, workers: int = 1, env: dict[str, str] | None = None,
                 timeout: float = 60.0) -> Iterator[str]:
    """Run serve-verify on a free local port until the block ends; yields its base URL
    (``http://127.0.0.1:PORT``) once ``/healthz`` answers."""
    port = free_port()
    environment = {**os.environ, **UNLIMITED, **(env or {})}
    command = [sys.executable, "-c", "import sys; from trust.cli import main; sys.argv[0] = 'zhengyin'; main()",
               "serve-verify", "--home", str(home), "--port", str(port), "--workers", str(workers)]
    log = (Path(home) / f"serve-verify-{port}.log").open("wb")
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=environment)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                raise AssertionError(f"serve-verify exited with {process.returncode}: "
                                     f"{(Path(home) / f'serve-verify-{port}.log').read_text()[-2000:]}")
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"serve-verify did not answer on {base} within {timeout:.0f} s")
            time.sleep(0.2)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
