"""Which hosts a server may reach, and where its gateway's allow-list proxy listens for it.

The list lives on the server (``ServerInstance.egress``). Changing it is a vault change
the toolbox's gateway picks up like any policy change: its proxy for the server allows
the new list from the next connection on, and closes open tunnels to hosts no longer
allowed. Only turning egress on or off touches the container (``server_edit.edit_server``).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from console.egress.allowlist import AllowList
from console.model import Toolbox
from console.paths import Paths
from console.workspace import Workspace

EGRESS_DIR = "egress"


def allow_list(current: Iterable[str], *, add: Iterable[str] = (), remove: Iterable[str] = ()) -> list[str]:
    """The canonical list after adding and removing (each entry checked: EgressError names
    a bad one). Removing an entry that is not there says so rather than doing nothing."""
    kept = AllowList.parse(current).entries
    gone = AllowList.parse(remove).entries
    missing = [entry for entry in gone if entry not in kept]
    if missing:
        from console.egress.allowlist import EgressError

        raise EgressError(f"{', '.join(missing)} is not on the list; 'tbx server egress TOOLBOX/SERVER' shows it")
    return list(AllowList.parse([*(e for e in kept if e not in gone), *add]).entries)


def gateway_egress_dir(paths: Paths, server_id: str) -> Path:
    """Where a gateway's proxy for the server listens, as the gateway sees it (on a droplet
    the toolbox's folder is the gateway container's TBX_HOME)."""
    return paths.data_dir / EGRESS_DIR / server_id


def egress_host_dir(ws: Workspace, toolbox: Toolbox, server_id: str, *, create: bool = False) -> str:
    """The same folder as the toolbox's engine host sees it, for the server's container."""
    if toolbox.is_remote:
        from console.remote.deploy import remote_home

        return f"{remote_home(toolbox)}/{EGRESS_DIR}/{server_id}"
    folder = gateway_egress_dir(ws.paths, server_id)
    if create:
        # The gateway (this user) makes its socket here; the server (another uid) only
        # connects to it, and the socket itself is open to it.
        folder.mkdir(parents=True, exist_ok=True, mode=0o755)
    return str(folder)
