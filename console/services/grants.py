"""Granting and revoking: ``AGENT TOOLBOX[/SERVER[/ITEM]] [--for DURATION] [--ask]``.

ITEM is a tool name, ``*`` (every item of every kind of the server), ``prompt:NAME``,
``resource:URI`` or ``template:URITEMPLATE`` (``tool:NAME`` names a tool whose name
looks like one of those). URIs hold slashes and colons, so a target is split at its
first two ``/`` only.

A toolbox grant is the kill switch: revoking it cuts every tool grant inside the
toolbox at once without deleting them, and granting it again brings them back. So a
tool grant never opens its toolbox implicitly; the outcome says when the toolbox is
still closed.

A server or item grant allows, or asks: each call under an ask grant waits for the
owner's decision, whose "allow for N minutes" and "always deny" are grants too
(``allow_for``, ``always_deny``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from console.errors import NotFound, UsageError
from console.model import (
    WILDCARD,
    GrantMode,
    ItemKind,
    ServerInstance,
    Toolbox,
    ToolboxGrant,
    ToolGrant,
    item_ref,
    split_ref,
    tool_key,
    utcnow,
)
from console.services.items import audit_target, no_item
from console.vault import Repos
from console.workspace import Workspace

_DURATION_PART = re.compile(r"(\d+)([smhdw])")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
MAX_DURATION = timedelta(days=366)


def parse_duration(text: str) -> timedelta:
    """``90s``, ``15m``, ``2h``, ``7d``, ``1w``, or combinations like ``1h30m``."""
    compact = text.strip().lower().replace(" ", "")
    parts = _DURATION_PART.findall(compact)
    if not compact or "".join(n + u for n, u in parts) != compact:
        raise UsageError(f"bad duration {text!r}: use a number and a unit (s, m, h, d, w), e.g. 30m, 8h, 1h30m")
    seconds = sum(int(n) * _UNIT_SECONDS[u] for n, u in parts)
    if seconds <= 0 or timedelta(seconds=seconds) > MAX_DURATION:
        raise UsageError(f"bad duration {text!r}: it must be more than 0 and at most 366 days")
    return timedelta(seconds=seconds)


TARGET_SYNTAX = "TOOLBOX, TOOLBOX/SERVER or TOOLBOX/SERVER/ITEM"
ITEM_SYNTAX = "ITEM is a tool name, *, prompt:NAME, resource:URI or template:URITEMPLATE"


@dataclass(frozen=True)
class Target:
    toolbox: str
    server: str | None = None
    tool: str | None = None
    """The item's ref (``console.model.item_ref``); ``None`` for the whole server (``*``)."""

    @classmethod
    def parse(cls, text: str) -> Target:
        """``TOOLBOX[/SERVER[/ITEM]]``, split at the first two ``/`` (URIs hold more)."""
        parts = text.strip().split("/", 2)
        if not all(parts):
            raise UsageError(f"bad target {text!r}: use {TARGET_SYNTAX}; {ITEM_SYNTAX}")
        item = parts[2] if len(parts) == 3 else None
        return cls(parts[0], parts[1] if len(parts) > 1 else None,
                   None if item is None or item == WILDCARD else parse_item(item, text))

    def __str__(self) -> str:
        return "/".join(p for p in (self.toolbox, self.server, self.tool) if p)


def parse_item(item: str, text: str) -> str:
    """The canonical ref of an ITEM as typed (``tool:get_time`` is ``get_time``)."""
    kind, name = split_ref(item)
    if not name:
        raise UsageError(f"bad target {text!r}: {kind.value}: needs a name after it; {ITEM_SYNTAX}")
    if kind is ItemKind.TOOL and "/" in name and not item.startswith("tool:"):
        raise UsageError(f"bad target {text!r}: a tool name has no '/'; a resource is resource:URI, a template "
                         f"template:URITEMPLATE (a tool named with a '/' is tool:NAME)")
    return item_ref(kind, name)


@dataclass
class Outcome:
    changed: bool
    summary: str
    notes: list[str] = field(default_factory=list)
    expires: datetime | None = None

    def to_json(self) -> dict[str, object]:
        return {
            "changed": self.changed,
            "summary": self.summary,
            "notes": self.notes,
            "expires": self.expires.isoformat() if self.expires else None,
        }


def _resolve(repos: Repos, target: Target) -> tuple[Toolbox, ServerInstance | None]:
    toolbox = repos.toolboxes.require(target.toolbox)
    if target.server is None:
        return toolbox, None
    server = repos.servers.by_name(toolbox.id, target.server)
    if server is None:
        raise NotFound(
            f"toolbox {toolbox.name} has no server {target.server!r}; 'tbx server list' shows them"
        )
    return toolbox, server


