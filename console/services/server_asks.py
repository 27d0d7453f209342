"""Whether a server may ask agents for sampling, elicitation or roots: the owner's switch.

Off by default. A server's session declares exactly the client capabilities it is
allowed, and a server decides what it offers by them at initialize (server-everything
offers its sampling tool only to a client that can sample), so a running server is
restarted when its switch changes: the new session declares the new set and the
discovery that follows finds what the server offers with it.
"""

from __future__ import annotations

from dataclasses import dataclass

from console.errors import TbxError
from console.model import AGENT_ASKS, AgentAsk
from console.services.servers import DiscoveryOutcome, ServerRef, engine_for, resolve, restart_server
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
    unreached: str | None = None
    """Why a server that may be running was not restarted (its engine did not answer)."""

    def to_json(self) -> dict[str, object]:
        return {"server": self.server, "kind": self.kind, "allowed": self.allowed, "changed": self.changed,
                "may_ask": list(self.may_ask), "restarted": self.restarted is not None,
                **({"unreached": self.unreached} if self.unreached else {})}


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
        may_ask = tuple(server.may_ask)
    if not changed:
        return AskSwitch(ref.label, kind, allowed, changed, may_ask)
    try:
        running = _running(ws, ref)
    except TbxError as exc:
        # The switch holds: the server's next session declares it, whenever that starts.
        return AskSwitch(ref.label, kind, allowed, changed, may_ask, unreached=str(exc))
    return AskSwitch(ref.label, kind, allowed, changed, may_ask, restart_server(ws, target) if running else None)


def _running(ws: Workspace, ref: ServerRef) -> bool:
    engine = engine_for(ws, ref.toolbox)
    try:
        state = engine.find(ref.server.id)
    finally:
        engine.close()
    return state is not None and state.running
