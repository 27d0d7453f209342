"""What the Grants matrix shows, without Textual: rows × agents, read from the raw tables.

Rows are the toolbox access row (the kill switch), then per server its server-wide row
(``*``, every item of every kind) followed by its items: tools, then resources, resource
templates and prompts, each under its ref (``prompt:NAME``...), the string its grant holds.
Cells are computed on demand from per-agent grant maps, so
a vault of 100 agents × 1,000 tools costs one pass over its tables, not 100,000 objects.
Edits applied here (optimistically, before the vault write lands) use the same maps.

What a cell means (expiry, the server's ``*`` standing in for an item's own grant, the
pin) is the policy's: the grid asks ``console.policy`` and only chooses what to draw, so
a cell never says "allowed" where the gateway refuses.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from console.model import WILDCARD, GrantMode, ItemKind, item_ref
from console.policy import NEVER, NOT_HELD, Decision, Reason, expiry, grant_standing, item_trust, moded
from console.services.items import KIND_ORDER

TOOLBOX_KEY = "toolbox"


class Kind(StrEnum):
    """What a row is: the toolbox access, a server's ``*``, or one item (of any ``ItemKind``)."""

    TOOLBOX = "toolbox"
    SERVER = "server"
    TOOL = "tool"


@dataclass(frozen=True, slots=True)
class Row:
    key: str
    """``toolbox``, ``<server id>|*`` or ``<server id>|<ref>``."""
    kind: Kind
    server_id: str
    server: str
    tool: str
    """The item's ref (what its grant holds), ``*`` on a server row."""
    trust: str
    """The item's trust as the policy sees it: ``approved`` only while its pin matches."""
    item: ItemKind = ItemKind.TOOL
    """The kind of item on an item row."""
    asks: str = ""
    """On a server row: what the owner lets the server ask agents for (sampling, ...)."""

    @property
    def path(self) -> str:
        return f"{self.server}/{self.tool}" if self.kind is not Kind.TOOLBOX else ""

    @property
    def effective(self) -> bool:
        return self.kind is not Kind.TOOL or self.trust == "approved"


@dataclass(frozen=True, slots=True)
class AgentCol:
    id: str
    name: str
    disabled: bool


class Mark(StrEnum):
    ON = "on"
    OFF = "off"
    GRANTED = "granted"
    VIA = "via"
    EXPIRED = "expired"
    DENIED = "denied"
    """The owner's "always deny" of the item."""
    NONE = "none"


@dataclass(frozen=True, slots=True)
class Cell:
    mark: Mark
    expires: datetime | None = None
    inactive: bool = False
    """The agent has no toolbox access: the grant is kept but cut off (kill switch)."""
    ineffective: bool = False
    """The tool is not approved (or changed since): a grant on it gives nothing."""
    disabled: bool = False
    wide: bool = False
    """An expired cell whose deciding grant was the server's ``*`` (a live one is ``Mark.VIA``)."""
    ask: bool = False
    """Granted in ask mode: each call waits for the owner."""

    @property
    def granted(self) -> bool:
        return self.mark in (Mark.ON, Mark.GRANTED, Mark.VIA)


_PLAIN = {(mark, disabled): Cell(mark, disabled=disabled) for mark in (Mark.ON, Mark.OFF, Mark.NONE)
          for disabled in (False, True)}
"""The cells most of a matrix is made of, made once: a big one draws thousands per frame."""


@dataclass(frozen=True, slots=True)
class Edit:
    """One change to the matrix: a toolbox access (``server`` None) or a tool/server grant."""

    agent: str
    server: str | None
    tool: str
    present: bool
    expires: datetime | None = None
    mode: GrantMode | None = None
    """The grant's mode once changed; None keeps the one held (allow for a new grant)."""


def _when(expires: float) -> datetime | None:
    """The policy's expiry (POSIX seconds) as the matrix shows it; None for never."""
    return None if expires == NEVER else datetime.fromtimestamp(expires, UTC)


