"""The gateway as a process others find: its state file, whether it runs, start and stop.

A gateway serving toolbox NAME publishes ``<state dir>/gateway-NAME.json`` while it serves
(written whole, removed when it stops). The gateway writes it, and the console and
``tbx gateway`` read it, through this one module: the format has one definition, and a
gateway started by an earlier version is still found and stopped after an upgrade.

Running means more than a file and a live pid: the published address answers
``/healthz``. A gateway killed outright leaves its file behind, and its pid may since
belong to another process; that process is neither taken for the gateway nor signalled.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from console.errors import TbxError
from console.paths import Paths
from console.vault.keys import PASSPHRASE_ENV


@dataclass(frozen=True)
class GatewayInfo:
    """What a gateway publishes about itself (field order: the console's tests build it)."""

    url: str
    pid: int
    started: float
    problems: tuple[str, ...] = ()
    """What keeps the gateway from working (its audit log cannot be written...), worst first."""
    agents: tuple[str, ...] = ()
    """Ids of the agents with an open session (as the gateway last said, within a second)."""
    toolbox: str = ""

    @property
    def uptime(self) -> float:
        return time.time() - self.started

    def to_json(self) -> dict[str, Any]:
        """The state file's content; ``tbx gateway status --json`` prints it, keys in this order."""
        return {"pid": self.pid, "url": self.url, "toolbox": self.toolbox, "started": self.started,
                "problems": list(self.problems), "agents": list(self.agents)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> GatewayInfo:
        """Raises ValueError, KeyError or TypeError for anything a gateway did not write."""
        pid = int(data["pid"])
        if pid <= 0:  # 0 and -1 would signal whole process groups
            raise ValueError(f"not a process id: {pid}")
        return cls(str(data["url"]), pid, float(data["started"]),
                   tuple(str(p) for p in data.get("problems") or ()),
                   tuple(str(a) for a in data.get("agents") or ()),
                   str(data.get("toolbox") or ""))


def state_file(paths: Paths, toolbox: str) -> Path:
    return paths.state_dir / f"gateway-{toolbox}.json"


def log_file(paths: Paths, toolbox: str) -> Path:
    """Where a gateway started by ``start`` writes its output."""
    return paths.log_dir / f"gateway-{toolbox}.log"


def write_state(paths: Paths, info: GatewayInfo) -> None:
    """Publish (or update) the state file whole: a reader never sees half of it."""
    path = state_file(paths, info.toolbox)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(info.to_json()))
    os.replace(tmp, path)


def remove_state(paths: Paths, toolbox: str) -> None:
    state_file(paths, toolbox).unlink(missing_ok=True)


def read_state(paths: Paths, toolbox: str) -> GatewayInfo | None:
    """The state file as written, running or not; None when there is none or it is not one."""
    try:
        return GatewayInfo.from_json(json.loads(state_file(paths, toolbox).read_text()))
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def running(paths: Paths, toolbox: str, *, timeout: float = 1.5) -> GatewayInfo | None:
    """The gateway serving ``toolbox`` if its process lives and its address answers, else None.

    ``timeout`` bounds the ``/healthz`` request; a wedged gateway counts as not running."""
    import urllib.request  # asked from workers and commands: not on the console's way to its first paint

    info = read_state(paths, toolbox)
    if info is None:
        return None
    try:
        os.kill(info.pid, 0)
        with urllib.request.urlopen(info.url + "/healthz", timeout=timeout) as response:  # noqa: S310 - loopback
            json.loads(response.read())
    except (OSError, ValueError):
        return None
    return info


def start(paths: Paths, toolbox: str, *, passphrase: str | None = None, timeout: float = 30.0) -> GatewayInfo:
    """Start ``tbx gateway serve`` as its own process (it outlives whoever started it) and
    wait until it answers; one already running is returned as it is.

    ``passphrase`` is handed to it for a vault without a key in the keyring."""
    if (already := running(paths, toolbox)) is not None:
        return already
    env = dict(os.environ)
    if passphrase:
        env[PASSPHRASE_ENV] = passphrase
    log_path = log_file(paths, toolbox)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log = open(log_path, "ab")  # noqa: SIM115 - handed to the child
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "console", "gateway", "serve", "--toolbox", toolbox],
            env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True,
        )
    finally:
        log.close()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (info := running(paths, toolbox)) is not None:
            return info
        if proc.poll() is not None:
            raise TbxError(f"the gateway exited at start (see {log_path})")
        time.sleep(0.1)
    raise TbxError(f"the gateway did not start within {timeout:g}s (see {log_path})")


def stop(paths: Paths, toolbox: str, *, timeout: float = 15.0) -> None:
    """Ask the running gateway to stop (SIGINT: it ends sessions, flushes its audit log and
    withdraws its address), and kill it if it has not within ``timeout``. Nothing is
    signalled unless the gateway answers at its address."""
    info = running(paths, toolbox)
    if info is None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(info.pid, signal.SIGINT)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and running(paths, toolbox) is not None:
        time.sleep(0.1)
    if running(paths, toolbox) is not None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(info.pid, signal.SIGKILL)
