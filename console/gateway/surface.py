"""What the gateway can show agents: the compiled policy plus an index of exposed items.

Tools, prompts, resources and resource templates are all grantable items, each known
to the policy by its ref (``console.model.item_ref``). On the aggregate endpoint
``/mcp`` tools and prompts are named ``<server>__<name>``; server names never contain
``__`` (see ``console.model.check_name``), so splitting at the first ``__`` is
unambiguous and two servers' items can never collide. On a per-server endpoint
``/servers/<server>/mcp`` they keep their own names. Resources keep their URIs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from console.gateway.uritemplate import matches
from console.model import ItemKind, item_ref, split_ref
from console.policy import CompiledPolicy, Decision, Reason

SEPARATOR = "__"
NAMED_KINDS = (ItemKind.TOOL, ItemKind.PROMPT)
"""Kinds an agent addresses by name (the others by URI)."""
_UNKNOWN = Decision(False, Reason.UNKNOWN_TOOL)


@dataclass(frozen=True, slots=True)
class ItemRef:
    server_id: str
    server: str
    kind: ItemKind
    name: str
    """The tool or prompt name, the resource URI or the template's URI template."""

    @property
    def ref(self) -> str:
        return item_ref(self.kind, self.name)

    def label(self, toolbox: str) -> str:
        """How the audit log names it: ``tool:local/time/get_current_time``."""
        return f"{self.kind.value}:{toolbox}/{self.server}/{self.name}"


def _tool_wire(record: Mapping[str, Any]) -> dict[str, Any]:
    wire: dict[str, Any] = {"description": record.get("description") or "",
                            "inputSchema": record.get("input_schema") or {"type": "object"}}
    for field, key in (("title", "title"), ("output_schema", "outputSchema"), ("annotations", "annotations")):
        if record.get(field) is not None:
            wire[key] = record[field]
    return wire