def grant(ws: Workspace, agent_name: str, target: Target, duration: timedelta | None = None, *,
          ask: bool | None = None) -> Outcome:
    """``ask`` makes the grant ask (True) or allow (False); None keeps the mode of the grant
    held (a new grant allows): a new expiry does not change what the grant is."""
    with ws.change() as change:
        repos = change.repos
        agent = repos.agents.require(agent_name)
        toolbox, server = _resolve(repos, target)
        if server is None:
            if duration is not None or ask:
                raise UsageError("--for and --ask apply to server and tool grants; toolbox access is on or off")
            existing = repos.toolbox_grants.get(f"{agent.id}|{toolbox.id}")
            if existing:
                return Outcome(False, f"{agent.name} already has access to toolbox {toolbox.name}")
            repos.toolbox_grants.put(ToolboxGrant(agent=agent.id, toolbox=toolbox.id))
            change.record("grant.toolbox", f"toolbox:{toolbox.name}", agent=agent.name)
            inside = _grants_inside(repos, agent.id, toolbox.id)
            notes = [f"{inside} tool grant(s) inside are active again"] if inside else []
            return Outcome(True, f"granted {agent.name} access to toolbox {toolbox.name}", notes)

        tool = target.tool or WILDCARD
        if tool != WILDCARD:
            _require_item(repos, toolbox, server, tool)
        expires = utcnow() + duration if duration else None
        key = f"{agent.id}|{server.id}|{tool}"
        existing_grant = repos.tool_grants.get(key)
        label = f"{toolbox.name}/{server.name}/{tool}"
        if ask is None:
            mode = existing_grant.mode if existing_grant else GrantMode.ALLOW
        else:
            mode = GrantMode.ASK if ask else GrantMode.ALLOW
        if existing_grant and existing_grant.expires is None and expires is None and existing_grant.mode is mode:
            return Outcome(False, f"{agent.name} already holds {label}" + (" (ask)" if mode is GrantMode.ASK else ""))
        repos.tool_grants.put(ToolGrant(agent=agent.id, server=server.id, tool=tool, expires=expires, mode=mode))
        detail: dict[str, object] = {"expires": expires.isoformat() if expires else None}
        if mode is not GrantMode.ALLOW or (existing_grant and existing_grant.mode is not mode):
            detail["mode"] = mode.value
        change.record("grant.update" if existing_grant else "grant.tool", _audited(toolbox, server, tool),
                      agent=agent.name, detail=detail)
        notes = []
        if not repos.toolbox_grants.get(f"{agent.id}|{toolbox.id}"):
            notes.append(
                f"{agent.name} has no access to toolbox {toolbox.name} yet, so this grant is not "
                f"active: 'tbx grant {agent.name} {toolbox.name}' opens it"
            )
        verb = "extended" if existing_grant else "granted"
        until = f" until {expires:%Y-%m-%d %H:%M} UTC" if expires else ""
        asking = "; each call waits for the owner's approval ('tbx approvals')" if mode is GrantMode.ASK else ""
        return Outcome(True, f"{verb} {agent.name} {label}{until}{asking}", notes, expires)


def allow_for(ws: Workspace, agent_id: str, server_id: str, ref: str, duration: timedelta,
              actor: str = "owner") -> datetime:
    """The owner's "allow for N minutes" of a held call: the agent uses the item without
    asking until the returned time, and is asked again afterwards. An ask grant of the
    item's own keeps its mode with an ``allow_until``; under a server-wide ask grant the
    item gets a time-bound allow grant of its own (which beats the ask while live)."""
    until = utcnow() + duration
    with ws.change(actor=actor) as change:
        repos = change.repos
        key = f"{agent_id}|{server_id}|{ref}"
        own = repos.tool_grants.get(key)
        if own is not None and own.mode is GrantMode.ASK:
            own.allow_until = until
            repos.tool_grants.put(own)
        else:
            repos.tool_grants.put(ToolGrant(agent=agent_id, server=server_id, tool=ref, expires=until))
        change.record("grant.allow-for", _grant_target(repos, server_id, ref), agent=_agent_name(repos, agent_id),
                      detail={"until": until.isoformat()})
    return until


def always_deny(ws: Workspace, agent_id: str, server_id: str, ref: str, actor: str = "owner") -> None:
    """The owner's "always deny": the item's own grant becomes a deny, which beats a
    server-wide grant; ``tbx revoke`` of the item takes it away."""
    with ws.change(actor=actor) as change:
        repos = change.repos
        repos.tool_grants.put(ToolGrant(agent=agent_id, server=server_id, tool=ref, mode=GrantMode.DENY))
        change.record("grant.deny", _grant_target(repos, server_id, ref), agent=_agent_name(repos, agent_id))


