"""The owner's door of a remote toolbox's gateway: ``/approvals`` on a Unix socket.

On a droplet or an SSH host the gateway's TCP port faces the internet, and its agents;
the owner reaches the gateway the way the console reaches everything there, over SSH.
So a gateway given ``--control-socket`` serves the approvals (and its servers' status,
``server_health_http``) on that socket alone (a
mode-600 file in the toolbox's mode-700 folder, which the console's tunnel forwards)
and not on its port. The control token is still checked: the socket is one more wall,
not the only one.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
from pathlib import Path
from typing import Any

import uvicorn

from console.gateway.approvals_http import ApprovalControl, Receive, Send, answer
from console.gateway.server import GatewayServer
from console.gateway.server_health_http import ServerHealthControl

log = logging.getLogger(__name__)


class ControlApp:
    """ASGI: the approvals and the servers' status, nothing else (no MCP, no Host to
    check: a browser cannot reach a Unix socket)."""

    def __init__(self, control: ApprovalControl, health: ServerHealthControl | None = None) -> None:
        self.routes: list[ApprovalControl | ServerHealthControl] = [control, *([health] if health else [])]

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        route = next((r for r in self.routes if r.handles(scope["path"])), None)
        if route is None:
            await answer(send, 404, {"error": "this socket serves /approvals and /servers only"})
            return
        await route(scope, dict(scope["headers"]), receive, send)


class ControlSocket:
    """The approvals (and the servers' status) served on ``path`` until ``stop``."""

    def __init__(self, control: ApprovalControl, path: str, health: ServerHealthControl | None = None) -> None:
        self.path = path
        self.server = GatewayServer(uvicorn.Config(ControlApp(control, health), lifespan="off", log_level="error",
                                                   access_log=False, timeout_graceful_shutdown=2))

    async def serve(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            Path(self.path).unlink()  # the socket of a gateway that died
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o177)  # born mode 600: never a moment in which others could connect
        try:
            sock.bind(self.path)
        except OSError as exc:  # the gateway still serves its agents; held calls then time out, saying so
            sock.close()
            log.error("cannot listen for the owner on %s: %s", self.path, exc)
            return
        finally:
            os.umask(old)
        try:
            await self.server.serve(sockets=[sock])
        finally:
            sock.close()
            with contextlib.suppress(FileNotFoundError):
                Path(self.path).unlink()

    def stop(self) -> None:
        self.server.should_exit = True
