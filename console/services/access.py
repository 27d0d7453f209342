"""An agent's effective surface: every item (tool, resource, template, prompt) it could
reach, and why it can or cannot."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from console.model import WILDCARD, ItemKind, split_ref
from console.policy import NEVER, Reason
from console.services.hints import explain
from console.services.items import ref_order
from console.workspace import Workspace


@dataclass(frozen=True)
class ToolAccess:
    server: str
    tool: str
    """The item's ref: what ``tbx grant`` takes after ``TOOLBOX/SERVER/``."""
    allowed: bool
    reason: str
    why: str
    expires: float | None
    kind: str = ItemKind.TOOL.value
    name: str = ""
    """The tool or prompt name, the resource URI or the template."""
    ask: bool = False
    """Allowed one call at a time, each approved by the owner (an ask grant)."""


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
    """What ``agent_name`` may use now. By default only servers it holds grants on are
    listed; ``everything`` lists every known item with the reason it is out of reach."""
    agent = ws.repos.agents.require(agent_name)
    policy = ws.policy()
    entry = policy.agents[agent.id]
    now = ws.now()
    report = AccessReport(agent.name, entry.enabled, [])
    for toolbox in sorted(ws.repos.toolboxes, key=lambda t: t.name):
        granted = toolbox.id in entry.toolboxes
        section = ToolboxAccess(toolbox.name, granted)
        for server in sorted(ws.repos.servers.in_toolbox(toolbox.id), key=lambda s: s.name):
            grants = entry.grants.get(server.id, {})
            if not grants and not everything:
                continue
            names = set(policy.server_tools.get(server.id, ())) | {t for t in grants if t != WILDCARD}
            if WILDCARD in grants and not names:
                section.tools.append(
                    ToolAccess(server.name, WILDCARD, False, Reason.UNKNOWN_TOOL.value,
                               f"server-wide grant; {server.name} has no discovered items yet", None, name=WILDCARD)
                )
            for ref in sorted(names, key=ref_order):
                decision = policy.check(agent.id, server.id, ref, now)
                expires = None if decision.expires == NEVER else decision.expires
                kind, name = split_ref(ref)
                section.tools.append(
                    ToolAccess(server.name, ref, decision.allowed, decision.reason.value,
                               explain(policy, decision, agent.id, server.id, ref), expires, kind.value, name,
                               decision.ask)
                )
        if granted or section.tools or everything:
            report.toolboxes.append(section)
    return report
