"""The domain: toolboxes, servers, tools, agents, grants and connections.

These are the records the vault stores (as ``model_dump(mode="json")``) and the CLI,
TUI and gateway read. Identity is by ``id``; names are what users type and must be
unique in their scope (agents and toolboxes globally, servers within a toolbox).
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from datetime import UTC, datetime
from enum import StrEnum
from functools import partial
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from console.errors import UsageError

NAME_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?$")
WILDCARD = "*"


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(6)}"


def utcnow() -> datetime:
    return datetime.now(UTC)


def check_name(kind: str, name: str) -> str:
    """Names are what agents see inside tool names (``<server>__<tool>``), so they are
    kept to a small alphabet that can never contain the ``__`` separator."""
    if not NAME_RE.match(name):
        raise UsageError(
            f"bad {kind} name {name!r}: use a-z, 0-9 and '-' (1-40 characters, "
            f"not starting or ending with '-'), e.g. 'claude-desktop'"
        )
    return name


ToolboxName = Annotated[str, AfterValidator(partial(check_name, "toolbox"))]
ServerName = Annotated[str, AfterValidator(partial(check_name, "server"))]
AgentName = Annotated[str, AfterValidator(partial(check_name, "agent"))]


class Record(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class ToolboxKind(StrEnum):
    LOCAL = "local"
    DROPLET = "droplet"
    SSH = "ssh"


class Toolbox(Record):
    id: str = Field(default_factory=lambda: new_id("tb"))
    name: ToolboxName
    kind: ToolboxKind = ToolboxKind.LOCAL
    engine_endpoint: str | None = None
    """Docker Engine socket URL; ``None`` means the environment's default engine."""
    ssh_target: str | None = None
    ssh_host_key: str | None = None
    """The pinned host key (OpenSSH public key line) of ``ssh_target``."""
    droplet_id: int | None = None
    region: str | None = None
    size: str | None = None
    gateway_address: str | None = None
    ssh_key: str | None = None
    """Id of the vault secret holding the SSH private key the console logs in with."""
    droplet_key: str | None = None
    """Fingerprint of that key as registered at DigitalOcean (removed with the droplet)."""
    gateway_cert: str | None = None
    """PEM of the remote gateway's self-signed TLS certificate (agents pin its fingerprint)."""
    gateway_secret: str | None = None
    """Id of the vault secret that unlocks the remote gateway's policy vault."""
    created: datetime = Field(default_factory=utcnow)

    @property
    def is_remote(self) -> bool:
        return self.kind is not ToolboxKind.LOCAL


class Mount(Record):
    source: str
    target: str
    read_only: bool = False


class Limits(Record):
    cpus: float = Field(default=1.0, gt=0, le=64)
    memory_mb: int = Field(default=512, ge=16, le=262144)
    pids: int = Field(default=256, ge=8, le=65536)


class DesiredState(StrEnum):
    RUNNING = "running"
    STOPPED = "stopped"


AgentAsk = Literal["sampling", "elicitation", "roots"]
"""A server-to-client request kind that the owner can allow per server."""
AGENT_ASKS: tuple[AgentAsk, ...] = ("sampling", "elicitation", "roots")


