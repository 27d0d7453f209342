"""An MCP client session with a server container, over its attach stream."""

from __future__ import annotations

import asyncio
import contextlib
import json
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable, Collection
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import anyio
import mcp_types as types
from mcp import Client
from mcp.shared.exceptions import MCPError
from mcp_types import CLIENT_CAPABILITIES_META_KEY, CLIENT_INFO_META_KEY, PROTOCOL_VERSION_META_KEY
from mcp_types.jsonrpc import UNSUPPORTED_PROTOCOL_VERSION
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

from console import __version__
from console.errors import TbxError
from console.runtime.attach import StdioChannel, attached
from console.runtime.enginehttp import Endpoint
from console.runtime.transport import channel_transport
from console.trust.redact import Redactor

CLIENT_INFO = types.Implementation(name="toolbox-console", version=__version__)

Capture = Callable[[str, bytes], None]
"""Called with ``"sent"`` or ``"received"`` and the exact line that crossed the stream."""
Ask = Callable[[str, dict[str, Any]], Awaitable[dict[str, Any]]]
"""Answers a server's request of one kind (``sampling``, ``elicitation``, ``roots``), given
its params as JSON (``_meta`` included), with the result as JSON; raises ``AskRefused``."""
ASK_RESULTS: dict[str, tuple[Any, ...]] = {
    "sampling": (types.CreateMessageResult, types.CreateMessageResultWithTools),
    "elicitation": (types.ElicitResult,),
    "roots": (types.ListRootsResult,),
}


class AskRefused(Exception):
    """A server's request gets this JSON-RPC error instead of an answer; ``reason`` is
    what an audit record says of it."""

    def __init__(self, message: str, reason: str = "refused", code: int = types.INVALID_REQUEST) -> None:
        super().__init__(message)
        self.reason, self.code = reason, code


class ServerUnavailable(TbxError):
    """The server did not answer over MCP (crashed, hung, or not an MCP server)."""


@dataclass
class Discovery:
    """What a server said about itself on connect."""

    server_info: dict[str, Any]
    protocol_version: str
    instructions: str | None
    tools: list[dict[str, Any]] = field(default_factory=list)
    resources: list[dict[str, Any]] = field(default_factory=list)
    prompts: list[dict[str, Any]] = field(default_factory=list)
    templates: list[dict[str, Any]] = field(default_factory=list)
    """Resource templates (``resources/templates/list``)."""
    failed: dict[str, str] = field(default_factory=dict)
    """Lists the server declares but could not give (``resources``, ``templates``,
    ``prompts``) -> why: what was stored of them stays as it was."""

    def summary(self) -> dict[str, Any]:
        return {
            "server_info": self.server_info,
            "protocol_version": self.protocol_version,
            "instructions": self.instructions,
            "resources": [{"uri": r.get("uri"), "name": r.get("name")} for r in self.resources],
            "templates": [{"uriTemplate": t.get("uriTemplate"), "name": t.get("name")} for t in self.templates],
            "prompts": [{"name": p.get("name"), "description": p.get("description")} for p in self.prompts],
            **({"failed": self.failed} if self.failed else {}),
        }


def _dump(model: Any) -> dict[str, Any]:
    return model.model_dump(by_alias=True, mode="json", exclude_none=True)


async def _paginate(fetch: Callable[[str | None], Awaitable[Any]], attr: str, limit: int = 100) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    for _ in range(limit):
        page = await fetch(cursor)
        items += [_dump(item) for item in getattr(page, attr)]
        cursor = getattr(page, "next_cursor", None)
        if not cursor:
            break
    return items


def declared_capabilities(asks: Collection[str]) -> dict[str, Any]:
    """What a client that answers ``asks`` declares (as the SDK declares for its callbacks)."""
    capabilities = types.ClientCapabilities(
        sampling=types.SamplingCapability() if "sampling" in asks else None,
        elicitation=types.ElicitationCapability(form=types.FormElicitationCapability(),
                                                url=types.UrlElicitationCapability())
        if "elicitation" in asks else None,
        roots=types.RootsCapability(list_changed=True) if "roots" in asks else None,
    )
    return _dump(capabilities)


