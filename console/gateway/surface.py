"""What the gateway can show agents: the compiled policy plus an index of exposed names.

On the aggregate endpoint ``/mcp`` tools are named ``<server>__<tool>``; server names
never contain ``__`` (see ``console.model.check_name``), so splitting at the first
``__`` is unambiguous and two servers' tools can never collide. On a per-server endpoint
``/servers/<server>/mcp`` tools keep their own names.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from console.policy import CompiledPolicy, Decision, Reason

SEPARATOR = "__"


@dataclass(frozen=True)
class ToolRef:
    server_id: str
    server: str
    tool: str


class Surface:
    """One immutable snapshot; the gateway swaps in a new one when the vault changes."""

    def __init__(self, tables: Mapping[str, Mapping[str, Any]], toolbox_id: str, running: Iterable[str],
                 generation: int) -> None:
        self.generation = generation
        self.toolbox_id = toolbox_id
        self.policy = CompiledPolicy.compile(tables, set(running))
        self.server_ids: dict[str, str] = {
            srv["name"]: srv["id"] for srv in tables.get("servers", {}).values() if srv["toolbox"] == toolbox_id
        }
        self.server_names = {sid: name for name, sid in self.server_ids.items()}
        self.definitions: dict[tuple[str, str], dict[str, Any]] = {}
        for tool in tables.get("tools", {}).values():
            if tool["server"] in self.server_names:
                wire: dict[str, Any] = {"description": tool.get("description") or "",
                                        "inputSchema": tool.get("input_schema") or {"type": "object"}}
                if tool.get("title") is not None:
                    wire["title"] = tool["title"]
                if tool.get("output_schema") is not None:
                    wire["outputSchema"] = tool["output_schema"]
                if tool.get("annotations") is not None:
                    wire["annotations"] = tool["annotations"]
                self.definitions[(tool["server"], tool["name"])] = wire

    def endpoint_server(self, endpoint: str | None) -> str | None:
        """The server id of a per-server endpoint (None for the aggregate or unknown names)."""
        return None if endpoint is None else self.server_ids.get(endpoint)

    def resolve(self, endpoint: str | None, name: str) -> ToolRef | None:
        if endpoint is None:
            server, sep, tool = name.partition(SEPARATOR)
            if not sep or not tool:
                return None
        else:
            server, tool = endpoint, name
        server_id = self.server_ids.get(server)
        return ToolRef(server_id, server, tool) if server_id else None

    @staticmethod
    def exposed_name(endpoint: str | None, ref: ToolRef) -> str:
        return f"{ref.server}{SEPARATOR}{ref.tool}" if endpoint is None else ref.tool

    def check(self, agent_id: str, ref: ToolRef | None, now: float) -> Decision:
        if ref is None:
            return Decision(False, Reason.UNKNOWN_TOOL)
        return self.policy.check(agent_id, ref.server_id, ref.tool, now)

    def visible(self, agent_id: str, endpoint: str | None, now: float) -> list[ToolRef]:
        only = self.endpoint_server(endpoint)
        if endpoint is not None and only is None:
            return []
        refs = []
        for server_id, tool in self.policy.visible_tools(agent_id, now):
            if server_id in self.server_names and (only is None or server_id == only):
                refs.append(ToolRef(server_id, self.server_names[server_id], tool))
        return sorted(refs, key=lambda r: (r.server, r.tool))

    def tools_json(self, agent_id: str, endpoint: str | None, now: float) -> list[dict[str, Any]]:
        return [
            {"name": self.exposed_name(endpoint, ref), **self.definitions[(ref.server_id, ref.tool)]}
            for ref in self.visible(agent_id, endpoint, now)
            if (ref.server_id, ref.tool) in self.definitions
        ]

    def servers_for(self, agent_id: str, endpoint: str | None, now: float) -> list[str]:
        """Servers whose resources and prompts the agent may use (any live grant on them)."""
        only = self.endpoint_server(endpoint)
        if endpoint is not None and only is None:
            return []
        return sorted(
            sid for sid in self.policy.servers_with_grant(agent_id, now)
            if sid in self.server_names and sid in self.policy.running and (only is None or sid == only)
        )