class ServerInstance(Record):
    id: str = Field(default_factory=lambda: new_id("srv"))
    toolbox: str
    """Id of the toolbox this server runs in."""
    name: ServerName
    catalog_id: str | None = None
    spec: dict[str, Any] | None = None
    """The catalog entry as it was when the server was added (or the imported spec):
    the server keeps its command and needs when the catalog later changes."""
    image: str | None = None
    env: dict[str, str] = Field(default_factory=dict)
    """Plain, non-secret environment. Secrets go through ``secret_refs``."""
    secret_refs: dict[str, str] = Field(default_factory=dict)
    """Env variable name -> id of a secret kept in the vault."""
    connection: str | None = None
    mounts: list[Mount] = Field(default_factory=list)
    network: Literal["none", "egress"] = "none"
    """``egress``: the container is still on network none, and reaches the hosts of
    ``egress`` only, through the toolbox gateway's allow-list proxy (console/egress)."""
    egress: list[str] = Field(default_factory=list)
    """The hosts (``HOST[:PORT]``, ``*.DOMAIN``) the server may reach; none by default."""
    limits: Limits = Field(default_factory=Limits)
    desired_state: DesiredState = DesiredState.STOPPED
    created: datetime = Field(default_factory=utcnow)
    may_ask: list[AgentAsk] = Field(default_factory=list)
    """Which requests the server may send the agent whose call it is serving (sampling,
    elicitation, roots): the owner's decision, none by default. Its session declares
    exactly these client capabilities."""
    kind: Literal["local", "remote"] = "local"
    """``remote``: a server someone else runs, reached at ``url`` over HTTP; no image,
    no container. Its ``secret_refs`` name HTTP headers (not env variables) whose values
    the vault keeps and every request to it carries."""
    url: str | None = None
    transport: Literal["streamable-http", "sse"] = "streamable-http"
    """How a remote server is reached: Streamable HTTP (falling back to HTTP+SSE when the
    server refuses it with a 4xx), or HTTP+SSE directly."""


