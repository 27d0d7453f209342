"""The real `tbx` in a real pseudo-terminal, read back through a terminal emulator.

Pilot drives the app from inside its own process; this drives it the way a person's
terminal does: the bytes a key sends go into a pty (pexpect), everything the app writes
is fed to pyte, and a test reads the screen a person would see. It catches what Pilot
cannot: keys a terminal never delivers, text cut at the screen's edge, tracebacks
printed on exit, and a non-zero exit status.
"""

from __future__ import annotations

import os
import re
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pexpect
import pyte

# What a key sends in an xterm-compatible terminal (what tmux, GNOME Terminal, iTerm send).
KEYS: dict[str, str] = {
    "enter": "\r",
    "tab": "\t",
    "shift+tab": "\x1b[Z",
    "escape": "\x1b",
    "space": " ",
    "backspace": "\x7f",
    "delete": "\x1b[3~",
    "up": "\x1b[A",
    "down": "\x1b[B",
    "right": "\x1b[C",
    "left": "\x1b[D",
    "home": "\x1b[H",
    "end": "\x1b[F",
    "pageup": "\x1b[5~",
    "pagedown": "\x1b[6~",
    **{f"f{n}": seq for n, seq in zip(range(1, 13), (
        "\x1bOP", "\x1bOQ", "\x1bOR", "\x1bOS", "\x1b[15~", "\x1b[17~", "\x1b[18~", "\x1b[19~",
        "\x1b[20~", "\x1b[21~", "\x1b[23~", "\x1b[24~"), strict=True)},
    **{f"ctrl+{c}": chr(ord(c) - ord("a") + 1) for c in "abcdefghijklmnopqrstuvwxyz"},
}
ESCAPE_PAUSE = 0.15
"""A lone ESC is only a key once nothing follows it for a moment (the app waits to tell it
from the start of a sequence), as when a person presses it."""

TRACEBACK = re.compile(r"Traceback \(most recent call last\)|[Ee]rror: unexpected|╭─+ Traceback")


class ScreenTimeout(AssertionError):
    """What the test waited for never appeared; the message holds the screen as it was."""


