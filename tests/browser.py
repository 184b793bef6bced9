"""A small Chrome DevTools Protocol driver for the viewer's browser tests (headless Chromium).

``Chromium.launch()`` starts ``chromium --headless=new --remote-debugging-port=0`` with a throw-away profile,
reads the DevTools websocket address from its stderr ("DevTools listening on ws://..."), attaches to the blank
page and enables the Runtime, Log and Page domains. Console errors and warnings, uncaught exceptions and browser
log errors (failed loads, CSP violations) are collected in ``problems``. ``close()`` always ends the browser
process (and only it).

Needs ``websocket-client`` (a dev dependency).
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

BINARIES = ("chromium", "chromium-browser", "google-chrome")


def find_chromium() -> str | None:
    """The first Chromium-family browser on PATH, or None."""
    for name in BINARIES:
        path = shutil.which(name)
        if path:
            return path
    return None


class BrowserError(RuntimeError):
    pass


class Chromium:
    """One headless browser with one page, driven over the DevTools protocol."""

    def __init__(self, process: subprocess.Popen, ws: Any, session: str, stderr_lines: queue.Queue):
        self.process = process
        self.ws = ws
        self.session = session
        self._stderr = stderr_lines
        self._next_id = 0
        self.events: list[dict[str, Any]] = []
        self.problems: list[str] = []

    # -- life cycle ------------------------------------------------------------------------------------------
    @classmethod
    def launch(cls, binary: str, profile: str | os.PathLike, *, timeout: float = 20.0,
               size: tuple[int, int] = (1280, 900)) -> Chromium:
        import websocket  # websocket-client

        args = [binary, "--headless=new", "--remote-debugging-port=0", f"--user-data-dir={Path(profile)}",
                "--no-sandbox", "--disable-gpu", "--no-first-run", "--no-default-browser-check",
                "--disable-extensions", "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--mute-audio", f"--window-size={size[0]},{size[1]}", "about:blank"]
        process = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.PIPE, text=True, errors="replace", start_new_session=True)
        lines: queue.Queue = queue.Queue()

        def pump() -> None:  # keep draining stderr so the browser never blocks on a full pipe
            for line in process.stderr:
                lines.put(line)
            lines.put(None)

        threading.Thread(target=pump, daemon=True).start()
        try:
            url = _devtools_url(lines, process, timeout)
            ws = websocket.create_connection(url, timeout=timeout, suppress_origin=True)
            browser = cls(process, ws, "", lines)
            targets = browser.send("Target.getTargets", session=False)["targetInfos"]
            page = next((t for t in targets if t["type"] == "page"), None)
            target_id = page["targetId"] if page else browser.send(
                "Target.createTarget", {"url": "about:blank"}, session=False)["targetId"]
            browser.session = browser.send("Target.attachToTarget", {"targetId": target_id, "flatten": True},
                                           session=False)["sessionId"]
            for domain in ("Runtime", "Log", "Page"):
                browser.send(f"{domain}.enable")
            return browser
        except BaseException:
            _stop(process)
            raise

    def close(self) -> None:
        try:
            self.send("Browser.close", session=False, timeout=5)
        except Exception:  # noqa: BLE001 (the process is stopped below either way)
            pass
        try:
            self.ws.close()
        finally:
            _stop(self.process)

    def __enter__(self) -> Chromium:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- protocol --------------------------------------------------------------------------------------------
    def send(self, method: str, params: dict[str, Any] | None = None, *, session: bool = True,
             timeout: float = 20.0) -> dict[str, Any]:
        """Send one command and wait for its answer, recording the events that arrive meanwhile."""
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = self.session
        self.ws.send(json.dumps(message))
        deadline = time.monotonic() + timeout
        while True:
            if time.monotonic() > deadline:
                raise BrowserError(f"no answer to {method} within {timeout} s")
            self.ws.settimeout(max(0.05, deadline - time.monotonic()))
            try:
                reply = json.loads(self.ws.recv())
            except Exception as exc:
                raise BrowserError(f"no answer to {method}: {exc!r}") from exc
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise BrowserError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            if "method" in reply:
                self._record(reply)

    def _record(self, event: dict[str, Any]) -> None:
        self.events.append(event)
        method, params = event["method"], event.get("params", {})
        if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "warning", "assert"):
            text = " ".join(str(a.get("value", a.get("description", ""))) for a in params.get("args", []))
            self.problems.append(f"console.{params['type']}: {text}")
        elif method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            text = details.get("exception", {}).get("description") or details.get("text", "")
            self.problems.append(f"exception: {text}")
        elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
            entry = params["entry"]
            self.problems.append(f"log error ({entry.get('source')}): {entry.get('text')} {entry.get('url', '')}")

    def pump(self, seconds: float) -> None:
        """Collect events for ``seconds`` without sending anything."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            self.ws.settimeout(left)
            try:
                event = json.loads(self.ws.recv())
            except Exception:  # noqa: BLE001 (websocket timeout: nothing more arrived)
                return
            if "method" in event:
                self._record(event)

    # -- page ------------------------------------------------------------------------------------------------
    def evaluate(self, expression: str, *, timeout: float = 20.0) -> Any:
        """Value of a JavaScript expression in the page (promises awaited, JSON-able values returned)."""
        result = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                                "awaitPromise": True}, timeout=timeout)
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            raise BrowserError(f"{expression!r} raised: "
                               f"{details.get('exception', {}).get('description') or details.get('text')}")
        return result["result"].get("value")

    def wait_for(self, expression: str, *, timeout: float = 10.0, interval: float = 0.05) -> Any:
        """Poll ``expression`` until it is truthy; returns its value. Raises on timeout."""
        deadline = time.monotonic() + timeout
        while True:
            value = self.evaluate(expression)
            if value:
                return value
            if time.monotonic() > deadline:
                raise BrowserError(f"timed out after {timeout} s waiting for {expression}")
            self.pump(interval)

    def navigate(self, url: str, *, timeout: float = 20.0) -> None:
        self.send("Page.navigate", {"url": url}, timeout=timeout)
        self.wait_for("document.readyState === 'complete'", timeout=timeout)


def _devtools_url(lines: queue.Queue, process: subprocess.Popen, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    seen = []
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise BrowserError(f"Chromium printed no DevTools address within {timeout} s: {''.join(seen)[-2000:]}")
        try:
            line = lines.get(timeout=left)
        except queue.Empty:
            continue
        if line is None:
            raise BrowserError(f"Chromium exited ({process.poll()}) before DevTools started: "
                               f"{''.join(seen)[-2000:]}")
        seen.append(line)
        if "DevTools listening on " in line:
            return line.split("DevTools listening on ", 1)[1].strip()


def _stop(process: subprocess.Popen) -> None:
    """End the browser we started: terminate it, kill it if it lingers, then kill what is left of the process
    group it leads (its renderer and helper processes; the group was created for it at launch)."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