class Trust(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    CHANGED = "changed"
    BLOCKED = "blocked"


class Finding(Record):
    severity: Literal["low", "medium", "high"]
    kind: str
    message: str


class ItemKind(StrEnum):
    """What a server offers that an agent can be granted: all four are discovered, scanned,
    pinned and approved the same way."""

    TOOL = "tool"
    RESOURCE = "resource"
    TEMPLATE = "template"
    PROMPT = "prompt"


_KIND_VALUES = frozenset(kind.value for kind in ItemKind)
_REF_PREFIXES = tuple(f"{kind.value}:" for kind in ItemKind)
_VOLATILE = frozenset({"size", "_meta"})
"""Wire fields that change without the item changing (a file's size, server metadata)."""


def item_ref(kind: ItemKind | str, name: str) -> str:
    """The string that names an item of a server in keys, grants and the policy.

    A tool is its name, unless the name itself starts with ``tool:``, ``resource:``,
    ``template:`` or ``prompt:`` (then ``tool:<name>``); any other item is
    ``<kind>:<name>``, its name being the prompt name, the resource URI or the template's
    uriTemplate. ``split_ref`` is the inverse.
    """
    kind = ItemKind(kind)
    if kind is ItemKind.TOOL and not name.startswith(_REF_PREFIXES):
        return name
    return f"{kind.value}:{name}"


def split_ref(ref: str) -> tuple[ItemKind, str]:
    """``(kind, name)`` of a ref: ``split_ref(item_ref(k, n)) == (k, n)`` for every item.

    ``tool:NAME`` is read as the tool NAME even when NAME needs no prefix, so
    ``item_ref(*split_ref(text))`` turns what a user typed into the canonical ref.
    """
    head, sep, rest = ref.partition(":")
    if sep and head in _KIND_VALUES:
        return ItemKind(head), rest
    return ItemKind.TOOL, ref


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def tool_pin(
    name: str,
    description: str | None,
    input_schema: dict[str, Any] | None,
    output_schema: dict[str, Any] | None,
    annotations: dict[str, Any] | None,
    title: str | None = None,
) -> str:
    """SHA-256 of the canonical definition: everything a model or a user is told about
    the tool. A change to any of it is a change the owner must approve."""
    canonical = _canonical(
        {
            "name": name,
            "title": title,
            "description": description or "",
            "inputSchema": input_schema or {},
            "outputSchema": output_schema,
            "annotations": annotations,
        }
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def stable_definition(wire: dict[str, Any]) -> dict[str, Any]:
    """A resource, template or prompt definition without its volatile fields."""
    return {key: value for key, value in wire.items() if key not in _VOLATILE}


def item_pin(kind: ItemKind | str, wire: dict[str, Any]) -> str:
    """The pin of an item's wire definition (MCP shape, as listed by the server).

    Tools keep ``tool_pin`` exactly; the other kinds pin the whole canonical definition
    (sorted keys, compact, UTF-8) without the volatile ``size`` and ``_meta``.
    """
    if ItemKind(kind) is ItemKind.TOOL:
        return tool_pin(str(wire.get("name", "")), wire.get("description"), wire.get("inputSchema"),
                        wire.get("outputSchema"), wire.get("annotations"), wire.get("title"))
    return hashlib.sha256(_canonical(stable_definition(wire)).encode("utf-8")).hexdigest()


class ToolDef(Record):
    """A discovered item of a server: a tool, a resource, a resource template or a prompt."""

    server: str
    """Id of the server instance that offers the item."""
    name: str
    """The tool or prompt name, the resource URI, or the template's uriTemplate."""
    kind: ItemKind = ItemKind.TOOL
    title: str | None = None
    description: str | None = None
    input_schema: dict[str, Any] = Field(default_factory=dict)
    output_schema: dict[str, Any] | None = None
    annotations: dict[str, Any] | None = None
    definition: dict[str, Any] | None = None
    """For a resource, template or prompt: its wire definition as discovered (tools keep
    theirs in the fields above)."""
    pin: str
    """SHA-256 of the live definition as last discovered."""
    approved_pin: str | None = None
    """The pin the user approved; an item is exposed only while it equals ``pin``."""
    trust: Trust = Trust.PENDING
    findings: list[Finding] = Field(default_factory=list)
    accepted: list[str] | None = None
    """The finding kinds the user accepted on approval; a rescan that finds another kind
    sends the item back to pending. ``None`` (approved before this was kept): the kinds of
    the findings it had then."""
    previous: dict[str, Any] | None = None
    """The approved definition, kept when the live one changes, for a diff."""
    discovered: datetime = Field(default_factory=utcnow)

    @property
    def ref(self) -> str:
        return item_ref(self.kind, self.name)

    @property
    def key(self) -> str:
        return tool_key(self.server, self.ref)

    @property
    def exposable(self) -> bool:
        return self.trust is Trust.APPROVED and self.approved_pin == self.pin

    def pinned_definition(self) -> dict[str, Any]:
        """What the pin covers, in wire shape: the form ``previous`` keeps for a diff."""
        if self.kind is not ItemKind.TOOL:
            return dict(self.definition or {})
        return {"name": self.name, "title": self.title, "description": self.description,
                "inputSchema": self.input_schema, "outputSchema": self.output_schema,
                "annotations": self.annotations}


def tool_key(server_id: str, ref: str) -> str:
    """The vault key of an item: its server and its ref (``item_ref``)."""
    return f"{server_id}|{ref}"


class Agent(Record):
    id: str = Field(default_factory=lambda: new_id("ag"))
    name: AgentName
    token_hash: str
    """SHA-256 (hex) of the bearer token; the token itself is shown once and never kept."""
    created: datetime = Field(default_factory=utcnow)
    disabled: bool = False


class ToolboxGrant(Record):
    agent: str
    toolbox: str
    created: datetime = Field(default_factory=utcnow)

    @property
    def key(self) -> str:
        return f"{self.agent}|{self.toolbox}"


class GrantMode(StrEnum):
    ALLOW = "allow"
    ASK = "ask"
    """Each call waits until the owner allows it (``console.gateway.approvals``)."""
    DENY = "deny"
    """The owner's "always deny" of one item: it beats a server-wide grant."""


class ToolGrant(Record):
    agent: str
    server: str
    tool: str
    """An item's ref (``item_ref``: a tool name, ``prompt:NAME``...), or ``*`` for every
    item of every kind of the server."""
    expires: datetime | None = None
    mode: GrantMode = GrantMode.ALLOW
    """Grants stored before modes existed load as allow."""
    allow_until: datetime | None = None
    """An ask grant's calls go through without asking until then (the owner's "allow for
    N minutes"); it asks again afterwards."""
    created: datetime = Field(default_factory=utcnow)

    @property
    def key(self) -> str:
        return f"{self.agent}|{self.server}|{self.tool}"


class ConnectionStatus(StrEnum):
    OK = "ok"
    REFRESH_FAILED = "refresh-failed"
    """The last refresh did not reach the provider; the token may still work a while."""
    NEEDS_CONSENT = "needs-consent"
    """The provider refused the refresh token: the user has to sign in again."""


class OAuthApp(Record):
    """The user's own app registration at a provider, entered once."""

    id: str = Field(default_factory=lambda: new_id("app"))
    provider: str
    """github, google, microsoft, slack, or oidc:NAME."""
    client_id: str
    client_secret: str | None = None
    """Id of the vault secret that holds the client secret (public clients have none)."""
    hosts: dict[str, str] = Field(default_factory=dict)
    """Overrides of the provider's hosts (GitHub Enterprise, another Microsoft cloud)."""
    tenant: str | None = None
    issuer: str | None = None
    """For OpenID Connect providers: the issuer whose discovery document names the endpoints."""
    auth_method: str | None = None
    """How the app authenticates at the token endpoint; None: the first the provider takes."""
    private_key: str | None = None
    """Id of the vault secret that holds the app's private key (private_key_jwt)."""
    created: datetime = Field(default_factory=utcnow)


class Connection(Record):
    id: str = Field(default_factory=lambda: new_id("cn"))
    provider: str
    account: str
    scopes: list[str] = Field(default_factory=list)
    token_secret: str | None = None
    """Id of the vault secret that holds the token set (never stored in this record)."""
    expires: datetime | None = None
    app: str | None = None
    """Id of the ``OAuthApp`` the tokens were issued to (refresh and revoke need it)."""
    status: ConnectionStatus = ConnectionStatus.OK
    last_error: str | None = None
    refreshed: datetime | None = None
    created: datetime = Field(default_factory=utcnow)


class OrphanCause(StrEnum):
    FAILED_ADD = "failed-add"
    """Made for a toolbox whose add failed, and the clean-up could not delete it (yet)."""
    FOUND = "found"
    """Tagged ``tbx`` by this installation (or by none) and owned by no toolbox: a create
    tbx did not live to finish, or a toolbox forgotten while its droplet ran on."""


class Orphan(Record):
    """A droplet tbx made that no toolbox owns: billed until it is destroyed or adopted.
    Kept by its droplet id."""

    droplet_id: int
    name: str
    region: str = ""
    size: str = ""
    price_monthly: float | None = None
    cause: OrphanCause
    toolbox_id: str | None = None
    """The toolbox it was made for (its ``tbx-toolbox-`` tag): adopting it keeps that id."""
    toolbox: str | None = None
    """The name that toolbox was to have."""
    droplet_key: str | None = None
    """Fingerprint of the SSH key registered at DigitalOcean for it (deleted with it)."""
    ssh_key: str | None = None
    """Id of the vault secret that holds that key's private half: adopting needs no other key."""
    error: str | None = None
    """Why it is still there: the last failed attempt to delete it."""
    found: datetime = Field(default_factory=utcnow)


class Secret(Record):
    """A secret value kept inside the encrypted vault.

    ``value`` is only ever read to hand it to the thing that needs it (a container's
    environment, an OAuth refresh); it is never printed, logged or audited.
    """

    id: str = Field(default_factory=lambda: new_id("sec"))
    name: str
    value: str
    created: datetime = Field(default_factory=utcnow)

    def __repr__(self) -> str:
        return f"Secret(id={self.id!r}, name={self.name!r}, value=<hidden>)"

    __str__ = __repr__
