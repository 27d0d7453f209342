"""Discovered tools: stored with their pin, compared on every discovery, approved by hand.

A tool is exposed to agents only once approved, which pins the hash of its definition.
When a later discovery finds a different definition, the tool is marked ``changed`` and
blocked for everyone until approved again; the approved definition is kept for a diff.

Every new or changed definition is scanned for poisoning (``console.trust.scan``). A tool
with findings is approved only when the user names every kind it has in ``accept``:
approving a whole server skips such tools instead of waving them through.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from console.errors import NotFound, UsageError
from console.model import ServerInstance, ToolDef, Trust, tool_key, tool_pin, utcnow
from console.runtime.session import Discovery
from console.trust.scan import KINDS, finding_kinds, scan_tool
from console.vault import Repos
from console.workspace import Change, Workspace

DISCOVERY_META = "discovery|"


def definition(tool: ToolDef) -> dict[str, Any]:
    return {
        "name": tool.name,
        "title": tool.title,
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


def other_servers_tools(repos: Repos, server: ServerInstance) -> dict[str, set[str]]:
    """Tool names of the other servers in the server's toolbox: what shadowing targets."""
    return {
        other.name: {tool.name for tool in repos.tools.of_server(other.id)}
        for other in repos.servers.in_toolbox(server.toolbox)
        if other.id != server.id
    }


def record_discovery(change: Change, server: ServerInstance, found: Discovery, toolbox_name: str) -> DiscoveryOutcome:
    repos = change.repos
    outcome = DiscoveryOutcome()
    existing = {tool.name: tool for tool in repos.tools.of_server(server.id)}
    label = f"{toolbox_name}/{server.name}"
    others = other_servers_tools(repos, server)
    own = {str(raw.get("name", "")) for raw in found.tools}
    for raw in found.tools:
        name = str(raw.get("name", ""))
        if not name:
            continue
        pin = tool_pin(name, raw.get("description"), raw.get("inputSchema"), raw.get("outputSchema"),
                       raw.get("annotations"), raw.get("title"))
        old = existing.pop(name, None)
        if old is not None and old.pin == pin:
            # Same definition, same findings: a rescan would only differ if other servers
            # changed, and re-flagging an approved tool for that would block it silently.
            outcome.unchanged += 1
            continue
        tool = ToolDef(
            server=server.id,
            name=name,
            title=raw.get("title"),
            description=raw.get("description"),
            input_schema=raw.get("inputSchema") or {},
            output_schema=raw.get("outputSchema"),
            annotations=raw.get("annotations"),
            pin=pin,
            # The whole wire definition is scanned (title too), not only the pinned part.
            findings=scan_tool(raw, server=server.name, other_servers_tools=others, own_tools=own),
        )
        kinds = finding_kinds(tool.findings)
        if old is None:
            outcome.new.append(name)
            change.record("tool.discovered", f"tool:{label}/{name}", detail={"pin": pin, "findings": kinds})
        else:
            # Keep what the user approved; the live definition waits for a new approval.
            tool.approved_pin = old.approved_pin
            tool.trust = Trust.CHANGED if old.approved_pin else Trust.PENDING
            tool.previous = old.previous or (definition(old) if old.approved_pin else None)
            outcome.changed.append(name)
            change.record("tool.changed", f"tool:{label}/{name}",
                          detail={"approved_pin": old.approved_pin, "old_pin": old.pin, "new_pin": pin,
                                  "findings": kinds})
        repos.tools.put(tool)
    for name, gone in existing.items():
        repos.tools.delete([gone.key])
        outcome.removed.append(name)
        change.record("tool.removed", f"tool:{label}/{name}", detail={"pin": gone.pin})
    repos.meta.set(DISCOVERY_META + server.id, {**found.summary(), "at": utcnow().isoformat()})
    return outcome


@dataclass
class Approval:
    """What ``approve`` did: the tools it approved and the ones it left blocked."""

    approved: list[str] = field(default_factory=list)
    skipped: dict[str, list[str]] = field(default_factory=dict)
    """Tool name -> the kinds of its findings, for tools not approved because ``accept``
    lacked one of them (all of them must be named, so all are listed)."""
    already: int = 0
    """Tools that were approved already and were left alone."""


def parse_kinds(values: Iterable[str]) -> frozenset[str]:
    """``--accept`` values (each may be comma-separated) as a set of known finding kinds."""
    kinds = {part.strip() for value in values for part in value.split(",") if part.strip()}
    unknown = sorted(kinds - set(KINDS))
    if unknown:
        raise UsageError(f"unknown finding kind {', '.join(map(repr, unknown))}: use one or more of {', '.join(KINDS)}")
    return frozenset(kinds)


def find_tool(repos: Repos, toolbox: str, server: str, tool: str) -> tuple[ServerInstance, ToolDef]:
    instance = _server(repos, toolbox, server)
    found = repos.tools.get(tool_key(instance.id, tool))
    if found is None:
        raise NotFound(f"{toolbox}/{server} has no tool {tool!r}; 'tbx tools list {toolbox}/{server}' shows them")
    return instance, found


def _server(repos: Repos, toolbox: str, server: str) -> ServerInstance:
    box = repos.toolboxes.require(toolbox)
    instance = repos.servers.by_name(box.id, server)
    if instance is None:
        raise NotFound(f"toolbox {toolbox} has no server {server!r}; 'tbx server list' shows them")
    return instance


def approve(
    ws: Workspace, toolbox: str, server: str, tool: str | None = None, accept: Iterable[str] = frozenset()
) -> Approval:
    """Approve one tool, or every tool of a server.

    A tool with findings is approved only when every kind of finding it has is in
    ``accept``. Asked for by name, such a tool is an error that says what to run; as part
    of a whole server it is skipped and reported in ``Approval.skipped``.
    """
    accepted = parse_kinds(accept)
    result = Approval()
    with ws.change() as change:
        if tool is not None:
            tools = [find_tool(change.repos, toolbox, server, tool)[1]]
        else:
            tools = sorted(change.repos.tools.of_server(_server(change.repos, toolbox, server).id), key=lambda t: t.name)
        for item in tools:
            target = f"{toolbox}/{server}/{item.name}"
            if item.exposable:
                result.already += 1
                continue
            kinds = finding_kinds(item.findings)
            missing = [kind for kind in kinds if kind not in accepted]
            if missing and tool is not None:
                raise UsageError(
                    f"{target} has findings ({_summary(item)}); review them with 'tbx tools show {target}', "
                    f"then run: tbx tools approve {target} --accept {','.join(kinds)}"
                )
            if missing:
                result.skipped[item.name] = kinds
                continue
            change.record("tool.approve", f"tool:{target}",
                          detail={"pin": item.pin, "was": item.trust.value, "accepted": kinds,
                                  "findings": len(item.findings)})
            item.approved_pin, item.trust, item.previous = item.pin, Trust.APPROVED, None
            change.repos.tools.put(item)
            result.approved.append(item.name)
        return result


def _summary(tool: ToolDef) -> str:
    """``2 high instructions, 1 medium shadowing``: counts per severity and kind."""
    counts: dict[tuple[str, str], int] = {}
    for finding in tool.findings:
        counts[(finding.severity, finding.kind)] = counts.get((finding.severity, finding.kind), 0) + 1
    return ", ".join(f"{n} {severity} {kind}" for (severity, kind), n in counts.items())
