"""Whether a server may ask agents for sampling, elicitation or roots: the owner's switch.

Off by default. A server's session declares exactly the client capabilities it is
allowed, and a server decides what it offers by them at initialize (server-everything
offers its sampling tool only to a client that can sample), so a running server is
restarted when its switch changes: the new session declares the new set and the
discovery that follows finds what the server offers with it.
"""

from __future__ import annotations

from dataclasses import dataclass

from console.model import AGENT_ASKS, AgentAsk, DesiredState
from console.services.servers import DiscoveryOutcome, resolve, restart_server
from console.workspace import Workspace


@dataclass(frozen=True)
class AskSwitch:
    server: str
    """``TOOLBOX/SERVER``."""
    kind: AgentAsk
    allowed: bool
    changed: bool
    may_ask: tuple[AgentAsk, ...]
    """Everything the server may ask agents for now."""
    restarted: DiscoveryOutcome | None = None

    def to_json(self) -> dict[str, object]:
        return {"server": self.server, "kind": self.kind, "allowed": self.allowed, "changed": self.changed,
                "may_ask": list(self.may_ask), "restarted": self.restarted is not None}


def set_may_ask(ws: Workspace, target: str, kind: AgentAsk, allowed: bool) -> AskSwitch:
    """Allow or deny ``kind`` for the server; restart it if it runs and the switch moved."""
    ref = resolve(ws, target)
    with ws.change() as change:
        server = change.repos.servers.get(ref.server.id) or ref.server
        wanted = set(server.may_ask) | {kind} if allowed else set(server.may_ask) - {kind}
        changed = wanted != set(server.may_ask)
        if changed:
            server.may_ask = [k for k in AGENT_ASKS if k in wanted]
            change.repos.servers.put(server)
            change.record(f"server.{'allow' if allowed else 'deny'}", f"server:{ref.label}",
                          detail={"kind": kind, "may_ask": server.may_ask})
        running = server.desired_state is DesiredState.RUNNING
        may_ask = tuple(server.may_ask)
    restarted = restart_server(ws, target) if changed and running else None
    return AskSwitch(ref.label, kind, allowed, changed, may_ask, restarted)