@dataclass
class Terminal:
    """One `tbx` process in a pty of ``cols`` x ``rows``, its screen kept up to date."""

    argv: list[str]
    env: dict[str, str]
    cols: int = 80
    rows: int = 24
    cwd: Path | None = None
    transcript: bytearray = field(default_factory=bytearray)
    """Every byte the app wrote, for the checks no screen shows (a traceback on exit)."""

    def __post_init__(self) -> None:
        self.screen = pyte.Screen(self.cols, self.rows)
        self._stream = pyte.ByteStream(self.screen)
        self._lock = threading.Lock()
        self._scanned = 0
        self.child = pexpect.spawn(self.argv[0], self.argv[1:], env=self.env, cwd=str(self.cwd) if self.cwd else None,
                                   dimensions=(self.rows, self.cols), encoding=None, timeout=None)
        self._reader = threading.Thread(target=self._read, name="pty-reader", daemon=True)
        self._reader.start()

    # -- reading --------------------------------------------------------------------------

    def _read(self) -> None:
        # Read all the time, like a terminal: an app whose output is not read blocks writing it.
        while True:
            try:
                chunk = self.child.read_nonblocking(65536, timeout=0.05)
            except pexpect.TIMEOUT:
                continue
            except (pexpect.EOF, OSError):
                return
            with self._lock:
                self.transcript.extend(chunk)
                self._stream.feed(chunk)

    def lines(self) -> list[str]:
        """The screen as text, one string per row, trailing blanks removed."""
        with self._lock:
            return [line.rstrip() for line in self.screen.display]

    def text(self) -> str:
        return "\n".join(self.lines())

    def dump(self) -> str:
        ruler = "".join(str(i % 10) for i in range(self.cols))
        return "\n".join([f"    {ruler}", *(f"{i:2d}: {line}" for i, line in enumerate(self.lines()))])

    def wait(self, check: Callable[[str], object], what: str, timeout: float = 10.0) -> str:
        """Until ``check(screen text)`` holds; returns that screen. Fails with the screen shown."""
        deadline = time.monotonic() + timeout
        while True:
            screen = self.text()
            if check(screen):
                return screen
            self.fail_on_traceback()
            if not self.child.isalive() and not self._reader.is_alive():
                raise ScreenTimeout(f"tbx exited while waiting for {what}\n{self.dump()}\n{self.tail()}")
            if time.monotonic() > deadline:
                raise ScreenTimeout(f"waited {timeout:g}s for {what}; the screen:\n{self.dump()}")
            time.sleep(0.05)

    def wait_for(self, *texts: str, timeout: float = 10.0) -> str:
        return self.wait(lambda screen: all(t in screen for t in texts), " and ".join(map(repr, texts)), timeout)

    def wait_gone(self, *texts: str, timeout: float = 10.0) -> str:
        return self.wait(lambda screen: not any(t in screen for t in texts),
                         " and ".join(map(repr, texts)) + " to go", timeout)

    def row_of(self, text: str) -> int:
        """The first row showing ``text`` (-1: none)."""
        return next((i for i, line in enumerate(self.lines()) if text in line), -1)

    def styled(self, row: int, *, bold: bool | None = None, reverse: bool | None = None) -> list[str]:
        """The runs of text on ``row`` drawn with the given attributes: a focused button's label
        is drawn bold in reverse video, the current tab in bold."""
        with self._lock:
            cells = [self.screen.buffer[row][x] for x in range(self.cols)]
        runs, run = [], ""
        for cell in cells:
            if (bold is None or cell.bold == bold) and (reverse is None or cell.reverse == reverse):
                run += cell.data
            elif run:
                runs.append(run)
                run = ""
        runs.append(run)
        return [r.strip() for r in runs if any(ch.isalnum() for ch in r)]

    def background(self, text: str) -> str | None:
        """The background colour under the first character of ``text`` (None: not shown).
        A focused widget is drawn on another background: a test sees focus move by it."""
        for y, line in enumerate(self.lines()):
            x = line.find(text)
            if x >= 0:
                with self._lock:
                    return str(self.screen.buffer[y][x].bg)
        return None

    def focused_button(self) -> str | None:
        """The label of the focused button, as a person sees it (None: no button has focus)."""
        for y in range(self.rows):
            for run in self.styled(y, bold=True, reverse=True):
                return run
        return None

    def tail(self, chars: int = 3000) -> str:
        return self.transcript[-chars:].decode("utf-8", "replace")

    def fail_on_traceback(self) -> None:
        # Only what arrived since the last look (and a little before it, for a message split
        # between two reads): the whole transcript of a long journey is megabytes.
        with self._lock:
            start = max(0, self._scanned - 200)
            fresh = bytes(self.transcript[start:])
            self._scanned = len(self.transcript)
        if TRACEBACK.search(fresh.decode("utf-8", "replace")):
            raise AssertionError(f"tbx printed a traceback or an unexpected error:\n{self.tail()}\n{self.dump()}")

    # -- typing ---------------------------------------------------------------------------

    def press(self, *keys: str, pause: float = 0.05) -> None:
        """Press keys by name ("enter", "tab", "ctrl+s", "3", "q"): one at a time, as fingers do."""
        for key in keys:
            self.child.send(KEYS.get(key, key).encode())
            time.sleep(ESCAPE_PAUSE if key == "escape" else pause)

    def type(self, text: str) -> None:
        """Type ``text`` a key at a time, as fast as a quick typist."""
        for char in text:
            self.child.send(char.encode())
            time.sleep(0.01)
        time.sleep(0.05)

    def fingerprint(self) -> int:
        """Changes whenever anything drawn changes, colours included (focus moving, say)."""
        with self._lock:
            return hash(tuple((c.data, c.fg, c.bg, c.bold, c.reverse)
                              for row in range(self.rows) for c in self.screen.buffer[row].values()))

    def press_and_settle(self, key: str, timeout: float = 2.0) -> bool:
        """Press a key whose effect is drawn (Tab moves the focus) and wait until it is, so the
        keys after it go where a person, who looks before typing on, would send them."""
        before = self.fingerprint()
        self.press(key)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.fingerprint() != before:
                time.sleep(0.05)
                return True
            time.sleep(0.02)
        return False

    # -- the end --------------------------------------------------------------------------

    def wait_exit(self, timeout: float = 20.0) -> int:
        """Until the process ends; returns its exit status (a signal counts as failure)."""
        deadline = time.monotonic() + timeout
        while self.child.isalive():
            if time.monotonic() > deadline:
                raise AssertionError(f"tbx did not exit within {timeout:g}s\n{self.dump()}")
            time.sleep(0.05)
        self._reader.join(5)
        self.child.close()
        if self.child.signalstatus is not None:
            return 128 + self.child.signalstatus
        return int(self.child.exitstatus or 0)

    def close(self) -> None:
        if self.child.isalive():
            self.child.terminate(force=True)
        self._reader.join(5)


def tbx_argv() -> list[str]:
    """The console as a user starts it (bare `tbx`), from this checkout's interpreter."""
    return [sys.executable, "-m", "console"]


def terminal_env(extra: dict[str, str]) -> dict[str, str]:
    """The test's environment as a terminal's: a real TERM, colours, no inherited TERM quirks."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TEXTUAL", "PYTEST", "TMUX"))}
    env.update({"TERM": "xterm-256color", "COLORTERM": "truecolor", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"})
    env.update(extra)
    return env