class Surface:
    """One immutable view of the vault; the gateway swaps in a new one when it changes."""

    def __init__(self, tables: Mapping[str, Mapping[str, Any]], toolbox_id: str, running: Iterable[str],
                 generation: int) -> None:
        self.generation = generation
        self.toolbox_id = toolbox_id
        self.policy = CompiledPolicy.compile(tables, set(running))
        self.server_ids: dict[str, str] = {
            srv["name"]: srv["id"] for srv in tables.get("servers", {}).values() if srv["toolbox"] == toolbox_id
        }
        self.server_names = {sid: name for name, sid in self.server_ids.items()}
        self.may_ask: dict[str, frozenset[str]] = {
            srv["id"]: frozenset(srv["may_ask"]) for srv in tables.get("servers", {}).values()
            if srv["toolbox"] == toolbox_id and srv.get("may_ask")}
        """Server id -> the requests the owner allows it to send agents (none when absent)."""
        self.wire: dict[tuple[str, str], dict[str, Any]] = {}
        """(server id, ref) -> the definition agents are shown (a listing sets its exposed name)."""
        self.resources: dict[str, list[str]] = {}
        """Resource URI -> the servers offering it."""
        self.templates: dict[str, list[str]] = {}
        """Server id -> its templates' URI templates."""
        for record in tables.get("tools", {}).values():
            server_id = record["server"]
            if server_id not in self.server_names:
                continue
            kind = ItemKind(record.get("kind") or ItemKind.TOOL)
            name = record["name"]
            wire = _tool_wire(record) if kind is ItemKind.TOOL else dict(record.get("definition") or {})
            self.wire[(server_id, item_ref(kind, name))] = wire
            if kind is ItemKind.RESOURCE:
                self.resources.setdefault(name, []).append(server_id)
            elif kind is ItemKind.TEMPLATE:
                self.templates.setdefault(server_id, []).append(name)

    # -- naming ------------------------------------------------------------------------

    def endpoint_server(self, endpoint: str | None) -> str | None:
        """The server id of a per-server endpoint (None for the aggregate or unknown names)."""
        return None if endpoint is None else self.server_ids.get(endpoint)

    def _in_scope(self, endpoint: str | None) -> list[str]:
        if endpoint is None:
            return list(self.server_names)
        only = self.server_ids.get(endpoint)
        return [only] if only else []

    def resolve(self, endpoint: str | None, kind: ItemKind, name: str) -> ItemRef | None:
        """The tool or prompt an agent names on ``endpoint``."""
        if endpoint is None:
            server, sep, item = name.partition(SEPARATOR)
            if not sep or not item:
                return None
        else:
            server, item = endpoint, name
        server_id = self.server_ids.get(server)
        return ItemRef(server_id, server, kind, item) if server_id else None

    @staticmethod
    def exposed_name(endpoint: str | None, item: ItemRef) -> str:
        if item.kind not in NAMED_KINDS:
            return item.name
        return f"{item.server}{SEPARATOR}{item.name}" if endpoint is None else item.name

    # -- decisions ---------------------------------------------------------------------

    def check(self, agent_id: str, item: ItemRef | None, now: float) -> Decision:
        if item is None:
            return _UNKNOWN
        return self.policy.check(agent_id, item.server_id, item.ref, now)

    def resolve_uri(self, agent_id: str, endpoint: str | None, uri: str, now: float) -> tuple[ItemRef | None, Decision]:
        """The resource, or failing that the template, that lets the agent read ``uri``.

        When nothing allows it, the first candidate's refusal is returned (for the audit
        log's reason); with no candidate at all, ``unknown``.
        """
        scope = self._in_scope(endpoint)
        candidates = [ItemRef(sid, self.server_names[sid], ItemKind.RESOURCE, uri)
                      for sid in self.resources.get(uri, ()) if sid in scope]
        candidates += [ItemRef(sid, self.server_names[sid], ItemKind.TEMPLATE, template)
                       for sid in scope for template in self.templates.get(sid, ()) if matches(template, uri)]
        refused: tuple[ItemRef | None, Decision] = (None, _UNKNOWN)
        for item in candidates:
            decision = self.check(agent_id, item, now)
            if decision.allowed:
                return item, decision
            if refused[0] is None:
                refused = (item, decision)
        return refused

    # -- listings ----------------------------------------------------------------------

    def visible_by_kind(self, agent_id: str, endpoint: str | None, now: float) -> dict[ItemKind, list[ItemRef]]:
        """Every item the agent may use on ``endpoint`` right now, by kind, sorted."""
        scope = set(self._in_scope(endpoint))
        found: dict[ItemKind, list[ItemRef]] = {kind: [] for kind in ItemKind}
        for server_id, ref in self.policy.visible_items(agent_id, now):
            if server_id in scope:
                kind, name = split_ref(ref)
                found[kind].append(ItemRef(server_id, self.server_names[server_id], kind, name))
        for items in found.values():
            items.sort(key=lambda r: (r.server, r.name))
        return found

    def visible(self, agent_id: str, endpoint: str | None, now: float, kind: ItemKind) -> list[ItemRef]:
        return self.visible_by_kind(agent_id, endpoint, now)[kind]

    def listing(self, agent_id: str, endpoint: str | None, now: float, kind: ItemKind) -> list[dict[str, Any]]:
        """The ``*/list`` entries of ``kind`` the agent may see, under their exposed names."""
        key = "uri" if kind is ItemKind.RESOURCE else "uriTemplate" if kind is ItemKind.TEMPLATE else "name"
        entries = []
        for item in self.visible(agent_id, endpoint, now, kind):
            wire = self.wire.get((item.server_id, item.ref))
            if wire is not None:
                entries.append({**wire, key: self.exposed_name(endpoint, item)})
        return entries

    def exposed(self, agent_id: str, endpoint: str | None, now: float) -> dict[str, frozenset[str]]:
        """Kind -> exposed names: what a session was last shown, to announce changes."""
        return {kind.value: frozenset(self.exposed_name(endpoint, item) for item in items)
                for kind, items in self.visible_by_kind(agent_id, endpoint, now).items()}
