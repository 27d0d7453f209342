"""The owner's view of a gateway's servers: ``GET /servers`` on its owner's door.

A remote toolbox's gateway is where its servers are called from, the remote ones over
the droplet's own network: what its supervisor sees (health, ping, the last error) is
their status, which a ping from the console's machine is not. Served beside
``/approvals`` on the control socket, to the same control tokens; it only reads.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from console.gateway.approvals_http import ApprovalControl, Receive, Send, answer
from console.runtime.supervisor import Health

PATH = "/servers"
MAX_ERROR = 500


class ServerHealthControl:
    def __init__(self, control: ApprovalControl, health: Callable[[], list[Health]]) -> None:
        self.control = control
        self.health = health

    @staticmethod
    def handles(path: str) -> bool:
        return path.rstrip("/") == PATH

    async def __call__(self, scope: dict[str, Any], headers: dict[bytes, bytes], receive: Receive,
                       send: Send) -> None:
        if self.control.decider(headers) is None:
            self.control.refused("servers-unauthenticated")
            await answer(send, 401, {"error": "the servers' status is the owner's: send a control token"})
            return
        if scope["method"] != "GET":
            await answer(send, 405, {"error": f"{scope['method'][:10]} {PATH}: only GET"})
            return
        await answer(send, 200, {"servers": [
            {"id": h.server_id, "health": h.health, "state": h.state, "ping_ms": h.ping_ms,
             "restarts": h.restarts, "error": (h.last_error or "")[:MAX_ERROR] or None}
            for h in self.health()]})