@dataclass
class Session:
    channel: StdioChannel
    client: Client
    asks: frozenset[str] = frozenset()
    """The server-to-client requests this session declared (``mcp_session``)."""

    @property
    def modern(self) -> bool:
        """The server speaks only the 2026-07-28 era: every request carries ``envelope()``."""
        return self.client.protocol_version in MODERN_PROTOCOL_VERSIONS

    def envelope(self) -> dict[str, Any]:
        """The ``_meta`` a request of the modern era carries: who asks, in which version,
        able to answer what (the same as the SDK stamps on its own requests)."""
        return {PROTOCOL_VERSION_META_KEY: self.client.protocol_version,
                CLIENT_INFO_META_KEY: _dump(CLIENT_INFO),
                CLIENT_CAPABILITIES_META_KEY: declared_capabilities(self.asks)}

    async def discover(self) -> Discovery:
        caps = self.client.server_capabilities
        info = self.client.server_info
        found = Discovery(
            server_info=_dump(info) if info else {},
            protocol_version=self.client.protocol_version,
            instructions=self.client.instructions,
        )
        # Never the client's cache: a discovery answers "what does the server say now",
        # and a list_changed may not have reached the cache yet.
        fresh = "bypass"
        if caps.tools is not None:
            found.tools = await _paginate(lambda c: self.client.list_tools(cursor=c, cache_mode=fresh), "tools")
        lists: list[tuple[str, Callable[[str | None], Awaitable[Any]], str]] = []
        if caps.resources is not None:
            lists += [("resources", lambda c: self.client.list_resources(cursor=c, cache_mode=fresh), "resources"),
                      ("templates", lambda c: self.client.list_resource_templates(cursor=c, cache_mode=fresh),
                       "resource_templates")]
        if caps.prompts is not None:
            lists.append(("prompts", lambda c: self.client.list_prompts(cursor=c, cache_mode=fresh), "prompts"))
        for kind, fetch, attr in lists:
            # A server that advertises but cannot give one list still has the others.
            try:
                setattr(found, kind, await _paginate(fetch, attr))
            except MCPError as exc:
                found.failed[kind] = str(exc) or type(exc).__name__
        return found

    async def ping(self) -> None:
        if self.modern:
            # The 2026 era has no ping: the one request every server answers is discover.
            await self.client.session.send_discover(self.client.protocol_version)
            return
        with warnings.catch_warnings():
            # Removed in the 2026 protocol, but the handshake-era servers we run answer it.
            warnings.simplefilter("ignore")
            await self.client.send_ping()

    async def call_tool(self, name: str, arguments: dict[str, Any]) -> types.CallToolResult:
        return await self.client.call_tool(name, arguments)


class _Tapped:
    """The channel as the transport sees it, with every line it writes, and every response
    to one of those lines, handed to ``capture``. Other clients' traffic on the shared
    stdout (the gateway's session, another ``tbx call``) is left out."""

    def __init__(self, channel: StdioChannel, capture: Capture) -> None:
        self._channel, self._capture = channel, capture
        self._ids: set[str] = set()
        self._prefix = b""
        channel.on_stdout(self._received)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._channel, name)

    async def send(self, line: bytes) -> None:
        try:
            rid = json.loads(line).get("id")
        except (ValueError, AttributeError):
            rid = None
        if isinstance(rid, str):
            self._ids.add(rid)
            self._prefix = self._prefix or rid.rpartition("-")[0].encode()
        self._capture("sent", line)
        await self._channel.send(line)

    def _received(self, line: bytes) -> None:
        if not self._prefix or self._prefix not in line:
            return
        try:
            rid = json.loads(line).get("id")
        except (ValueError, AttributeError):
            return
        if rid in self._ids:
            self._capture("received", line)


def ask_callbacks(asks: Collection[str], ask: Ask | None) -> dict[str, Any]:
    """The SDK client's callbacks for the request kinds in ``asks`` (the SDK declares a
    client capability exactly when its callback is given). Without ``ask`` (a session no
    agent works through: discovery, ``tbx call``) each such request is refused."""

    async def answer(kind: str, params: dict[str, Any]) -> Any:
        if ask is None:
            return types.ErrorData(code=types.INVALID_REQUEST, message=f"no agent to ask for {kind} on this session")
        try:
            result = await ask(kind, params)
        except AskRefused as exc:
            return types.ErrorData(code=exc.code, message=str(exc))
        for model in ASK_RESULTS[kind]:
            with contextlib.suppress(ValueError):
                return model.model_validate(result)
        return types.ErrorData(code=types.INTERNAL_ERROR, message=f"the agent's {kind} answer is not valid")

    def params_of(params: Any) -> dict[str, Any]:
        return _dump(params) if params is not None else {}

    async def sampling(context: Any, params: Any) -> Any:
        return await answer("sampling", params_of(params))

    async def elicitation(context: Any, params: Any) -> Any:
        return await answer("elicitation", params_of(params))

    async def roots(context: Any) -> Any:
        return await answer("roots", {"_meta": context.meta} if isinstance(context.meta, dict) else {})

    given = {"sampling": ("sampling_callback", sampling), "elicitation": ("elicitation_callback", elicitation),
             "roots": ("list_roots_callback", roots)}
    return dict(given[kind] for kind in asks if kind in given)


