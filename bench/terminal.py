"""A real terminal for the console benchmark: a tmux server of our own, driven through one
control-mode client.

Starting `tmux capture-pane` as a process costs about 4 ms of CPU per look, which the
console under test would pay for on a 2-core machine; through the control client a look
costs about 0.4 ms, and we look only when the pane has written something (tmux tells the
client with ``%output``), or every 10 ms at worst.
"""

from __future__ import annotations

import os
import queue
import re
import shlex
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

ACTIVE_TAB = re.compile(r"\x1b\[1m(?:\x1b\[[0-9;]*m)*(\d) ")
"""The header's tab in bold: the screen that drew the frame (``capture-pane -e``)."""
_SGR = re.compile(r"\x1b\[[0-9;:]*m")


class Tmux:
    def __init__(self, size: tuple[int, int], env: dict[str, str]) -> None:
        """A private tmux server (its own socket) whose sessions inherit ``env``."""
        self.size = size
        self.socket = f"tbx-bench-{os.getpid()}"
        self._run("-f", "/dev/null", "new-session", "-d", "-s", "idle", "-x", str(size[0]), "-y", str(size[1]),
                  "sleep 86400", env=env)
        self._run("set-option", "-g", "detach-on-destroy", "off")  # a console that quits leaves the client on
        self._client = subprocess.Popen(
            ["tmux", "-L", self.socket, "-C", "attach", "-t", "idle", "-f", "ignore-size"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, encoding="utf-8", errors="replace", bufsize=1)
        self._replies: queue.Queue[list[str]] = queue.Queue()
        self._output = threading.Event()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _run(self, *args: str, env: dict[str, str] | None = None) -> None:
        subprocess.run(["tmux", "-L", self.socket, *args], check=True, env=env, capture_output=True)

    def _read(self) -> None:
        assert self._client.stdout is not None
        block: list[str] | None = None
        ours = False
        for line in self._client.stdout:
            if line.startswith("%begin"):
                block, ours = [], line.split()[-1] == "1"  # flag 1: a command we sent (not attach's own)
            elif line.startswith(("%end", "%error")) and block is not None:
                if ours:
                    self._replies.put(block)
                block = None
            elif block is not None:
                block.append(line.rstrip("\n"))
            elif line.startswith("%output"):
                self._output.set()

    def command(self, *args: str) -> list[str]:
        """Run one tmux command through the control client; its output lines."""
        assert self._client.stdin is not None
        self._client.stdin.write(" ".join(shlex.quote(a) for a in args) + "\n")
        self._client.stdin.flush()
        return self._replies.get(timeout=10)

    # -- sessions -----------------------------------------------------------------------

    def start(self, session: str, command: str, cwd: Path, env: dict[str, str]) -> float:
        """Start ``command`` in a new window of the terminal's size; the moment it started.
        The control client follows that session, so it hears of its output."""
        variables = [arg for name, value in env.items() for arg in ("-e", f"{name}={value}")]
        started = time.perf_counter()
        self.command("new-session", "-d", "-s", session, "-x", str(self.size[0]), "-y", str(self.size[1]),
                     "-c", str(cwd), *variables, command)
        self.command("switch-client", "-t", session)
        return started

    def stop(self, session: str) -> None:
        self.command("switch-client", "-t", "idle")
        self.command("kill-session", "-t", session)

    def keys(self, session: str, *keys: str) -> float:
        """Press keys (tmux names: ``2``, ``Enter``, ``Escape``); the moment they went."""
        self._output.clear()
        moment = time.perf_counter()
        self.command("send-keys", "-t", session, *keys)
        return moment

    def screen(self, session: str) -> tuple[str, str]:
        """What the pane shows: (plain text, text with its colours and attributes)."""
        styled = "\n".join(self.command("capture-pane", "-p", "-e", "-t", session))
        return _SGR.sub("", styled), styled

    def wait(self, session: str, seen: Callable[[str, str], bool], timeout: float = 10.0) -> float | None:
        """Look at the pane each time it writes (every 10 ms at worst) until ``seen(plain,
        styled)``: the moment it was seen, or None after ``timeout`` seconds."""
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            self._output.clear()
            plain, styled = self.screen(session)
            if seen(plain, styled):
                return time.perf_counter()
            self._output.wait(0.01)
        return None

    def pid(self, session: str) -> int:
        """The process the session's pane runs (its command must ``exec``)."""
        return int(self.command("list-panes", "-t", session, "-F", "#{pane_pid}")[0])

    def alive(self, session: str) -> bool:
        return any(line.split(":")[0] == session for line in self.command("list-sessions", "-F", "#{session_name}:"))

    def close(self) -> None:
        if self._client.stdin is not None:
            self._client.stdin.close()
        self._client.wait(5)
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True)


def main_thread_times(pid: int) -> tuple[float, float]:
    """Seconds the process's main thread has run on a CPU, and waited for one (runnable
    but not running: the machine's load), from the scheduler's own accounting."""
    try:
        run_ns, wait_ns, _slices = Path(f"/proc/{pid}/task/{pid}/schedstat").read_text().split()
    except (OSError, ValueError):
        return float("nan"), float("nan")
    return int(run_ns) / 1e9, int(wait_ns) / 1e9


def active_tab(styled: str) -> str | None:
    """The digit of the screen the header says is in front, or None."""
    found = ACTIVE_TAB.search(styled.split("\n", 1)[0])
    return found.group(1) if found else None