def expiry_text(expires: datetime | None, now: datetime) -> str:
    """``45m``, ``2h``, ``7d`` while it is near; the date when it is far; ``expired``."""
    if expires is None:
        return ""
    seconds = (expires - now).total_seconds()
    if seconds <= 0:
        return "expired"
    if seconds < 3600:
        return f"{max(1, int(seconds // 60))}m"
    if seconds < 48 * 3600:
        return f"{int(seconds // 3600)}h"
    if seconds < 30 * 86400:
        return f"{int(seconds // 86400)}d"
    return f"{expires:%Y-%m-%d}"


def cell_text(cell: Cell, now: datetime) -> str:
    if cell.mark is Mark.ON:
        return "✓ on"
    if cell.mark is Mark.OFF:
        return "✗ off"
    if cell.mark is Mark.NONE:
        return "·"
    if cell.mark is Mark.EXPIRED:
        return "✗ expired"
    if cell.mark is Mark.DENIED:
        return "⊘ never"
    glyph = ("✓*" if cell.mark is Mark.VIA else "✓") + ("?" if cell.ask else "")
    if cell.ineffective:
        glyph += "!"
    when = expiry_text(cell.expires, now)
    return f"{glyph} {when}" if when else glyph


def fit(text: str, width: int) -> str:
    """``text`` in exactly ``width`` cells: padded, or cut with an ellipsis."""
    if width <= 0:
        return ""
    if len(text) > width:
        return text[: width - 1] + "…"
    return text.ljust(width)


def shorten(text: str, width: int) -> str:
    """``text`` in at most ``width`` cells, cut in the middle: a long URI keeps its scheme
    and its last segment (``resource:demo://…/architecture.md``)."""
    if len(text) <= width:
        return text
    if width <= 1:
        return text[:width]
    head = (width - 1) * 2 // 5  # the end tells items apart more often than the start
    return text[:head] + "…" + text[len(text) - (width - 1 - head):]


def row_label(row: Row, toolbox: str) -> tuple[str, str]:
    """The label column's text for a row, and its tag (trust, scope)."""
    if row.kind is Kind.TOOLBOX:
        return f"toolbox {toolbox}: access", ""
    if row.kind is Kind.SERVER:
        return f"{row.server}/*", f"all items · may ask {row.asks}" if row.asks else "all items"
    return f"  {row.tool}", "" if row.trust == "approved" else row.trust


COLUMN_TITLE = 22


def column_title(row: Row) -> tuple[str, str]:
    """A row seen as a column (transposed): its group title and its own title."""
    if row.kind is Kind.TOOLBOX:
        return "toolbox", "access"
    if row.kind is Kind.SERVER:
        return row.server, "* all"
    return row.server, row.tool if row.item is ItemKind.TOOL else shorten(row.tool, COLUMN_TITLE)


