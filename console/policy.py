"""The access rule, compiled for the gateway's hot path.

An agent may see and use item T of server S in toolbox B only if:
  the agent exists and is enabled; it holds a toolbox grant for B (the kill switch);
  it holds an unexpired grant for (S, T) or (S, *) that is not "always deny"; T is approved and its live
  definition still matches the approved pin; S is running.
Everything else is denied, and every decision says why. A grant in ask mode allows too,
one call at a time: the decision says ``ask`` and the gateway holds each call until the
owner decides it (``console.gateway.approvals``). An allow grant beats an ask grant where
both are live (the owner's "allow for N minutes" is one, or an ask grant's ``allow_until``).

Items are tools, resources, resource templates and prompts, all named by their ref
(``console.model.item_ref``: ``get_time``, ``prompt:greet``, ``resource:file:///a``...).
A grant holds a ref or ``*``, which covers every item of every kind of its server; a
grant on one tool opens nothing else.

``CompiledPolicy.compile`` turns the vault's tables into nested dictionaries so that a
check is a handful of look-ups. It is pure: no I/O, the current time is an argument.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from console.model import WILDCARD, GrantMode, ItemKind, Trust, item_ref, split_ref

Tables = Mapping[str, Mapping[str, Mapping[str, Any]]]
NEVER = math.inf


def new_agent_token() -> str:
    """A bearer token with 256 bits of randomness."""
    return "tbx_" + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    # Tokens carry 256 random bits, so a fast hash is enough: there is nothing to guess.
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class Reason(StrEnum):
    ALLOWED = "allowed"
    UNKNOWN_AGENT = "unknown-agent"
    AGENT_DISABLED = "agent-disabled"
    UNKNOWN_SERVER = "unknown-server"
    NO_TOOLBOX_GRANT = "no-toolbox-grant"
    NO_TOOL_GRANT = "no-tool-grant"
    GRANT_EXPIRED = "grant-expired"
    UNKNOWN_TOOL = "unknown-tool"
    TOOL_PENDING = "tool-pending"
    TOOL_CHANGED = "tool-changed"
    TOOL_BLOCKED = "tool-blocked"
    SERVER_NOT_RUNNING = "server-not-running"
    OWNER_DENIED = "denied-by-owner"


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    reason: Reason
    via: str | None = None
    """The grant that gives access: the item's own ref or ``*``."""
    expires: float = NEVER
    """When that grant ends (POSIX seconds), ``inf`` for never."""
    ask: bool = False
    """Allowed once the owner approves the call: the grant is in ask mode."""


_DENIED = {reason: Decision(False, reason) for reason in Reason if reason is not Reason.ALLOWED}
_TRUST_REASON = {
    Trust.APPROVED: Reason.ALLOWED,
    Trust.PENDING: Reason.TOOL_PENDING,
    Trust.CHANGED: Reason.TOOL_CHANGED,
    Trust.BLOCKED: Reason.TOOL_BLOCKED,
}


@dataclass(slots=True)
class _AgentEntry:
    id: str
    name: str
    enabled: bool
    toolboxes: set[str]
    grants: dict[str, dict[str, float]]
    """server id -> item ref or ``*`` -> expiry (POSIX seconds, ``inf`` for never)."""
    modes: dict[str, dict[str, tuple[GrantMode, float]]] = field(default_factory=dict)
    """server id -> ref -> (mode, allow_until) of the grants that are not plain allow."""


# -- what one cell of the rule means ----------------------------------------------------
# The gateway's check and the console's grants matrix both read a grant through these, so
# what the matrix shows is what the gateway enforces.

NOT_HELD = -1.0
"""The expiry of a grant the agent does not hold (every real expiry is later)."""


def expiry(value: Any) -> float:
    """A grant's ``expires`` as the vault holds it (None, a datetime or ISO text) in POSIX
    seconds; ``NEVER`` for a grant that does not expire."""
    if value is None:
        return NEVER
    if isinstance(value, datetime):
        return value.timestamp()
    return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()


_TRUSTS = {trust.value: trust for trust in Trust}
"""By value: cheaper than ``Trust(value)`` for the console's matrix, which reads every item."""


def item_trust(doc: Mapping[str, Any]) -> Trust:
    """An item's trust as the rule reads it: approved only while its live definition still
    matches the pin that was approved; a mismatch is a change to review."""
    trust = _TRUSTS[doc.get("trust", "pending")]
    if trust == "approved" and doc.get("approved_pin") != doc.get("pin"):
        return Trust.CHANGED
    return trust


