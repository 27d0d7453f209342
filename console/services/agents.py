"""Agents: identities with a bearer token, shown once and stored only as a hash."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from console.errors import AlreadyExists
from console.model import Agent, check_name
from console.policy import hash_token, new_agent_token
from console.workspace import Workspace


@dataclass(frozen=True)
class AgentSummary:
    id: str
    name: str
    enabled: bool
    created: datetime
    fingerprint: str
    """First 12 hex digits of the token's hash: tells tokens apart without revealing them."""
    toolboxes: int
    tool_grants: int

    def to_json(self) -> dict[str, object]:
        return {
            "id": self.id,
            "name": self.name,
            "enabled": self.enabled,
            "created": self.created.isoformat(),
            "token_fingerprint": self.fingerprint,
            "toolbox_grants": self.toolboxes,
            "tool_grants": self.tool_grants,
        }


def add_agent(ws: Workspace, name: str) -> tuple[Agent, str]:
    """Create an agent; return it with its token, which is never retrievable again."""
    check_name("agent", name)
    token = new_agent_token()
    with ws.change() as change:
        if change.repos.agents.by_name(name):
            raise AlreadyExists(f"an agent named {name!r} exists; pick another name or 'tbx agent rotate {name}'")
        agent = change.repos.agents.put(Agent(name=name, token_hash=hash_token(token)))
        change.record("agent.add", f"agent:{name}", agent=name)
    return agent, token


def rotate_token(ws: Workspace, name: str) -> str:
    token = new_agent_token()
    with ws.change() as change:
        agent = change.repos.agents.require(name)
        agent.token_hash = hash_token(token)
        change.repos.agents.put(agent)
        change.record("agent.rotate", f"agent:{name}", agent=name)
    return token


def set_enabled(ws: Workspace, name: str, enabled: bool) -> bool:
    """Enable or disable; return whether anything changed."""
    with ws.change() as change:
        agent = change.repos.agents.require(name)
        if agent.disabled == (not enabled):
            return False
        agent.disabled = not enabled
        change.repos.agents.put(agent)
        change.record("agent.enable" if enabled else "agent.disable", f"agent:{name}", agent=name)
    return True


def remove_agent(ws: Workspace, name: str) -> int:
    """Delete the agent and every grant it holds; return how many grants went with it."""
    with ws.change() as change:
        repos = change.repos
        agent = repos.agents.require(name)
        removed = repos.tool_grants.delete(
            [k for k, doc in repos.tool_grants.raw().items() if doc["agent"] == agent.id]
        )
        removed += repos.toolbox_grants.delete(
            [k for k, doc in repos.toolbox_grants.raw().items() if doc["agent"] == agent.id]
        )
        repos.agents.delete([agent.id])
        change.record("agent.remove", f"agent:{name}", agent=name, detail={"grants_removed": removed})
    return removed


def list_agents(ws: Workspace) -> list[AgentSummary]:
    repos = ws.repos
    toolboxes: dict[str, int] = {}
    tools: dict[str, int] = {}
    for doc in repos.toolbox_grants.raw().values():
        toolboxes[doc["agent"]] = toolboxes.get(doc["agent"], 0) + 1
    for doc in repos.tool_grants.raw().values():
        tools[doc["agent"]] = tools.get(doc["agent"], 0) + 1
    return sorted(
        (
            AgentSummary(
                id=a.id,
                name=a.name,
                enabled=not a.disabled,
                created=a.created,
                fingerprint=a.token_hash[:12],
                toolboxes=toolboxes.get(a.id, 0),
                tool_grants=tools.get(a.id, 0),
            )
            for a in repos.agents
        ),
        key=lambda s: s.name,
    )
