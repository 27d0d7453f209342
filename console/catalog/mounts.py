"""Host paths in an imported server's arguments and env, turned into container mounts.

On the desktop ``mcp-server-filesystem /home/me/docs`` reads the host directory; in a
container that directory has to be mounted, and the argument has to name the mount
(``/mnt/docs``). Only paths that exist here are mounted: a path this machine does not
have (a config copied from a Mac) is left as it is, with a note.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from console.model import Mount

MOUNT_ROOT = "/mnt"


class MountBook:
    """The mounts of one server, deduplicated by host path and by target."""

    def __init__(self, read_only: bool = False) -> None:
        self.read_only = read_only
        self.mounts: list[Mount] = []
        self.notes: list[str] = []

    def rewrite(self, value: str) -> str:
        """``value`` with a host path replaced by its place in the container."""
        prefix, path = _split_option(value)
        host = _host_path(path)
        if host is None:
            return value
        home = Path.home()
        if host.is_dir() and host != Path("/"):
            return prefix + self._target(host)
        # A file is mounted through its directory: SQLite and atomic writers create
        # siblings (journals, temp files) next to it. Not for / or the home directory,
        # which would expose far more than the file.
        parent = host.parent
        if parent.is_dir() and parent not in (Path("/"), home):
            if not host.exists():
                self.notes.append(f"{path} does not exist yet; its directory {parent} is mounted")
            return prefix + f"{self._target(parent)}/{host.name}"
        if host.is_file():
            return prefix + self._target(host)
        self.notes.append(f"{path} looks like a host path but does not exist here; left unchanged")
        return value

    def _target(self, source: Path) -> str:
        for mount in self.mounts:
            if mount.source == str(source):
                return mount.target
        base = re.sub(r"[^A-Za-z0-9._-]+", "-", source.name).strip("-.") or "root"
        taken = {m.target for m in self.mounts}
        target, n = f"{MOUNT_ROOT}/{base}", 2
        while target in taken:
            target, n = f"{MOUNT_ROOT}/{base}-{n}", n + 1
        self.mounts.append(Mount(source=str(source), target=target, read_only=self.read_only))
        return target


def _split_option(value: str) -> tuple[str, str]:
    """``--db-path=/x/y.db`` -> (``--db-path=``, ``/x/y.db``); anything else -> ("", value)."""
    if value.startswith("-") and "=" in value:
        flag, _, rest = value.partition("=")
        return flag + "=", rest
    return "", value


def _host_path(value: str) -> Path | None:
    if value == "~" or value.startswith("~/"):
        value = os.path.expanduser(value)
    if not value.startswith("/") or value.startswith("//") or any(c in value for c in "\n\0"):
        return None
    return Path(os.path.normpath(value))
