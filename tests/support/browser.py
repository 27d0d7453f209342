"""Headless Chromium as the user's browser in OAuth tests.

``HeadlessChromium`` is an "open this URL" callable like ``webbrowser.open``: it loads
the provider's authorize URL, follows the redirect to the product's loopback callback,
and lets the test read the page the callback served.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
from types import TracebackType

FLAGS = (
    "--headless",
    "--no-sandbox",  # we run as root in a container
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
)


def chromium_path() -> str | None:
    """The Chromium binary: ``$CHROMIUM`` if set, else the first one on PATH."""
    override = os.environ.get("CHROMIUM")
    if override:
        return override if os.access(override, os.X_OK) else None
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    return None


def require_chromium() -> str:
    """The Chromium binary, or the test ends here: skipped on a machine without it, failed
    under CI (``make test`` installs Debian's chromium, so CI must have it)."""
    import pytest

    found = chromium_path()
    if found is None:
        if os.environ.get("CI") == "true":
            pytest.fail("CI needs Chromium: scripts/testenv.sh installs Debian's chromium")
        pytest.skip("Chromium is not installed (scripts/testenv.sh installs it)")
    return found


class HeadlessChromium:
    """Opens URLs the way a user's browser would; every ``open`` gets a fresh profile."""

    def __init__(self, binary: str | None = None) -> None:
        found = binary or chromium_path()
        if found is None:
            raise RuntimeError("Chromium not found: install Debian's 'chromium' package or set CHROMIUM")
        self.binary = found
        self.opened: list[str] = []
        """Every URL given to ``open``, in order."""
        self._procs: list[tuple[subprocess.Popen[str], str]] = []

    def __call__(self, url: str) -> bool:
        """``webbrowser.open``-style: start loading ``url`` and report success."""
        self.open(url)
        return True

    def open(self, url: str) -> None:
        """Start Chromium on ``url`` in the background and return at once."""
        profile = tempfile.mkdtemp(prefix="tbx-chromium-")
        proc = subprocess.Popen(
            [self.binary, *FLAGS, f"--user-data-dir={profile}", "--dump-dom", url],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            start_new_session=True,  # its own process group, so close() reaps the helpers too
        )
        self.opened.append(url)
        self._procs.append((proc, profile))

    def wait(self, timeout: float = 20) -> str:
        """Wait for the last opened page to finish loading; its DOM as text."""
        if not self._procs:
            raise RuntimeError("nothing was opened")
        proc, _ = self._procs[-1]
        try:
            out, _ = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self._kill(proc)
            raise TimeoutError(f"Chromium did not finish loading within {timeout:g} s") from None
        return out

    def close(self) -> None:
        """Kill whatever is still running and remove the profiles."""
        for proc, profile in self._procs:
            self._kill(proc)
            shutil.rmtree(profile, ignore_errors=True)
        self._procs.clear()

    def __enter__(self) -> HeadlessChromium:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    @staticmethod
    def _kill(proc: subprocess.Popen[str]) -> None:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)  # the group we created for this process
        with contextlib.suppress(subprocess.TimeoutExpired, ValueError):
            proc.communicate(timeout=5)
        # a renderer may outlive the main process after a normal exit
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
