"""An agent's effective tool surface: every tool it could reach, and why it can or cannot."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from console.model import WILDCARD
from console.policy import NEVER, Reason
from console.workspace import Workspace


@dataclass(frozen=True)
class ToolAccess:
    server: str
    tool: str
    allowed: bool
    reason: str
    why: str
    expires: float | None


@dataclass
class ToolboxAccess:
    name: str
    granted: bool
    tools: list[ToolAccess] = field(default_factory=list)


@dataclass
class AccessReport:
    agent: str
    enabled: bool
    toolboxes: list[ToolboxAccess]

    @property
    def allowed(self) -> list[tuple[str, ToolAccess]]:
        return [(tb.name, t) for tb in self.toolboxes for t in tb.tools if t.allowed]

    def to_json(self) -> dict[str, object]:
        return asdict(self)


def access_report(ws: Workspace, agent_name: str, *, everything: bool = False) -> AccessReport:
    """What ``agent_name`` may call now. By default only servers it holds grants on are
    listed; ``everything`` lists every known tool with the reason it is out of reach."""
    agent = ws.repos.agents.require(agent_name)
    policy = ws.policy()
    entry = policy.agents[agent.id]
    now = ws.now()
    tools_by_server: dict[str, set[str]] = {}
    for server_id, name in policy.tool_reason:
        tools_by_server.setdefault(server_id, set()).add(name)
    report = AccessReport(agent.name, entry.enabled, [])
    for toolbox in sorted(ws.repos.toolboxes, key=lambda t: t.name):
        granted = toolbox.id in entry.toolboxes
        section = ToolboxAccess(toolbox.name, granted)
        for server in sorted(ws.repos.servers.in_toolbox(toolbox.id), key=lambda s: s.name):
            grants = entry.grants.get(server.id, {})
            if not grants and not everything:
                continue
            names = tools_by_server.get(server.id, set()) | {t for t in grants if t != WILDCARD}
            if WILDCARD in grants and not names:
                section.tools.append(
                    ToolAccess(server.name, WILDCARD, False, Reason.UNKNOWN_TOOL.value,
                               f"server-wide grant; {server.name} has no discovered tools yet", None)
                )
            for name in sorted(names):
                decision = policy.check(agent.id, server.id, name, now)
                expires = None if decision.expires == NEVER else decision.expires
                section.tools.append(
                    ToolAccess(server.name, name, decision.allowed, decision.reason.value,
                               policy.explain(decision, agent.id, server.id, name), expires)
                )
        if granted or section.tools or everything:
            report.toolboxes.append(section)
    return report
