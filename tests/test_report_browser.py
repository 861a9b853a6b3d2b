"""The tiny demo run's report, opened in headless Chromium (Debian's `chromium` package).

Chromium is driven through the DevTools protocol over a pipe (`--remote-debugging-pipe`), with
the standard library only: no chromedriver, no browser download, no network. The test checks
that every section is visible, every image decoded, no console message or page error was an
error, nothing but the page itself and data: URIs was requested, and saves a screenshot (also
copied to /tmp/report_screenshot.png).
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import queue
import shutil
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from kit.report.sections import SECTION_IDS
from kit.report.write import write_report
from tests.test_report import tiny_run_record

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
SCREENSHOT_COPY = Path("/tmp/report_screenshot.png")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--hide-scrollbars", "--mute-audio")
TIMEOUT = 60.0


class Browser:
    """Headless Chromium over the DevTools pipe: fd 3 carries commands in, fd 4 replies out,
    each message one JSON text ending in a NUL byte."""

    def __init__(self, executable: str, profile: Path) -> None:
        to_child_r, to_child_w = os.pipe()
        from_child_r, from_child_w = os.pipe()
        self.stderr = tempfile.TemporaryFile()  # noqa: SIM115 - closed in close()
        # The pipe ends arrive as the shell's stdin and stdout; the shell moves them to fds 3
        # and 4, where Chromium expects them (no preexec_fn, so no Python code runs between
        # fork and exec in this multi-threaded process).
        self.process = subprocess.Popen(
            ["/bin/sh", "-c", 'exec "$@" 3<&0 4>&1 0</dev/null 1>/dev/null', "sh", executable,
             *FLAGS, f"--user-data-dir={profile}", "--remote-debugging-pipe",
             "--window-size=1400,1000", "about:blank"],
            stdin=to_child_r, stdout=from_child_w, stderr=self.stderr)
        os.close(to_child_r)
        os.close(from_child_w)
        self._out = os.fdopen(to_child_w, "wb")
        self._in = from_child_r
        self._messages: queue.Queue[dict | None] = queue.Queue()
        self.events: list[dict] = []
        self._next_id = 0
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        buffer = b""
        while chunk := os.read(self._in, 1 << 16):
            buffer += chunk
            while b"\0" in buffer:
                message, buffer = buffer.split(b"\0", 1)
                self._messages.put(json.loads(message))
        self._messages.put(None)

    def _next(self, deadline: float) -> dict:
        try:
            message = self._messages.get(timeout=max(0.1, deadline - time.monotonic()))
        except queue.Empty:
            raise TimeoutError("Chromium did not answer in time") from None
        if message is None:
            self.stderr.seek(0)
            raise RuntimeError("Chromium closed the DevTools pipe: "
                               + self.stderr.read().decode(errors="replace")[-2000:])
        return message

    def send(self, method: str, params: dict | None = None, session: str | None = None) -> Any:
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        self._out.write(json.dumps(message).encode() + b"\0")
        self._out.flush()
        deadline = time.monotonic() + TIMEOUT
        while True:
            reply = self._next(deadline)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_for(self, method: str) -> dict:
        deadline = time.monotonic() + TIMEOUT
        while True:
            for event in self.events:
                if event.get("method") == method:
                    return event
            self.events.append(self._next(deadline))

    def close(self) -> None:
        """Close the browser (politely, then by force) and the pipes."""
        with contextlib.suppress(RuntimeError, TimeoutError, OSError):
            self.send("Browser.close")
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._out.close()
        self._reader.join(timeout=15)
        if not self._reader.is_alive():
            os.close(self._in)
        self.stderr.close()


def _errors(events: list[dict]) -> list[str]:
    """Console errors, uncaught exceptions and error log entries among the events."""
    found = []
    for event in events:
        method, params = event.get("method"), event.get("params", {})
        if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            found.append("console: " + " ".join(str(a.get("value")) for a in params["args"]))
        elif method == "Runtime.exceptionThrown":
            found.append("exception: " + json.dumps(params.get("exceptionDetails"))[:500])
        elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
            found.append(f"log: {params['entry'].get('text')} {params['entry'].get('url', '')}")
    return found


PAGE_FACTS = """(() => {
  const sections = [...document.querySelectorAll('section')].map(s => ({
    id: s.id, height: s.getBoundingClientRect().height,
    title: s.querySelector('h2') ? s.querySelector('h2').textContent : ''}));
  const images = [...document.images].map(i => ({
    file: i.dataset.file || '', complete: i.complete, width: i.naturalWidth,
    height: i.naturalHeight, shown: i.getBoundingClientRect().width}));
  return {sections, images, text: document.body.innerText,
          height: document.documentElement.scrollHeight};
})()"""


@dataclass(frozen=True, kw_only=True)
class Visit:
    """What loading one page showed: facts read in the page, protocol events, a screenshot."""

    facts: dict
    events: list[dict]
    screenshot: bytes

    @property
    def requested(self) -> list[str]:
        return [e["params"]["request"]["url"] for e in self.events
                if e.get("method") == "Network.requestWillBeSent"]


def visit(page: Path, profile: Path) -> Visit:
    """Load `page` in a fresh headless Chromium and read it."""
    if CHROMIUM is None:
        pytest.skip("chromium is not installed (Debian: apt-get install chromium)")
    browser = Browser(CHROMIUM, profile)
    try:
        target = browser.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = browser.send("Target.attachToTarget",
                               {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            browser.send(f"{domain}.enable", session=session)
        browser.send("Page.navigate", {"url": page.as_uri()}, session=session)
        browser.wait_for("Page.loadEventFired")
        facts = browser.send("Runtime.evaluate", {"expression": PAGE_FACTS,
                                                  "returnByValue": True},
                             session=session)["result"]["value"]
        shot = browser.send("Page.captureScreenshot",
                            {"format": "png", "captureBeyondViewport": True}, session=session)
        return Visit(facts=facts, events=list(browser.events),
                     screenshot=base64.b64decode(shot["data"]))
    finally:
        browser.close()


def test_the_check_sees_console_errors_and_fetches(tmp_path: Path):
    """A control: the same check on a bad page reports its console error and its fetch."""
    page = tmp_path / "bad.html"
    page.write_text('<!DOCTYPE html><html><body><p>bad</p><img src="http://127.0.0.1:9/x.png">'
                    '<script>console.error("boom")</script></body></html>')
    seen = visit(page, tmp_path / "profile")
    assert any("boom" in e for e in _errors(seen.events))
    assert "http://127.0.0.1:9/x.png" in seen.requested


@pytest.mark.slow
def test_report_renders_in_headless_chromium(tmp_path_factory, tmp_path: Path):
    if CHROMIUM is None:
        pytest.skip("chromium is not installed (Debian: apt-get install chromium)")
    record = tiny_run_record(tmp_path_factory)
    report = write_report(record)
    seen = visit(report, tmp_path / "profile")
    screenshot = tmp_path / "report_screenshot.png"
    screenshot.write_bytes(seen.screenshot)
    shutil.copyfile(screenshot, SCREENSHOT_COPY)
    facts = seen.facts

    assert [s["id"] for s in facts["sections"]] == list(SECTION_IDS)
    assert all(s["height"] > 50 for s in facts["sections"]), facts["sections"]
    assert len(facts["images"]) >= 10
    broken = [i for i in facts["images"] if not (i["complete"] and i["width"] > 0
                                                 and i["shown"] > 0)]
    assert not broken, broken
    assert "Not available for this run" not in facts["text"]
    assert "Mutual information between size and class" in facts["text"]
    assert _errors(seen.events) == []
    assert seen.requested and all(url == report.as_uri() or url.startswith("data:")
                                  for url in seen.requested), sorted({u[:60]
                                                                      for u in seen.requested})
    assert screenshot.stat().st_size > 50_000 and facts["height"] > 3000