def grant_standing(ref: str, own: float, wide: float, now: float) -> Decision:
    """What an agent's grants on a server say about its item ``ref``, before the kill
    switch, trust and the runtime have their say.

    ``own`` is the expiry of the grant on the item itself, ``wide`` that of the server's
    ``*`` (``NOT_HELD`` for one the agent does not hold). The one lasting longer decides
    (the item's own on a tie): allowed through it until its expiry, ``GRANT_EXPIRED`` from
    then on (``via`` and ``expires`` say which grant and when), ``NO_TOOL_GRANT`` when
    neither is held. Pass ``NOT_HELD`` as ``wide`` to ask about the item's own grant alone.
    """
    if own < 0 and wide < 0:
        return _DENIED[Reason.NO_TOOL_GRANT]
    via, expires = (ref, own) if own >= wide else (WILDCARD, wide)
    if expires <= now:
        return Decision(False, Reason.GRANT_EXPIRED, via, expires)
    return Decision(True, Reason.ALLOWED, via, expires)


def moded(standing: Decision, ref: str, expiries: Mapping[str, float],
          modes: Mapping[str, tuple[GrantMode, float]], now: float) -> Decision:
    """What the modes of an agent's grants on a server make of an allowing ``standing``:
    an "always deny" of the item stands whatever else is held; an ask grant asks unless
    the other live grant (the item's own or ``*``) allows outright."""
    def mode(grant: str) -> GrantMode:
        found = modes.get(grant)
        if found is None or expiries.get(grant, NOT_HELD) <= now:
            return GrantMode.ALLOW
        return GrantMode.ALLOW if found[0] is GrantMode.ASK and found[1] > now else found[0]

    if GrantMode.DENY in (mode(ref), mode(standing.via or ref)):
        return _DENIED[Reason.OWNER_DENIED]
    if mode(standing.via or ref) is not GrantMode.ASK:
        return standing
    other = WILDCARD if standing.via == ref else ref
    if expiries.get(other, NOT_HELD) > now and mode(other) is GrantMode.ALLOW:
        return Decision(True, Reason.ALLOWED, other, expiries[other])
    return Decision(True, Reason.ALLOWED, standing.via, standing.expires, ask=True)