def stderr_tail(channel: StdioChannel, redactor: Redactor, lines: int = 3) -> str:
    tail = [line for line in list(channel.recent_stderr)[-lines:] if line.strip()]
    return redactor.redact(" | ".join(tail)) if tail else "no output on stderr"


@asynccontextmanager
async def mcp_session(
    endpoint: Endpoint,
    container: str,
    *,
    timeout: float = 30.0,
    redactor: Redactor | None = None,
    before_initialize: Callable[[], Awaitable[None]] | None = None,
    label: str = "server",
    capture: Capture | None = None,
    asks: Collection[str] = (),
    ask: Ask | None = None,
) -> AsyncIterator[Session]:
    """Attach, (optionally start the container), initialize, and yield the session.

    ``before_initialize`` runs once attached, so a freshly created container can be
    started with nothing it writes missed. A server that does not finish initialize
    within ``timeout`` has its stream closed under it, which ends the handshake.
    ``capture`` sees this session's JSON-RPC lines exactly as written and read.
    ``asks`` are the server-to-client requests the session declares (the owner allowed
    them); ``ask`` answers them (see ``ask_callbacks``).
    """
    redactor = redactor or Redactor()
    async with attached(endpoint, container) as channel:
        if before_initialize is not None:
            await before_initialize()
        timed_out = anyio.Event()

        async def watchdog() -> None:
            await anyio.sleep(timeout)
            timed_out.set()
            await channel.aclose()

        entered = False
        # A plain task, not a task group: the caller's body must not run inside a scope
        # that gets cancelled when the handshake is done.
        guard = asyncio.create_task(watchdog())
        try:
            tapped = _Tapped(channel, capture) if capture is not None else channel
            async with contextlib.AsyncExitStack() as stack:
                client = await _connect(stack, tapped, asks, ask)
                entered = True
                guard.cancel()
                yield Session(channel, client, frozenset(asks))
        except Exception as exc:
            if entered:
                raise
            await anyio.sleep(0.2)  # let the last stderr lines of a dying server arrive
            if timed_out.is_set():
                raise ServerUnavailable(
                    f"{label} did not answer MCP initialize within {timeout:g}s; its stderr says: "
                    f"{stderr_tail(channel, redactor)}"
                ) from None
            reason = channel.close_reason or _describe(exc)
            raise ServerUnavailable(
                f"{label} failed to start an MCP session ({redactor.redact(reason)}); its stderr says: "
                f"{stderr_tail(channel, redactor)}"
            ) from None
        finally:
            guard.cancel()


async def _connect(stack: contextlib.AsyncExitStack, channel: Any, asks: Collection[str], ask: Ask | None) -> Client:
    """The handshake era first, the 2026-07-28 era for a server that speaks only that.

    Not the SDK's ``mode="auto"`` (discover first): a server that speaks both eras would
    then serve the gateway in the new one, and the gateway relays what a server says
    and asks to the agents behind it best over a session of the handshake era (its
    logging, subscriptions and requests are addressed to a session; the new era's are
    per request). A server of the new era only answers ``initialize`` with -32022 and
    stays in its era on the same stream, so the second attempt discovers it there.
    """
    options: dict[str, Any] = {"client_info": CLIENT_INFO, **ask_callbacks(asks, ask)}
    try:
        return await stack.enter_async_context(Client(channel_transport(channel), mode="legacy", **options))
    except Exception as exc:  # noqa: BLE001 - anything but the new era's refusal is raised again
        if not _modern_only(exc):
            raise
    return await stack.enter_async_context(Client(channel_transport(channel), mode="auto", **options))


def _modern_only(exc: BaseException) -> bool:
    """The refusal of ``initialize`` by a server of the 2026-07-28 era alone (-32022 naming
    only versions of that era); the SDK may hand it over inside a task group's exceptions."""
    if isinstance(exc, BaseExceptionGroup):
        return any(_modern_only(inner) for inner in exc.exceptions)
    if not isinstance(exc, MCPError) or exc.code != UNSUPPORTED_PROTOCOL_VERSION:
        return False
    data = exc.error.data
    supported = data.get("supported") if isinstance(data, dict) else None
    return isinstance(supported, list) and any(version in MODERN_PROTOCOL_VERSIONS for version in supported)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, BaseExceptionGroup):
        return "; ".join(_describe(e) for e in exc.exceptions)
    return str(exc) or type(exc).__name__