def _grant_target(repos: Repos, server_id: str, ref: str) -> str:
    server = repos.servers.get(server_id)
    toolbox = repos.toolboxes.get(server.toolbox) if server else None
    if server is None or toolbox is None:
        return f"tool:?/{server_id}/{ref}"
    return _audited(toolbox, server, ref)


def _agent_name(repos: Repos, agent_id: str) -> str:
    agent = repos.agents.get(agent_id)
    return agent.name if agent else agent_id


def revoke(ws: Workspace, agent_name: str, target: Target) -> Outcome:
    with ws.change() as change:
        repos = change.repos
        agent = repos.agents.require(agent_name)
        toolbox, server = _resolve(repos, target)
        if server is None:
            if not repos.toolbox_grants.delete([f"{agent.id}|{toolbox.id}"]):
                return Outcome(False, f"{agent.name} had no access to toolbox {toolbox.name}; nothing changed")
            change.record("revoke.toolbox", f"toolbox:{toolbox.name}", agent=agent.name)
            kept = _grants_inside(repos, agent.id, toolbox.id)
            notes = [f"{kept} tool grant(s) inside are kept but inactive until access is granted again"] if kept else []
            return Outcome(True, f"revoked {agent.name}'s access to toolbox {toolbox.name}", notes)

        if target.tool is None:
            keys = [
                k for k, doc in repos.tool_grants.raw().items()
                if doc["agent"] == agent.id and doc["server"] == server.id
            ]
            label = f"{toolbox.name}/{server.name}"
        else:
            keys = [f"{agent.id}|{server.id}|{target.tool}"]
            label = f"{toolbox.name}/{server.name}/{target.tool}"
        removed = repos.tool_grants.delete(keys)
        if not removed:
            if target.tool is not None:
                _require_item(repos, toolbox, server, target.tool)
            return Outcome(False, f"{agent.name} held no grant for {label}; nothing changed")
        audited = f"tool:{label}" if target.tool is None else _audited(toolbox, server, target.tool)
        change.record("revoke.tool", audited, agent=agent.name, detail={"grants_removed": removed})
        notes = []
        if target.tool and repos.tool_grants.get(f"{agent.id}|{server.id}|{WILDCARD}"):
            notes.append(
                f"{agent.name} still reaches {target.tool} through its server-wide grant "
                f"{toolbox.name}/{server.name}/*"
            )
        return Outcome(True, f"revoked {agent.name} {label} ({removed} grant(s))", notes)


def _require_item(repos: Repos, toolbox: Toolbox, server: ServerInstance, ref: str) -> None:
    if repos.tools.get(tool_key(server.id, ref)) is None:
        raise no_item(toolbox.name, server.name, ref)


def _audited(toolbox: Toolbox, server: ServerInstance, ref: str) -> str:
    """The audit target of a grant: ``prompt:local/everything/NAME``; ``tool:…/*`` server-wide."""
    if ref == WILDCARD:
        return f"tool:{toolbox.name}/{server.name}/{WILDCARD}"
    kind, name = split_ref(ref)
    return audit_target(kind, f"{toolbox.name}/{server.name}", name)


def _grants_inside(repos: Repos, agent_id: str, toolbox_id: str) -> int:
    servers = {k for k, doc in repos.servers.raw().items() if doc["toolbox"] == toolbox_id}
    return sum(1 for doc in repos.tool_grants.raw().values() if doc["agent"] == agent_id and doc["server"] in servers)


def grant_holders(repos: Repos, server_id: str, ref: str | None = None) -> list[str]:
    """Names of the agents that reach a server now — through a live (unexpired) grant to
    any of its items, or with ``ref`` to that item (directly or through ``server/*``),
    enabled and with access to its toolbox: who loses access when it is removed, blocked
    or its approval taken back."""
    server = repos.servers.get(server_id)
    if server is None:
        return []
    now = utcnow()
    opened = {g.agent for g in repos.toolbox_grants.where(lambda doc: doc["toolbox"] == server.toolbox)}
    ids = {g.agent for g in repos.tool_grants.where(lambda doc: doc["server"] == server_id)
           if (ref is None or g.tool in (ref, WILDCARD)) and (g.expires is None or g.expires > now)
           and g.mode is not GrantMode.DENY
           and g.agent in opened}
    agents = (repos.agents.get(i) for i in ids)
    return sorted(agent.name for agent in agents if agent is not None and not agent.disabled)


def agent_list(names: list[str], limit: int = 6) -> str:
    """``cursor``, ``claude-desktop and cursor``, ``a, b, c and 4 more``; ``no agent`` for none."""
    if not names:
        return "no agent"
    if len(names) > limit:
        return f"{', '.join(names[:limit - 1])} and {len(names) - limit + 1} more"
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"
