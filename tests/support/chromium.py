"""Headless Chromium (Debian's ``chromium``) driven over the DevTools protocol, as a phone would
open a page: a 390×844 window with mobile emulation, the DOM after the page has loaded, a PNG
screenshot — and a file chosen in an ``<input type=file>`` and its form submitted, which the
``--dump-dom`` / ``--screenshot`` command line cannot do."""

from __future__ import annotations

import base64
import itertools
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

PHONE = (390, 844)


def chromium_executable() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@dataclass
class Page:
    dom: str
    png: bytes


class Chromium:
    """One headless browser with one tab; use as a context manager."""

    def __init__(self, executable: str, size: tuple[int, int] = PHONE, timeout: float = 30.0):
        self.executable, self.size, self.timeout = executable, size, timeout
        self._ids = itertools.count(1)
        self._events: list[dict] = []

    def __enter__(self) -> Chromium:
        import websocket  # websocket-client (test extra)

        self._profile = tempfile.TemporaryDirectory(prefix="zhengyin-chromium-")
        width, height = self.size
        self._process = subprocess.Popen(
            [self.executable, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
             "--disable-extensions", "--hide-scrollbars", f"--window-size={width},{height}",
             "--remote-debugging-port=0", f"--user-data-dir={self._profile.name}", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True)  # its own process group: _stop ends its helpers too
        port_file = Path(self._profile.name) / "DevToolsActivePort"
        deadline = time.monotonic() + self.timeout
        while not (port_file.exists() and port_file.read_text().count("\n") >= 1):
            if self._process.poll() is not None or time.monotonic() > deadline:
                self._stop()
                raise RuntimeError("chromium did not start its DevTools endpoint")
            time.sleep(0.1)
        port = int(port_file.read_text().splitlines()[0])
        targets = httpx.get(f"http://127.0.0.1:{port}/json/list", timeout=10).json()
        page = next(t for t in targets if t["type"] == "page")
        self._socket = websocket.create_connection(page["webSocketDebuggerUrl"], timeout=self.timeout,
                                                   suppress_origin=True)
        self.call("Page.enable")
        self.call("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1,
                  mobile=True)
        return self

    def __exit__(self, *exc) -> None:
        self._stop()

    def _stop(self) -> None:
        try:
            self._socket.close()
        except Exception:  # closing what may never have opened
            pass
        self._signal_group(signal.SIGTERM)
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._signal_group(signal.SIGKILL)
            self._process.wait()
        self._signal_group(signal.SIGKILL)  # a renderer or utility process still writing the profile
        for _ in range(20):  # they leave the profile as the kernel reaps them: a moment at most
            try:
                self._profile.cleanup()
                return
            except OSError:
                time.sleep(0.1)
        shutil.rmtree(self._profile.name, ignore_errors=True)

    def _signal_group(self, number: int) -> None:
        try:
            os.killpg(self._process.pid, number)
        except (ProcessLookupError, PermissionError):
            pass  # the group has already gone

    def call(self, method: str, **params) -> dict:
        """Send one DevTools command and wait for its result (events are kept for :meth:`wait_for`)."""
        ident = next(self._ids)
        self._socket.send(json.dumps({"id": ident, "method": method, "params": params}))
        while True:
            message = json.loads(self._socket.recv())
            if message.get("id") == ident:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})
            self._events.append(message)

    def wait_for(self, event: str) -> dict:
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            for index, message in enumerate(self._events):
                if message.get("method") == event:
                    return self._events.pop(index)
            self._events.append(json.loads(self._socket.recv()))
        raise TimeoutError(f"chromium: no {event} within {self.timeout} s")

    def _loaded(self) -> Page:
        self.wait_for("Page.loadEventFired")
        dom = self.call("Runtime.evaluate", expression="document.documentElement.outerHTML",
                        returnByValue=True)["result"]["value"]
        png = base64.b64decode(self.call("Page.captureScreenshot", format="png")["data"])
        return Page(dom, png)

    def open(self, url: str) -> Page:
        """Load ``url``; the DOM and a screenshot once its load event fired."""
        self._events.clear()
        self.call("Page.navigate", url=url)
        return self._loaded()

    def submit_file(self, url: str, file: Path, selector: str = "input[type=file]") -> Page:
        """Open the form at ``url``, choose ``file`` in its file input, submit; the resulting page."""
        self.open(url)
        root = self.call("DOM.getDocument")["root"]["nodeId"]
        node = self.call("DOM.querySelector", nodeId=root, selector=selector)["nodeId"]
        self.call("DOM.setFileInputFiles", files=[str(file)], nodeId=node)
        self._events.clear()
        self.call("Runtime.evaluate", expression=f"document.querySelector({json.dumps(selector)}).form.submit()")
        return self._loaded()
