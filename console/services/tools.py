"""Discovered items: stored with their pin, compared and rescanned on every discovery,
approved by hand.

Items are a server's tools, resources, resource templates and prompts, stored alike
(``ToolDef`` with its ``kind``) under their ref (``console.model.item_ref``). An item is
exposed to agents only once approved, which pins the hash of its definition. When a
later discovery finds a different definition, the item is marked ``changed`` and
blocked for everyone until approved again; the approved definition is kept for a diff.

Every discovery scans every item for poisoning (``console.trust.scan``), unchanged ones
too: what another server of the toolbox offers, or a better scanner, can turn up a new
finding on a definition that did not move. An item with findings is approved only when
the user names every kind it has in ``accept``; approving a whole server skips such
items instead of waving them through. An approved item whose rescan finds a kind the
user did not accept goes back to pending.

The owner can take an approval back (``unapprove``: pending again, grants kept) or block
an item (``block``): blocked stays blocked through rediscovery until approved by name.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from console.errors import NotFound, UsageError
from console.model import (
    Finding,
    ItemKind,
    ServerInstance,
    ToolDef,
    Trust,
    item_pin,
    item_ref,
    stable_definition,
    tool_key,
    utcnow,
)
from console.runtime.session import Discovery
from console.services.items import audit_target, item_order, no_item
from console.trust.scan import KINDS, blocking_kinds, finding_kinds, scan_tool
from console.vault import Repos
from console.workspace import DISCOVERY_META, Change, Workspace

_LISTS = (  # Discovery attribute, kind, the wire field that names the item
    ("tools", ItemKind.TOOL, "name"),
    ("resources", ItemKind.RESOURCE, "uri"),
    ("templates", ItemKind.TEMPLATE, "uriTemplate"),
    ("prompts", ItemKind.PROMPT, "name"),
)


def definition(tool: ToolDef) -> dict[str, Any]:
    return tool.pinned_definition()


@dataclass
class DiscoveryOutcome:
    new: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    rescanned: list[str] = field(default_factory=list)
    """Approved items sent back to pending by a rescan that found a kind not accepted."""
    unchanged: int = 0


@dataclass(frozen=True)
class Found:
    """One item as the server listed it."""

    kind: ItemKind
    name: str
    wire: dict[str, Any]

    @property
    def ref(self) -> str:
        return item_ref(self.kind, self.name)


def found_items(found: Discovery) -> Iterator[Found]:
    """Every item of the discovery, each ref once (the first listing wins)."""
    seen: set[str] = set()
    for attr, kind, key in _LISTS:
        for raw in getattr(found, attr):
            name = raw.get(key)
            if not isinstance(name, str) or not name:
                continue
            item = Found(kind, name, raw)
            if item.ref not in seen:
                seen.add(item.ref)
                yield item


def listed_kinds(found: Discovery) -> set[ItemKind]:
    """The kinds the discovery really listed: what it lacks of the others is not gone."""
    return {kind for attr, kind, _key in _LISTS if attr not in found.failed}


def other_servers_tools(repos: Repos, server: ServerInstance) -> dict[str, set[str]]:
    """Tool names of the other servers in the server's toolbox: what shadowing targets."""
    return {
        other.name: {tool.name for tool in repos.tools.of_server(other.id) if tool.kind is ItemKind.TOOL}
        for other in repos.servers.in_toolbox(server.toolbox)
        if other.id != server.id
    }


def _item(server: ServerInstance, item: Found, pin: str) -> ToolDef:
    wire = item.wire
    if item.kind is ItemKind.TOOL:
        return ToolDef(server=server.id, name=item.name, title=wire.get("title"), description=wire.get("description"),
                       input_schema=wire.get("inputSchema") or {}, output_schema=wire.get("outputSchema"),
                       annotations=wire.get("annotations"), pin=pin)
    return ToolDef(server=server.id, kind=item.kind, name=item.name, title=wire.get("title"),
                   description=wire.get("description"), definition=stable_definition(wire), pin=pin)


