"""Discovered tools: stored with their pin, compared on every discovery, approved by hand.

A tool is exposed to agents only once approved, which pins the hash of its definition.
When a later discovery finds a different definition, the tool is marked ``changed`` and
blocked for everyone until approved again; the approved definition is kept for a diff.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from console.errors import NotFound
from console.model import ServerInstance, ToolDef, Trust, tool_pin, utcnow
from console.runtime.session import Discovery
from console.workspace import Change, Workspace

DISCOVERY_META = "discovery|"


def definition(tool: ToolDef) -> dict[str, Any]:
    return {
        "name": tool.name,
        "description": tool.description,
        "inputSchema": tool.input_schema,
        "outputSchema": tool.output_schema,
        "annotations": tool.annotations,
    }


@dataclass
class DiscoveryOutcome:
    new: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: int = 0


def record_discovery(change: Change, server: ServerInstance, found: Discovery, toolbox_name: str) -> DiscoveryOutcome:
    repos = change.repos
    outcome = DiscoveryOutcome()
    existing = {tool.name: tool for tool in repos.tools.of_server(server.id)}
    label = f"{toolbox_name}/{server.name}"
    for raw in found.tools:
        name = str(raw.get("name", ""))
        if not name:
            continue
        pin = tool_pin(name, raw.get("description"), raw.get("inputSchema"), raw.get("outputSchema"), raw.get("annotations"))
        old = existing.pop(name, None)
        if old is not None and old.pin == pin:
            outcome.unchanged += 1
            continue
        tool = ToolDef(
            server=server.id,
            name=name,
            description=raw.get("description"),
            input_schema=raw.get("inputSchema") or {},
            output_schema=raw.get("outputSchema"),
            annotations=raw.get("annotations"),
            pin=pin,
        )
        if old is None:
            outcome.new.append(name)
            change.record("tool.discovered", f"tool:{label}/{name}", detail={"pin": pin})
        else:
            # Keep what the user approved; the live definition waits for a new approval.
            tool.approved_pin = old.approved_pin
            tool.trust = Trust.CHANGED if old.approved_pin else Trust.PENDING
            tool.previous = old.previous or (definition(old) if old.approved_pin else None)
            outcome.changed.append(name)
            change.record("tool.changed", f"tool:{label}/{name}",
                          detail={"approved_pin": old.approved_pin, "old_pin": old.pin, "new_pin": pin})
        repos.tools.put(tool)
    for name, gone in existing.items():
        repos.tools.delete([gone.key])
        outcome.removed.append(name)
        change.record("tool.removed", f"tool:{label}/{name}", detail={"pin": gone.pin})
    repos.meta.set(DISCOVERY_META + server.id, {**found.summary(), "at": utcnow().isoformat()})
    return outcome


def approve(ws: Workspace, toolbox: str, server: str, tool: str | None = None) -> list[str]:
    """Approve one tool, or every tool of a server; return the names approved."""
    with ws.change() as change:
        box = change.repos.toolboxes.require(toolbox)
        instance = change.repos.servers.by_name(box.id, server)
        if instance is None:
            raise NotFound(f"toolbox {toolbox} has no server {server!r}; 'tbx server list' shows them")
        tools = change.repos.tools.of_server(instance.id)
        if tool is not None:
            tools = [t for t in tools if t.name == tool]
            if not tools:
                raise NotFound(f"{toolbox}/{server} has no tool {tool!r}; 'tbx tools list {toolbox}/{server}' shows them")
        approved = []
        for item in tools:
            if item.exposable:
                continue
            change.record("tool.approve", f"tool:{toolbox}/{server}/{item.name}",
                          detail={"pin": item.pin, "was": item.trust.value})
            item.approved_pin, item.trust, item.previous = item.pin, Trust.APPROVED, None
            change.repos.tools.put(item)
            approved.append(item.name)
        return approved
