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


@dataclass
class Session:
    channel: StdioChannel
    client: Client
    asks: frozenset[str] = frozenset()
    """The server-to-client requests this session declared (``mcp_session``)."""

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
            async with Client(channel_transport(tapped), mode="legacy", client_info=CLIENT_INFO,  # type: ignore[arg-type]
                              **ask_callbacks(asks, ask)) as client:
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


def _describe(exc: BaseException) -> str:
    if isinstance(exc, BaseExceptionGroup):
        return "; ".join(_describe(e) for e in exc.exceptions)
    return str(exc) or type(exc).__name__