def record_discovery(change: Change, server: ServerInstance, found: Discovery, toolbox_name: str) -> DiscoveryOutcome:
    repos = change.repos
    outcome = DiscoveryOutcome()
    existing = {item.ref: item for item in repos.tools.of_server(server.id)}
    label = f"{toolbox_name}/{server.name}"
    others = other_servers_tools(repos, server)
    own = {str(raw.get("name", "")) for raw in found.tools}
    for item in found_items(found):
        pin = item_pin(item.kind, item.wire)
        target = audit_target(item.kind, label, item.name)
        # The whole wire definition is scanned (title too), not only the pinned part.
        findings = scan_tool(item.wire, server=server.name, other_servers_tools=others, own_tools=own)
        old = existing.pop(item.ref, None)
        if old is not None and old.pin == pin:
            outcome.unchanged += 1
            _rescanned(change, old, findings, target, outcome)
            continue
        tool = _item(server, item, pin)
        tool.findings = findings
        kinds = finding_kinds(findings)
        if old is None:
            outcome.new.append(item.ref)
            change.record("tool.discovered", target, detail={"pin": pin, "findings": kinds})
        else:
            # Keep what the user approved; the live definition waits for a new approval.
            tool.approved_pin = old.approved_pin
            tool.trust = Trust.BLOCKED if old.trust is Trust.BLOCKED else \
                Trust.CHANGED if old.approved_pin else Trust.PENDING  # a block outlives any change
            tool.previous = old.previous or (definition(old) if old.approved_pin else None)
            outcome.changed.append(item.ref)
            change.record("tool.changed", target,
                          detail={"approved_pin": old.approved_pin, "old_pin": old.pin, "new_pin": pin,
                                  "findings": kinds})
        repos.tools.put(tool)
    listed = listed_kinds(found)
    for ref, gone in existing.items():
        if gone.kind not in listed:
            continue  # its list failed this time: keep it (and its approval) as it was
        repos.tools.delete([gone.key])
        outcome.removed.append(ref)
        change.record("tool.removed", audit_target(gone.kind, label, gone.name), detail={"pin": gone.pin})
    repos.meta.set(DISCOVERY_META + server.id, {**found.summary(), "at": utcnow().isoformat()})
    return outcome


def _rescanned(change: Change, old: ToolDef, findings: list[Finding], target: str, outcome: DiscoveryOutcome) -> None:
    """An unchanged definition, scanned again: keep the new findings; an approved item that
    now has a kind of finding the user did not accept goes back to pending."""
    if old.findings == findings:
        return
    before, after = finding_kinds(old.findings), finding_kinds(findings)
    accepted = old.accepted if old.accepted is not None else blocking_kinds(old.findings)
    unaccepted = [kind for kind in blocking_kinds(findings) if kind not in accepted]
    demoted = old.exposable and bool(unaccepted)
    if before != after:
        change.record("tool.rescanned", target,
                      detail={"pin": old.pin, "findings": after, "before": before, "unaccepted": unaccepted,
                              "trust": Trust.PENDING.value if demoted else old.trust.value})
    old.findings = findings
    if demoted:
        old.trust = Trust.PENDING
        outcome.rescanned.append(old.ref)
    change.repos.tools.put(old)


@dataclass
class Approval:
    """What ``approve`` did: the items it approved and the ones it left blocked (by ref)."""

    approved: list[str] = field(default_factory=list)
    skipped: dict[str, list[str]] = field(default_factory=dict)
    """Ref -> the kinds of its findings, for items not approved because ``accept`` lacked
    one of them (all of them must be named, so all are listed)."""
    already: int = 0
    """Items that were approved already and were left alone."""
    blocked: list[str] = field(default_factory=list)
    """Blocked items a whole-server approval left blocked (approve each by name to unblock it)."""


def parse_kinds(values: Iterable[str]) -> frozenset[str]:
    """``--accept`` values (each may be comma-separated) as a set of known finding kinds."""
    kinds = {part.strip() for value in values for part in value.split(",") if part.strip()}
    unknown = sorted(kinds - set(KINDS))
    if unknown:
        raise UsageError(f"unknown finding kind {', '.join(map(repr, unknown))}: use one or more of {', '.join(KINDS)}")
    return frozenset(kinds)


