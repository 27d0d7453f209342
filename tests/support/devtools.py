"""Headless Chromium driven over the DevTools protocol, for pages a user has to act on.

``HeadlessChromium`` (browser.py) only loads a URL and follows redirects, which is all a
provider that consents on its own needs. A real provider shows a login form and a consent
page: ``ChromiumUser`` reads each page and does what a person would — types the login,
presses the button, or cancels — in a real Chromium, with the provider's own HTML,
cookies and redirects. The protocol runs over ``--remote-debugging-pipe`` (fds 3 and 4,
NUL-separated JSON), so no WebSocket library is needed.

Nothing leaves this machine: every host name but 127.0.0.1 resolves to nothing, so a
page's web fonts or trackers are never fetched.
"""

from __future__ import annotations

import contextlib
import fcntl
import itertools
import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from tests.support.browser import FLAGS, chromium_path

LOOPBACK_ONLY = "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"


class DevToolsError(RuntimeError):
    pass


class DevTools:
    """One Chromium process and its protocol pipe."""

    def __init__(self, binary: str | None = None) -> None:
        found = binary or chromium_path()
        if found is None:
            raise RuntimeError("Chromium not found: install Debian's 'chromium' package or set CHROMIUM")
        self._profile = tempfile.mkdtemp(prefix="tbx-devtools-")
        to_child_r, self._to_child = os.pipe()
        self._from_child, from_child_w = os.pipe()

        def wire_fds() -> None:
            """The child's fd 3 reads commands, fd 4 writes answers. Both ends are first
            copied above 10, so neither dup2 can overwrite the other, and dup2 then makes
            them inheritable (a pipe that already sat at 3 would otherwise keep CLOEXEC)."""
            high = [fcntl.fcntl(fd, fcntl.F_DUPFD, 10) for fd in (to_child_r, from_child_w)]
            for target, fd in zip((3, 4), high, strict=True):
                os.dup2(fd, target)

        self._proc = subprocess.Popen(
            [found, *FLAGS, LOOPBACK_ONLY, "--remote-debugging-pipe", f"--user-data-dir={self._profile}", "about:blank"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            preexec_fn=wire_fds, close_fds=False, start_new_session=True,  # noqa: PLW1509 - fds 3/4 must be set in the child
        )
        os.close(to_child_r)
        os.close(from_child_w)
        self._ids = itertools.count(1)
        self._pending: dict[int, Future[dict[str, Any]]] = {}
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, name="devtools-reader", daemon=True)
        self._reader.start()

    def send(self, method: str, params: dict[str, Any] | None = None, session: str | None = None,
             timeout: float = 15.0) -> dict[str, Any]:
        message: dict[str, Any] = {"id": next(self._ids), "method": method, "params": params or {}}
        if session is not None:
            message["sessionId"] = session
        future: Future[dict[str, Any]] = Future()
        with self._lock:
            self._pending[message["id"]] = future
            os.write(self._to_child, json.dumps(message).encode() + b"\0")
        answer = future.result(timeout=timeout)
        if "error" in answer:
            raise DevToolsError(f"{method}: {answer['error'].get('message')}")
        return answer.get("result", {})

    def _read(self) -> None:
        buffer = b""
        while True:
            try:
                chunk = os.read(self._from_child, 1 << 16)
            except OSError:
                chunk = b""
            if not chunk:
                break
            buffer += chunk
            while b"\0" in buffer:
                raw, buffer = buffer.split(b"\0", 1)
                message = json.loads(raw)
                future = self._pending.pop(message["id"], None) if "id" in message else None
                if future is not None:
                    future.set_result(message)
        for future in self._pending.values():
            future.set_exception(DevToolsError("Chromium went away"))

    def new_page(self) -> Page:
        """A tab in a browser context of its own: no cookies from earlier sign-ins, as a
        fresh profile (the provider asks who is signing in every time)."""
        context = self.send("Target.createBrowserContext", {"disposeOnDetach": True})["browserContextId"]
        target = self.send("Target.createTarget", {"url": "about:blank", "browserContextId": context})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        return Page(self, session)

    def close(self) -> None:
        if self._proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._proc.wait(timeout=5)
        for fd in (self._to_child, self._from_child):
            with contextlib.suppress(OSError):
                os.close(fd)
        shutil.rmtree(self._profile, ignore_errors=True)


class Page:
    def __init__(self, devtools: DevTools, session: str) -> None:
        self.devtools, self.session = devtools, session

    def navigate(self, url: str) -> None:
        self.devtools.send("Page.navigate", {"url": url}, self.session)

    def evaluate(self, expression: str) -> Any:
        result = self.devtools.send("Runtime.evaluate", {"expression": expression, "returnByValue": True},
                                    self.session)
        if "exceptionDetails" in result:
            raise DevToolsError(f"page script failed: {result['exceptionDetails'].get('text')}")
        return result.get("result", {}).get("value")

    def snapshot(self) -> tuple[str, str, str]:
        """(URL, ready state, visible text) of what the page shows now; empty while between pages."""
        try:
            value = self.evaluate("JSON.stringify([location.href, document.readyState,"
                                  " document.body ? document.body.innerText : '', !!window.__tbxActed])")
        except DevToolsError:
            return "", "", ""
        url, ready, text, acted = json.loads(value or '["", "", "", false]')
        return (url, ready, text) if not acted else (url, "acted", text)

    def act(self, script: str) -> None:
        """Run a user action on this document, marking it so the next page can be told apart."""
        self.evaluate(f"window.__tbxActed = true; {script}")


@dataclass
class Step:
    """What the user does on a page that matches: ``when`` is a CSS selector present on it."""

    when: str
    script: str


@dataclass
class ChromiumUser:
    """A person at a browser: ``opener`` for a sign-in, following ``steps`` on every page
    until a page's text contains one of ``done``. Call it with a URL like ``webbrowser.open``;
    ``wait`` gives the text of the last page."""

    devtools: DevTools
    steps: list[Step]
    done: tuple[str, ...]
    timeout: float = 30.0
    opened: list[str] = field(default_factory=list)
    pages: list[str] = field(default_factory=list)
    """URL of every page the user saw, in order."""
    _result: Future[str] = field(default_factory=Future)

    def __call__(self, url: str) -> bool:
        self.opened.append(url)
        threading.Thread(target=self._run, args=(url,), name="chromium-user", daemon=True).start()
        return True

    def _run(self, url: str) -> None:
        try:
            self._result.set_result(self._walk(url))
        except BaseException as exc:  # noqa: BLE001 - handed to whoever waits
            self._result.set_exception(exc)

    def _walk(self, url: str) -> str:
        page = self.devtools.new_page()
        page.navigate(url)
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            href, ready, text = page.snapshot()
            if ready != "complete":
                time.sleep(0.05)
                continue
            if not self.pages or self.pages[-1] != href:
                self.pages.append(href)
            if any(marker in text for marker in self.done):
                return text
            step = next((s for s in self.steps if page.evaluate(f"!!document.querySelector({json.dumps(s.when)})")), None)
            if step is None:
                raise DevToolsError(f"the user does not know what to do on {href}: {text[:200]!r}")
            page.act(step.script)
        raise TimeoutError(f"the sign-in did not finish within {self.timeout:g} s; pages seen: {self.pages}")

    def wait(self, timeout: float | None = None) -> str:
        return self._result.result(timeout=timeout or self.timeout + 5)