class GrantGrid:
    """The rows, agents and grants of one toolbox; ``rows``/``agents`` are the filtered view."""

    def __init__(self, toolbox_id: str, toolbox: str, rows: list[Row], agents: list[AgentCol],
                 access: set[str], grants: dict[str, float],
                 modes: dict[str, tuple[GrantMode, float]] | None = None) -> None:
        self.toolbox_id, self.toolbox = toolbox_id, toolbox
        self.all_rows, self.all_agents = rows, agents
        self.rows, self.agents = rows, agents
        self.access = access
        """Ids of the agents holding the toolbox grant."""
        self.grants = grants
        """``agent|server|tool`` (the vault's own key; tool may be ``*``) -> expiry, as the
        policy reads it (POSIX seconds, ``NEVER``).

        Flat and keyed by strings the vault already holds, so a rebuild allocates almost
        nothing the garbage collector has to track."""
        self.modes = modes if modes is not None else {}
        """The same keys -> (mode, allow_until) for the grants that do not simply allow (few)."""
        self.filter_text = ""
        self._sources: tuple[object, ...] = ()
        self._clock: tuple[datetime | None, float] = (None, 0.0)
        """The last ``now`` a cell was asked about, and it in POSIX seconds (a frame asks with one)."""

    @classmethod
    def build(cls, tables: Mapping[str, Mapping[str, Mapping[str, Any]]], toolbox: str,
              previous: GrantGrid | None = None) -> GrantGrid | None:
        """Read one toolbox's matrix from the vault's raw tables; None if it does not exist.

        The rows and agents of ``previous`` are reused while their tables are the same
        objects (the vault replaces a table's dictionary whenever it writes to it).
        """
        box = next((doc for doc in tables.get("toolboxes", {}).values() if doc.get("name") == toolbox), None)
        if box is None:
            return None
        sources = (box["id"], tables.get("servers"), tables.get("tools"), tables.get("agents"))
        if previous is not None and len(previous._sources) == 4 and all(
                a is b for a, b in zip(previous._sources, sources, strict=True)):
            rows, agents = previous.all_rows, previous.all_agents
        else:
            rows, agents = cls._rows(tables, box["id"]), sorted(
                (AgentCol(doc["id"], doc["name"], bool(doc.get("disabled")))
                 for doc in list(tables.get("agents", {}).values()) if "name" in doc), key=lambda a: a.name)
        server_ids = {row.server_id for row in rows if row.kind is Kind.SERVER}
        access = {doc["agent"] for doc in list(tables.get("toolbox_grants", {}).values())
                  if doc.get("toolbox") == box["id"]}
        grants = {key: expiry(doc.get("expires")) for key, doc in list(tables.get("tool_grants", {}).items())
                  if doc.get("server") in server_ids}
        modes = {key: (GrantMode(doc["mode"]), expiry(doc["allow_until"]) if doc.get("allow_until") else NOT_HELD)
                 for key, doc in list(tables.get("tool_grants", {}).items())
                 if doc.get("mode", GrantMode.ALLOW) != GrantMode.ALLOW and doc.get("server") in server_ids}
        grid = cls(box["id"], toolbox, rows, agents, access, grants, modes)
        grid._sources = sources
        return grid

    @staticmethod
    def _rows(tables: Mapping[str, Mapping[str, Mapping[str, Any]]], box_id: str) -> list[Row]:
        servers = sorted(((doc["id"], doc["name"], ", ".join(doc.get("may_ask") or ()))
                          for doc in list(tables.get("servers", {}).values())
                          if doc.get("toolbox") == box_id and "name" in doc), key=lambda s: s[1])
        items: dict[str, list[tuple[int, str, ItemKind, str]]] = {sid: [] for sid, _name, _asks in servers}
        for doc in list(tables.get("tools", {}).values()):
            found = items.get(doc.get("server", ""))
            if found is not None and "name" in doc:
                kind = ItemKind(doc.get("kind", ItemKind.TOOL))
                found.append((KIND_ORDER[kind], doc["name"], kind, item_trust(doc)))
        rows = [Row(TOOLBOX_KEY, Kind.TOOLBOX, "", "", "", "")]
        for sid, name, asks in servers:
            rows.append(Row(f"{sid}|{WILDCARD}", Kind.SERVER, sid, name, WILDCARD, "", asks=asks))
            for _order, item, kind, trust in sorted(items[sid]):
                ref = item_ref(kind, item)
                rows.append(Row(f"{sid}|{ref}", Kind.TOOL, sid, name, ref, trust, kind))
        return rows

    # -- reading ---------------------------------------------------------------------------

    def grant(self, agent_id: str, server_id: str, tool: str) -> tuple[bool, datetime | None]:
        """Whether ``agent_id`` holds exactly this grant, and its expiry."""
        found = self.grants.get(f"{agent_id}|{server_id}|{tool}", NOT_HELD)
        return (False, None) if found == NOT_HELD else (True, _when(found))

    def cell(self, row: Row, agent: AgentCol, now: datetime) -> Cell:
        disabled = agent.disabled
        if row.kind is Kind.TOOLBOX:
            return _PLAIN[Mark.ON if agent.id in self.access else Mark.OFF, disabled]
        grants = self.grants
        own = grants.get(f"{agent.id}|{row.key}", NOT_HELD)
        wide = grants.get(f"{agent.id}|{row.server_id}|{WILDCARD}", NOT_HELD) if row.kind is Kind.TOOL else NOT_HELD
        clock, moment = self._clock
        if clock is not now:
            moment = now.timestamp()
            self._clock = (now, moment)
        standing = grant_standing(row.tool, own, wide, moment)
        if standing.reason is Reason.NO_TOOL_GRANT:
            return _PLAIN[Mark.NONE, disabled]
        inactive = agent.id not in self.access
        if not standing.allowed:
            return Cell(Mark.EXPIRED, _when(standing.expires), inactive, disabled=disabled,
                        wide=standing.via == WILDCARD and row.kind is Kind.TOOL)
        if self.modes:
            standing = self._moded(standing, row, agent, own, wide, moment)
            if not standing.allowed:
                return Cell(Mark.DENIED, None, inactive, disabled=disabled)
        # The cell shows its own grant while that is in force, even where the server's *
        # outlasts it: that is the grant space revokes.
        if standing.via == row.tool or grant_standing(row.tool, own, NOT_HELD, moment).allowed:
            return Cell(Mark.GRANTED, _when(own), inactive, not row.effective, disabled, ask=standing.ask)
        return Cell(Mark.VIA, _when(standing.expires), inactive, not row.effective, disabled, ask=standing.ask)

    def _moded(self, standing: Decision, row: Row, agent: AgentCol, own: float, wide: float,
               moment: float) -> Decision:
        """What the modes of the grants deciding the cell make of it (``policy.moded``)."""
        modes = {}
        if (found := self.modes.get(f"{agent.id}|{row.key}")) is not None:
            modes[row.tool] = found
        if row.kind is Kind.TOOL and (found := self.modes.get(f"{agent.id}|{row.server_id}|{WILDCARD}")) is not None:
            modes[WILDCARD] = found
        return moded(standing, row.tool, {row.tool: own, WILDCARD: wide}, modes, moment) if modes else standing

    def mode(self, agent_id: str, server_id: str, tool: str) -> GrantMode:
        """The mode of exactly this grant (allow for one not held)."""
        return self.modes.get(f"{agent_id}|{server_id}|{tool}", (GrantMode.ALLOW, NOT_HELD))[0]

    def explain(self, row: Row, agent: AgentCol, now: datetime) -> str:
        """One line about a cell, for the status line under the matrix."""
        cell = self.cell(row, agent, now)
        if row.kind is Kind.TOOLBOX:
            text = (f"{agent.name} has access to toolbox {self.toolbox}" if cell.granted else
                    f"{agent.name} has no access to toolbox {self.toolbox}: every tool grant inside is cut off")
        else:
            target = f"{self.toolbox}/{row.path}"
            until = f" until {cell.expires:%Y-%m-%d %H:%M} UTC" if cell.expires else ""
            text = {
                Mark.DENIED: f"{agent.name} is always denied {target} (the owner's 'never'; space revokes it)",
                Mark.GRANTED: f"{agent.name} holds {target}{until}",
                Mark.VIA: f"{agent.name} reaches {target} through {self.toolbox}/{row.server}/*{until}",
                Mark.EXPIRED: (f"{agent.name} reached {target} through {self.toolbox}/{row.server}/*, which "
                               f"expired{until.replace('until', 'at')}" if cell.wide else
                               f"{agent.name}'s grant for {target} expired{until.replace('until', 'at')}"),
                Mark.NONE: f"{agent.name} holds no grant for {target}",
            }[cell.mark]
            if cell.ask:
                text += " — asks: each call waits for the owner's approval (k: allow without asking)"
            if cell.granted and cell.inactive:
                text += " — inactive: no toolbox access (kill switch off)"
            if cell.granted and cell.ineffective:
                text += f" — not effective: the {row.item.value} is {row.trust}"
        if agent.disabled:
            text += " — the agent is disabled"
        return text

    def held_by(self, agent_id: str) -> dict[str, list[str]]:
        """Server id -> the tools (or ``*``) ``agent_id`` holds grants for."""
        held: dict[str, list[str]] = {}
        prefix = f"{agent_id}|"
        for key in self.grants:
            if key.startswith(prefix):
                _agent, server, tool = key.split("|", 2)
                held.setdefault(server, []).append(tool)
        return held

    def grants_of(self, agent_id: str) -> int:
        prefix = f"{agent_id}|"
        return sum(1 for key in self.grants if key.startswith(prefix))

    # -- filtering -------------------------------------------------------------------------

    def set_filter(self, text: str) -> None:
        """Terms that name agents keep those columns; the others (or ``server/tool``) keep rows.

        ``cursor`` keeps agent columns whose name holds "cursor"; ``time/`` keeps the time
        server's rows; ``files/read`` keeps its tools holding "read"; ``write`` keeps tools
        (or servers) holding "write". The toolbox access row always stays.
        """
        self.filter_text = text
        agent_terms: list[str] = []
        row_terms: list[tuple[str, str | None]] = []
        for term in text.lower().split():
            if "/" in term:
                server, _sep, tool = term.partition("/")
                row_terms.append((server, tool))
            elif any(term in agent.name for agent in self.all_agents):
                agent_terms.append(term)
            else:
                row_terms.append((term, None))
        self.agents = ([a for a in self.all_agents if any(t in a.name for t in agent_terms)]
                       if agent_terms else self.all_agents)
        self.rows = self._rows_matching(row_terms) if row_terms else self.all_rows

    def _rows_matching(self, terms: list[tuple[str, str | None]]) -> list[Row]:
        kept: list[Row] = [self.all_rows[0]]
        group: list[Row] = []

        def flush() -> None:
            if not group:
                return
            head, tools = group[0], group[1:]
            whole = any((tool is None and term in head.server) or (tool == "" and term in head.server)
                        for term, tool in terms)
            chosen = tools if whole else [
                row for row in tools
                if any((tool is None and term in row.tool) or (tool and term in row.server and tool in row.tool)
                       for term, tool in terms)
            ]
            if whole or chosen:
                kept.append(head)
                kept.extend(chosen)
            group.clear()

        for row in self.all_rows[1:]:
            if row.kind is Kind.SERVER:
                flush()
            group.append(row)
        flush()
        return kept

    # -- changing --------------------------------------------------------------------------

    def apply(self, edit: Edit) -> Edit:
        """Apply ``edit``; return the edit that undoes it."""
        if edit.server is None:
            before = Edit(edit.agent, None, "", edit.agent in self.access)
            if edit.present:
                self.access.add(edit.agent)
            else:
                self.access.discard(edit.agent)
            return before
        key = f"{edit.agent}|{edit.server}|{edit.tool}"
        present, expires = self.grant(edit.agent, edit.server, edit.tool)
        mode = self.mode(edit.agent, edit.server, edit.tool)
        if edit.present:
            self.grants[key] = expiry(edit.expires)
            if edit.mode is GrantMode.ALLOW:
                self.modes.pop(key, None)
            elif edit.mode is not None:
                self.modes[key] = (edit.mode, NOT_HELD)
        else:
            self.grants.pop(key, None)
            self.modes.pop(key, None)
        return Edit(edit.agent, edit.server, edit.tool, present, expires, mode)

    def agent_named(self, name: str) -> AgentCol | None:
        return next((a for a in self.all_agents if a.name == name), None)


def utc_now() -> datetime:
    return datetime.now(UTC)
