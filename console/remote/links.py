"""Opening an SSH tunnel to a remote toolbox, and a Docker engine through it.

Every remote operation goes through here: the toolbox's private key comes out of the
vault, its pinned host key decides whether the other end is who it was, and the Docker
engine at the far end appears as a local unix socket — so the runtime code that drives
the local engine drives a droplet unchanged.
"""

from __future__ import annotations

import os
from pathlib import Path

from console.errors import NotFound
from console.model import Toolbox
from console.remote.ssh import DOCKER_SOCKET, SshTarget
from console.remote.tunnel import Tunnel
from console.runtime.containers import Engine
from console.workspace import Workspace


def socket_dir() -> Path:
    # Unix socket paths are limited to 107 bytes and the state dir can be deep; the
    # tunnel makes this directory 0700 and its sockets 0600.
    return Path("/tmp") / f"tbx-{os.getuid()}-sockets"


def private_key(ws: Workspace, toolbox: Toolbox) -> str:
    secret = ws.repos.secrets.get(toolbox.ssh_key or "")
    if secret is None:
        raise NotFound(f"the SSH key of toolbox {toolbox.name} is missing from the vault; remove and re-add the toolbox")
    return secret.value


def open_tunnel(ws: Workspace, toolbox: Toolbox, timeout: float = 15.0, remote_socket: str = DOCKER_SOCKET) -> Tunnel:
    """The toolbox's engine socket (or ``remote_socket``) as a local one."""
    if not toolbox.ssh_target:
        raise NotFound(f"toolbox {toolbox.name} has no SSH address; remove and re-add it")
    return Tunnel.open(SshTarget.parse(toolbox.ssh_target), private_key(ws, toolbox), toolbox.ssh_host_key,
                       socket_dir=socket_dir(), timeout=timeout, remote_socket=remote_socket)


class TunneledEngine(Engine):
    """The remote engine over a tunnel this engine owns: closing it closes the tunnel."""

    def __init__(self, tunnel: Tunnel) -> None:
        self.tunnel = tunnel
        try:
            super().__init__(tunnel.endpoint)
        except BaseException:
            tunnel.close()
            raise

    def close(self) -> None:
        try:
            super().close()
        finally:
            self.tunnel.close()


def remote_engine(ws: Workspace, toolbox: Toolbox) -> TunneledEngine:
    return TunneledEngine(open_tunnel(ws, toolbox))
