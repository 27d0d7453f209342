"""The MCP methods an agent may call, as data: how each is authorized and answered.

A method either answers locally from the snapshot (listings, ping) or names the one
grantable item it uses and the request to forward to that item's server. The pipeline
runs every method through the same steps; this table only says what differs. A refusal
never says more than "not granted" or "not available": an agent learns nothing about
items it cannot see.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from console import __version__
from console.gateway import jsonrpc as rpc
from console.gateway.exchange import Exchange, Refused
from console.gateway.surface import ItemRef
from console.model import ItemKind
from console.policy import Decision

SUPPORTED_VERSIONS = ("2025-03-26", "2025-06-18", "2025-11-25")
LATEST_VERSION = SUPPORTED_VERSIONS[-1]
_LABEL_LIMIT = 200


def negotiate(requested: Any) -> str:
    return requested if requested in SUPPORTED_VERSIONS else LATEST_VERSION


SERVER_INFO = {"name": "toolbox-console", "title": "Toolbox Console gateway", "version": __version__}
ENVELOPE = "io.modelcontextprotocol/"
"""The prefix of the keys the protocol reserves in ``_meta`` (2026-07-28's per-request
version, client capabilities and info): the gateway's business with its agent, never
passed to a server, which has its own session with the gateway."""


def server_capabilities(*, subscribe: bool) -> dict[str, Any]:
    """``subscribe`` only where a server behind the endpoint supports it."""
    return {
        "tools": {"listChanged": True},
        "resources": {"subscribe": subscribe, "listChanged": True},
        "prompts": {"listChanged": True},
        "completions": {},
        "logging": {},
    }


def initialize_result(version: str, instructions: str, *, subscribe: bool = False) -> dict[str, Any]:
    return {
        "protocolVersion": version,
        "capabilities": server_capabilities(subscribe=subscribe),
        "serverInfo": SERVER_INFO,
        "instructions": instructions,
    }


class Denied(Refused):
    """The policy said no: the reason and the explanation go to the audit log only."""

    def __init__(self, message: str, decision: Decision, item: ItemRef | None) -> None:
        super().__init__(message, code=rpc.INVALID_PARAMS, reason=decision.reason.value)
        self.policy_decision, self.item = decision, item


@dataclass(frozen=True)
class Method:
    action: str
    """The audit record's action."""
    authorize: Callable[[Exchange], None] | None = None
    """Names the item (``x.item``, ``x.target``) and what to forward (``x.upstream``), or
    raises ``Denied``. None for methods answered locally."""
    answer: Callable[[Exchange], Any] | None = None
    """The result of a method answered locally."""
    arguments: str | None = None
    """The params key holding the caller's arguments, digested into the audit record."""
    shared: str | None = None
    """The ``SharedUpstream`` step that answers it, for what agents share upstream (log
    level, subscriptions) instead of a plain forward."""

    @property
    def forwarded(self) -> bool:
        return self.authorize is not None


def _shown(value: Any) -> str:
    return str(value)[:_LABEL_LIMIT]


def _decide(x: Exchange, item: ItemRef | None, decision: Decision, refusal: str) -> None:
    x.item = item
    if not decision.allowed:
        raise Denied(refusal, decision, item)


def _forward_meta(params: dict[str, Any]) -> dict[str, Any]:
    """What of the caller's ``_meta`` goes upstream: its progress token and envelope are
    the gateway's business (each call gets its own upstream token, ``relay``)."""
    meta = params.get("_meta")
    if not isinstance(meta, dict):
        return {}
    kept = {k: v for k, v in meta.items() if k != "progressToken" and not str(k).startswith(ENVELOPE)}
    return {"_meta": kept} if kept else {}


def _named(kind: ItemKind, noun: str, x: Exchange) -> ItemRef | None:
    surface = x.snapshot.surface
    name = x.params["name"]
    item = surface.resolve(x.endpoint, kind, name)
    x.target = item.label(x.snapshot.toolbox) if item else f"{kind.value}:{_shown(name)}"
    _decide(x, item, surface.check(x.identity.agent_id, item, time.time()),  # type: ignore[union-attr]
            f"{noun} {_shown(name)!r} is not granted to this agent")
    return item


def _call_tool(x: Exchange) -> None:
    item = _named(ItemKind.TOOL, "tool", x)
    assert item is not None
    x.upstream = ("tools/call", {"name": item.name, "arguments": x.params.get("arguments") or {},
                                 **_forward_meta(x.params)})


def _get_prompt(x: Exchange) -> None:
    item = _named(ItemKind.PROMPT, "prompt", x)
    assert item is not None
    upstream: dict[str, Any] = {"name": item.name, **_forward_meta(x.params)}
    if x.params.get("arguments"):
        upstream["arguments"] = x.params["arguments"]
    x.upstream = ("prompts/get", upstream)