class CompiledPolicy:
    def __init__(self) -> None:
        self.agents: dict[str, _AgentEntry] = {}
        self.by_token_hash: dict[str, str] = {}
        self.server_toolbox: dict[str, str] = {}
        self.server_names: dict[str, str] = {}
        self.toolbox_names: dict[str, str] = {}
        self.server_tools: dict[str, list[str]] = {}
        """server id -> the refs of every item it offers, of all kinds."""
        self.tool_reason: dict[tuple[str, str], Reason] = {}
        """(server id, ref) -> what the item's trust allows (``ALLOWED`` or why not)."""
        self.running: set[str] = set()
        self.meant_to_run: set[str] = set()
        """Servers the owner wants running (their desired state), whatever they do now."""

    @classmethod
    def compile(cls, tables: Tables, running: Iterable[str] | None = None) -> CompiledPolicy:
        """Build from the vault's raw tables.

        ``running`` is the set of server ids the runtime reports as running; without it
        the desired state stands in (the CLI, which has no live runtime, uses that).
        """
        policy = cls()
        for tb in tables.get("toolboxes", {}).values():
            policy.toolbox_names[tb["id"]] = tb["name"]
        for srv in tables.get("servers", {}).values():
            policy.server_toolbox[srv["id"]] = srv["toolbox"]
            policy.server_names[srv["id"]] = srv["name"]
            policy.server_tools[srv["id"]] = []
            if srv.get("desired_state") == "running":
                policy.meant_to_run.add(srv["id"])
        if running is None:
            policy.running = set(policy.meant_to_run)
        else:
            policy.running = set(running)
        for tool in tables.get("tools", {}).values():
            server, ref = tool["server"], item_ref(tool.get("kind", ItemKind.TOOL), tool["name"])
            policy.tool_reason[(server, ref)] = _TRUST_REASON[item_trust(tool)]
            policy.server_tools.setdefault(server, []).append(ref)
        for ag in tables.get("agents", {}).values():
            policy.agents[ag["id"]] = _AgentEntry(ag["id"], ag["name"], not ag["disabled"], set(), {})
            policy.by_token_hash[ag["token_hash"]] = ag["id"]
        for grant in tables.get("toolbox_grants", {}).values():
            entry = policy.agents.get(grant["agent"])
            if entry is not None:
                entry.toolboxes.add(grant["toolbox"])
        for grant in tables.get("tool_grants", {}).values():
            entry = policy.agents.get(grant["agent"])
            if entry is not None:
                tools = entry.grants.setdefault(grant["server"], {})
                tools[grant["tool"]] = expiry(grant.get("expires"))
                mode = grant.get("mode") or GrantMode.ALLOW
                if mode != GrantMode.ALLOW:
                    entry.modes.setdefault(grant["server"], {})[grant["tool"]] = (
                        GrantMode(mode), expiry(grant["allow_until"]) if grant.get("allow_until") else NOT_HELD)
        return policy

    # -- the hot path ------------------------------------------------------------------

    def authenticate(self, token: str) -> str | None:
        """The id of the enabled agent holding ``token``, or ``None``."""
        digest = hash_token(token)
        agent_id = self.by_token_hash.get(digest)
        if agent_id is None:
            # Spend the same comparison on a miss as on a hit.
            hmac.compare_digest(digest, digest)
            return None
        entry = self.agents[agent_id]
        return agent_id if entry.enabled else None

    def check(self, agent_id: str, server_id: str, tool: str, now: float) -> Decision:
        """May the agent use the item ``tool`` (a ref) of the server at ``now``?"""
        agent = self.agents.get(agent_id)
        if agent is None:
            return _DENIED[Reason.UNKNOWN_AGENT]
        if not agent.enabled:
            return _DENIED[Reason.AGENT_DISABLED]
        toolbox = self.server_toolbox.get(server_id)
        if toolbox is None:
            return _DENIED[Reason.UNKNOWN_SERVER]
        if toolbox not in agent.toolboxes:
            return _DENIED[Reason.NO_TOOLBOX_GRANT]
        grants = agent.grants.get(server_id)
        if not grants:
            return _DENIED[Reason.NO_TOOL_GRANT]
        standing = grant_standing(tool, grants.get(tool, NOT_HELD), grants.get(WILDCARD, NOT_HELD), now)
        if not standing.allowed:
            return _DENIED[standing.reason]
        modes = agent.modes.get(server_id)
        if modes:
            standing = moded(standing, tool, grants, modes, now)
            if not standing.allowed:
                return standing
        trust = self.tool_reason.get((server_id, tool))
        if trust is None:
            return _DENIED[Reason.UNKNOWN_TOOL]
        if trust is not Reason.ALLOWED:
            return _DENIED[trust]
        if server_id not in self.running:
            return _DENIED[Reason.SERVER_NOT_RUNNING]
        return standing

    def visible_items(self, agent_id: str, now: float) -> list[tuple[str, str]]:
        """Every (server id, ref) the agent may use right now, of every kind
        (``split_ref`` tells a prompt from a tool)."""
        agent = self.agents.get(agent_id)
        if agent is None or not agent.enabled:
            return []
        visible = []
        for server_id in agent.grants:
            for tool in self.server_tools.get(server_id, ()):
                if self.check(agent_id, server_id, tool, now).allowed:
                    visible.append((server_id, tool))
        return visible

    # -- explanations ------------------------------------------------------------------

    def names(self, agent_id: str, server_id: str) -> tuple[str, str, str]:
        """The agent's, the toolbox's and the server's names, for words about a decision."""
        agent = self.agents.get(agent_id)
        return (agent.name if agent else agent_id,
                self.toolbox_names.get(self.server_toolbox.get(server_id, ""), "?"),
                self.server_names.get(server_id, server_id))

    def explain(self, decision: Decision, agent_id: str, server_id: str, tool: str) -> str:
        """Why, in plain words. What to run about it is the callers' (``console.services.hints``):
        the rule knows no commands."""
        agent_name, toolbox, server = self.names(agent_id, server_id)
        target = f"{server}/{tool}"
        kind, name = split_ref(tool)
        match decision.reason:
            case Reason.ALLOWED:
                grant = f"server-wide grant {server}/*" if decision.via == WILDCARD else f"grant {target}"
                until = "" if decision.expires == NEVER else f" until {_iso(decision.expires)}"
                if decision.ask:
                    return (f"asks the owner: each call waits for approval (ask {grant}{until}); {kind} approved; "
                            f"server running")
                return f"allowed by the {grant}{until}; {kind} approved; server running"
            case Reason.UNKNOWN_AGENT:
                return f"no agent {agent_name!r}"
            case Reason.AGENT_DISABLED:
                return f"agent {agent_name} is disabled"
            case Reason.UNKNOWN_SERVER:
                return f"no server {server!r}"
            case Reason.NO_TOOLBOX_GRANT:
                return f"no access to toolbox {toolbox}"
            case Reason.NO_TOOL_GRANT:
                return f"no grant for {target} or {server}/*"
            case Reason.GRANT_EXPIRED:
                return f"the grant for {target} has expired"
            case Reason.UNKNOWN_TOOL:
                return f"{server} offers no {kind} {name!r} (not discovered yet)"
            case Reason.TOOL_PENDING:
                return f"{kind} not approved yet"
            case Reason.TOOL_CHANGED:
                return f"{kind} definition changed since approval; review and re-approve {toolbox}/{target}"
            case Reason.TOOL_BLOCKED:
                return f"{kind} is blocked"
            case Reason.SERVER_NOT_RUNNING:
                return f"server {server} is not running"
            case Reason.OWNER_DENIED:
                return f"the owner always denies {target}"
        return decision.reason.value


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
