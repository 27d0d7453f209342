"""Where each remote toolbox's policy stands, kept beside its mirror (``push.json``).

Light on purpose (no SSH): the console's Toolboxes screen and ``tbx toolbox list`` read
it, ``console.remote.push`` and the background retrier write it.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

from console.errors import TbxError
from console.filelock import held
from console.model import Toolbox
from console.workspace import Workspace

STATE_FILE = "push.json"
LOCK_FILE = "push.lock"


@dataclass
class PushState:
    """What is known of one toolbox's policy, kept in ``push.json`` beside its mirror."""

    wanted: str | None = None
    installed: str | None = None
    wanted_access: list[str] = field(default_factory=list)
    installed_access: list[str] | None = None
    """None when unknown (never pushed through here): any change then counts as removing."""
    error: str | None = None
    failed_at: float | None = None
    landed_at: float | None = None
    landed_by: str | None = None
    audited: bool = True
    """Whether the last landing is in the audit log (a background retry cannot write it)."""

    @property
    def pending(self) -> bool:
        return self.wanted is not None and self.wanted != self.installed

    @property
    def removes(self) -> bool:
        """The change waiting to land takes access away."""
        if not self.pending:
            return False
        if self.installed_access is None:
            return True
        return bool(set(self.installed_access) - set(self.wanted_access))

    @classmethod
    def read(cls, root: Path) -> PushState:
        try:
            raw = json.loads((root / STATE_FILE).read_text())
            return cls(**{k: v for k, v in raw.items() if k in cls.__dataclass_fields__})
        except (OSError, ValueError, TypeError):
            pass
        try:  # before push.json only the installed digest was kept
            installed = (root / "installed").read_text().strip() or None
        except OSError:
            installed = None
        return cls(wanted=installed, installed=installed)

    def write(self, root: Path) -> None:
        root.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = root / f"{STATE_FILE}.{os.getpid()}.tmp"
        tmp.write_text(json.dumps(asdict(self), sort_keys=True))
        os.replace(tmp, root / STATE_FILE)

    def landed(self, by: str) -> None:
        self.installed, self.installed_access = self.wanted, list(self.wanted_access)
        self.error, self.failed_at = None, None
        self.landed_at, self.landed_by, self.audited = time.time(), by, by != "retrier"


@contextlib.contextmanager
def push_lock(root: Path, timeout: float = 60.0) -> Iterator[None]:
    """One pusher per toolbox at a time, across processes: whoever ships last ships the
    newest mirror, because reading it, shipping it and noting it happen under this lock."""
    root.mkdir(parents=True, exist_ok=True, mode=0o700)
    with held(root / LOCK_FILE, timeout,
              lambda pid: TbxError(f"another tbx process (pid {pid}) is pushing to this toolbox")):
        yield


def mirror_root(ws: Workspace, toolbox: Toolbox) -> Path:
    return ws.paths.state_dir / "remote" / toolbox.id


@dataclass(frozen=True)
class PolicyStatus:
    """Where one toolbox's policy stands, for the toolbox list and the console."""

    remote: bool
    pending: bool = False
    removes: bool = False
    error: str | None = None
    since: float | None = None
    landed_at: float | None = None

    def describe(self) -> str:
        if not self.remote:
            return "-"
        if not self.pending:
            return "current"
        when = time.strftime("%H:%M:%S", time.localtime(self.since)) if self.since else "now"
        what = "PENDING, takes access away" if self.removes else "pending"
        return f"{what} since {when}" + (f": {self.error}" if self.error else "")

    def to_json(self) -> dict[str, object]:
        return {"remote": self.remote, "pending": self.pending, "removes_access": self.removes,
                "error": self.error, "failed_at": self.since, "landed_at": self.landed_at}


def policy_status(ws: Workspace, toolbox: Toolbox) -> PolicyStatus:
    if not toolbox.is_remote:
        return PolicyStatus(False)
    state = PushState.read(mirror_root(ws, toolbox))
    return PolicyStatus(True, state.pending, state.removes, state.error if state.pending else None,
                        state.failed_at, state.landed_at)