def find_tool(repos: Repos, toolbox: str, server: str, ref: str) -> tuple[ServerInstance, ToolDef]:
    """The item ``ref`` (``item_ref``: a tool name, ``prompt:NAME``...) of a server."""
    instance = _server(repos, toolbox, server)
    found = repos.tools.get(tool_key(instance.id, ref))
    if found is None:
        raise no_item(toolbox, server, ref)
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
    """Approve one item (``tool`` is its ref), or every item of every kind of a server.

    A blocked item is approved only by name (a whole server's approval leaves it blocked).
    An item with medium or high findings is approved only when every kind of them is in
    ``accept`` (low findings are shown, not accepted). Asked for by ref, such an item is an error that says what to run; as part
    of a whole server it is skipped and reported in ``Approval.skipped``.
    """
    accepted = parse_kinds(accept)
    result = Approval()
    with ws.change() as change:
        for item in _items(change, toolbox, server, tool):
            target = f"{toolbox}/{server}/{item.ref}"
            if item.exposable:
                result.already += 1
                continue
            if item.trust is Trust.BLOCKED and tool is None:
                result.blocked.append(item.ref)  # blocked by hand: only a deliberate, named approval lifts it
                continue
            kinds = blocking_kinds(item.findings)
            missing = [kind for kind in kinds if kind not in accepted]
            if missing and tool is not None:
                typed = shlex.quote(target)
                raise UsageError(
                    f"{target} has findings ({_summary(item)}); review them with 'tbx tools show {typed}', "
                    f"then run: tbx tools approve {typed} --accept {','.join(kinds)}"
                )
            if missing:
                result.skipped[item.ref] = kinds
                continue
            change.record("tool.approve", audit_target(item.kind, f"{toolbox}/{server}", item.name),
                          detail={"pin": item.pin, "was": item.trust.value, "accepted": kinds,
                                  "findings": len(item.findings)})
            item.approved_pin, item.trust, item.previous, item.accepted = item.pin, Trust.APPROVED, None, kinds
            change.repos.tools.put(item)
            result.approved.append(item.ref)
        return result


def _items(change: Change, toolbox: str, server: str, tool: str | None) -> list[ToolDef]:
    if tool is not None:
        return [find_tool(change.repos, toolbox, server, tool)[1]]
    return sorted(change.repos.tools.of_server(_server(change.repos, toolbox, server).id), key=item_order)


def unapprove(ws: Workspace, toolbox: str, server: str, tool: str | None = None) -> list[str]:
    """Take back the approval of one item (``tool`` is its ref) or of every approved item
    of a server: each goes back to pending, hidden from every agent, its grants kept (they
    work again once it is approved again). Returns the refs whose approval was taken back."""
    taken: list[str] = []
    with ws.change() as change:
        for item in _items(change, toolbox, server, tool):
            if item.trust is not Trust.APPROVED and item.approved_pin is None:
                continue
            change.record("tool.unapprove", audit_target(item.kind, f"{toolbox}/{server}", item.name),
                          detail={"pin": item.pin, "approved_pin": item.approved_pin, "was": item.trust.value})
            item.approved_pin, item.trust, item.previous, item.accepted = None, Trust.PENDING, None, None
            change.repos.tools.put(item)
            taken.append(item.ref)
    return taken


def block(ws: Workspace, toolbox: str, server: str, tool: str | None = None, *, blocked: bool = True) -> list[str]:
    """Block one item, or every item of a server: no agent sees or calls it whatever its
    grants say, and it stays blocked across discoveries and definition changes until it
    is approved again (or unblocked, which makes it pending). ``blocked=False`` unblocks.
    Returns the refs that changed."""
    changed: list[str] = []
    with ws.change() as change:
        for item in _items(change, toolbox, server, tool):
            if (item.trust is Trust.BLOCKED) == blocked:
                continue
            change.record("tool.block" if blocked else "tool.unblock",
                          audit_target(item.kind, f"{toolbox}/{server}", item.name),
                          detail={"pin": item.pin, "was": item.trust.value})
            item.trust = Trust.BLOCKED if blocked else Trust.PENDING
            item.approved_pin, item.accepted = None, None
            change.repos.tools.put(item)
            changed.append(item.ref)
    return changed


def _summary(tool: ToolDef) -> str:
    """``2 high instructions, 1 medium shadowing``: counts per severity and kind."""
    counts: dict[tuple[str, str], int] = {}
    for finding in tool.findings:
        counts[(finding.severity, finding.kind)] = counts.get((finding.severity, finding.kind), 0) + 1
    return ", ".join(f"{n} {severity} {kind}" for (severity, kind), n in counts.items())
