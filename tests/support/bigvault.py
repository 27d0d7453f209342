"""A big vault for performance work: many agents, many tools, many grants, in one change.

``generate_big_vault(ws)`` fills an open workspace with one toolbox of ``tools`` tools
(20 per server unless ``tools_per_server`` says) and ``agents`` agents, most with toolbox access, about 5% of the tool
cells granted directly, a few server-wide grants and some expiring grants. Seeded, so the
same arguments always give the same vault (ids and token hashes aside).
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from console.model import (
    Agent,
    DesiredState,
    ServerInstance,
    Toolbox,
    ToolboxGrant,
    ToolDef,
    ToolGrant,
    Trust,
    tool_pin,
)
from console.workspace import Workspace

TOOLS_PER_SERVER = 20


@dataclass(frozen=True)
class BigVault:
    toolbox: str
    agents: int
    servers: int
    tools: int
    tool_grants: int


def generate_big_vault(ws: Workspace, agents: int = 100, tools: int = 1000, *, toolbox: str = "local",
                       seed: int = 7, tools_per_server: int = TOOLS_PER_SERVER) -> BigVault:
    rng = random.Random(seed)
    now = datetime.now(UTC)
    box = ws.repos.toolboxes.by_name(toolbox)
    new_box = box is None
    box = box or Toolbox(name=toolbox)
    server_count = max(1, -(-tools // tools_per_server))
    servers = [ServerInstance(toolbox=box.id, name=f"srv-{i:03d}", desired_state=DesiredState.RUNNING)
               for i in range(server_count)]
    schema = {"type": "object", "properties": {"q": {"type": "string"}}}
    defs: list[ToolDef] = []
    for index in range(tools):
        server = servers[index // tools_per_server]
        name = f"tool_{index % tools_per_server:02d}_{('read', 'write', 'list', 'search', 'fetch')[index % 5]}"
        pin = tool_pin(name, "does a thing", schema, None, None)
        roll = rng.random()
        trust = Trust.APPROVED if roll < 0.9 else Trust.PENDING if roll < 0.96 else Trust.CHANGED
        defs.append(ToolDef(server=server.id, name=name, description="does a thing", input_schema=schema, pin=pin,
                            approved_pin=None if trust is Trust.PENDING else pin if trust is Trust.APPROVED
                            else "0" * 64, trust=trust))
    people = [Agent(name=f"agent-{i:03d}", token_hash=os.urandom(32).hex(), disabled=rng.random() < 0.05)
              for i in range(agents)]
    access = [ToolboxGrant(agent=a.id, toolbox=box.id) for a in people if rng.random() < 0.9]
    grants: dict[str, ToolGrant] = {}
    for agent in people:
        for tool in rng.sample(defs, max(1, tools // 20)):
            expires = now + timedelta(hours=rng.randrange(1, 400)) if rng.random() < 0.1 else None
            grant = ToolGrant(agent=agent.id, server=tool.server, tool=tool.name, expires=expires)
            grants[grant.key] = grant
        for server in rng.sample(servers, min(2, len(servers))):
            grant = ToolGrant(agent=agent.id, server=server.id, tool="*")
            grants[grant.key] = grant
    with ws.change() as change:
        repos = change.repos
        if new_box:
            repos.toolboxes.put(box)
        repos.servers.put_many(servers)
        repos.tools.put_many(defs)
        repos.agents.put_many(people)
        repos.toolbox_grants.put_many(access)
        repos.tool_grants.put_many(grants.values())
    return BigVault(toolbox, agents, server_count, tools, len(grants))