def _read_resource(x: Exchange) -> None:
    _resource(x, "resources/read")


def _subscribe(x: Exchange) -> None:
    _resource(x, "resources/subscribe")


def _resource(x: Exchange, method: str) -> None:
    uri = x.params["uri"]
    item, decision = x.snapshot.surface.resolve_uri(x.identity.agent_id, x.endpoint, uri, time.time())  # type: ignore[union-attr]
    x.target = item.label(x.snapshot.toolbox) if item else f"resource:{_shown(uri)}"
    _decide(x, item, decision, f"resource {_shown(uri)!r} is not available")
    x.upstream = (method, {"uri": uri, **_forward_meta(x.params)})


def _complete(x: Exchange) -> None:
    ref = x.params["ref"]
    surface = x.snapshot.surface
    agent = x.identity.agent_id  # type: ignore[union-attr]
    if ref["type"] == "ref/prompt":
        item = surface.resolve(x.endpoint, ItemKind.PROMPT, ref["name"])
        decision = surface.check(agent, item, time.time())
        upstream_ref = {"type": "ref/prompt", "name": item.name} if item else ref
    else:
        item, decision = _completable_resource(x, ref["uri"])
        upstream_ref = ref
    x.target = item.label(x.snapshot.toolbox) if item else f"completion:{_shown(ref.get('name') or ref.get('uri'))}"
    _decide(x, item, decision, "completion is not available for this reference")
    upstream = {"ref": upstream_ref, "argument": x.params["argument"], **_forward_meta(x.params)}
    if isinstance(x.params.get("context"), dict):
        upstream["context"] = x.params["context"]
    x.upstream = ("completion/complete", upstream)


def _completable_resource(x: Exchange, uri: str) -> tuple[ItemRef | None, Decision]:
    """A ``ref/resource`` names a template (or resource) by its exact URI (template)."""
    surface = x.snapshot.surface
    agent = x.identity.agent_id  # type: ignore[union-attr]
    scope = [surface.endpoint_server(x.endpoint)] if x.endpoint else list(surface.server_names)
    best: tuple[ItemRef | None, Decision] = (None, surface.check(agent, None, 0))
    for server_id in scope:
        if server_id is None:
            continue
        for kind in (ItemKind.TEMPLATE, ItemKind.RESOURCE):
            item = ItemRef(server_id, surface.server_names[server_id], kind, uri)
            if (server_id, item.ref) in surface.wire:
                decision = surface.check(agent, item, time.time())
                if decision.allowed:
                    return item, decision
                best = best if best[0] else (item, decision)
    return best


def _listing(kind: ItemKind, key: str) -> Callable[[Exchange], Any]:
    def answer(x: Exchange) -> Any:
        items = x.snapshot.surface.listing(x.identity.agent_id, x.endpoint, time.time(), kind)  # type: ignore[union-attr]
        if x.session is not None:
            x.session.visible[kind.value] = frozenset(str(i.get("uri") or i.get("uriTemplate") or i.get("name"))
                                                      for i in items)
        x.target = f"{key}:{x.endpoint or '/mcp'}"
        x.detail["count"] = len(items)
        return {key: items}

    return answer


def _nothing(x: Exchange) -> Any:
    x.target = f"session:{x.endpoint or '/mcp'}"
    return {}


METHODS: dict[str, Method] = {
    "ping": Method("ping", answer=_nothing),
    "logging/setLevel": Method("logging.set-level", shared="set_level"),
    "tools/list": Method("tools.list", answer=_listing(ItemKind.TOOL, "tools")),
    "prompts/list": Method("prompts.list", answer=_listing(ItemKind.PROMPT, "prompts")),
    "resources/list": Method("resources.list", answer=_listing(ItemKind.RESOURCE, "resources")),
    "resources/templates/list": Method("resources.templates.list",
                                       answer=_listing(ItemKind.TEMPLATE, "resourceTemplates")),
    "tools/call": Method("tool.call", authorize=_call_tool, arguments="arguments"),
    "prompts/get": Method("prompt.get", authorize=_get_prompt, arguments="arguments"),
    "resources/read": Method("resource.read", authorize=_read_resource),
    "completion/complete": Method("completion.complete", authorize=_complete, arguments="argument"),
    "resources/subscribe": Method("resource.subscribe", authorize=_subscribe, shared="subscribe"),
    "resources/unsubscribe": Method("resource.unsubscribe", shared="unsubscribe"),
}
UNKNOWN = Method("rpc.unsupported")
