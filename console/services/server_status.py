"""What servers are doing: state, health, logs, and calling a tool as the owner."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from contextlib import AbstractAsyncContextManager, contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any

import mcp_types as types

from console.errors import NotFound, TbxError
from console.model import DesiredState, ItemKind, ServerInstance, Toolbox, item_ref, tool_key
from console.runtime import streams
from console.runtime.containers import ContainerState, Engine
from console.runtime.enginehttp import Endpoint
from console.runtime.session import Capture, ServerUnavailable, Session, mcp_session
from console.services.remote_servers import ping_all, remote_session
from console.services.servers import ServerRef, engine_for, redactor_for, resolve
from console.services.token_injection import handover_step
from console.trust.redact import argument_digest
from console.workspace import Workspace

PING_TIMEOUT = 5.0
Prepare = Callable[[], Awaitable[None]]


@dataclass(frozen=True)
class SeenThere:
    """One server as its toolbox's own gateway sees it (``console.gateway.remote_server_health``)."""

    health: str
    ping_ms: float | None
    error: str | None


class StatusUnknown(TbxError):
    """A toolbox's gateway could not be asked how its servers are; the message says why."""


AskToolbox = Callable[[Workspace, Toolbox], dict[str, SeenThere]]


@dataclass
class ServerStatus:
    toolbox: str
    name: str
    server_id: str
    desired: str
    state: str
    """Docker's status, or ``missing`` when the container is gone."""
    health: str
    """healthy | unresponsive | down | stopped | starting"""
    restarts: int
    ping_ms: float | None
    tools: int
    pending: int
    """Tools that are not exposable (pending, changed or blocked)."""
    image: str | None
    error: str | None
    may_ask: list[str] = field(default_factory=list)
    """What the owner lets the server ask agents for (``tbx server allow``)."""
    kind: str = "local"
    """``remote``: reached over HTTP, no container (its state says ``remote``)."""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


async def ping_server(endpoint: Endpoint, state: ContainerState, label: str, asks: Sequence[str] = (),
                      prepare: Prepare | None = None) -> tuple[float | None, str | None]:
    """MCP ping round trip in ms, or the reason there is none. The session declares what
    the server may ask (a server may take the last initialize's capabilities as its client's);
    ``prepare`` hands a waiting launcher its secrets first (``handover_step``)."""
    try:
        async with mcp_session(endpoint, state.id, timeout=PING_TIMEOUT, label=label, asks=asks,
                               before_initialize=prepare) as session:
            started = time.perf_counter()
            await asyncio.wait_for(session.ping(), PING_TIMEOUT)
            return (time.perf_counter() - started) * 1000, None
    except (ServerUnavailable, TimeoutError, ConnectionError, TbxError) as exc:
        return None, str(exc)


async def _ping_all(
    endpoint: Endpoint, targets: list[tuple[ContainerState | None, str, Sequence[str], Prepare | None]]
) -> list[tuple[float | None, str | None]]:
    async def probe(state: ContainerState | None, label: str, asks: Sequence[str],
                    prepare: Prepare | None) -> tuple[float | None, str | None]:
        if state is None or not state.running:
            return None, None
        return await ping_server(endpoint, state, label, asks, prepare)

    return list(await asyncio.gather(*(probe(*target) for target in targets)))


def _health(desired: DesiredState, state: ContainerState | None, ping_ms: float | None) -> str:
    if state is None:
        return "down" if desired is DesiredState.RUNNING else "stopped"
    if state.status == "restarting":
        return "starting"
    if not state.running:
        return "down" if desired is DesiredState.RUNNING else "stopped"
    return "healthy" if ping_ms is not None else "unresponsive"


def statuses(ws: Workspace, toolbox: str | None = None, *, ping: bool = True,
             ask: AskToolbox | None = None) -> list[ServerStatus]:
    """``ask``: how to ask a remote toolbox's gateway what it sees of its servers (the
    gateway's owner's door, a layer above); without it their status is unknown."""
    boxes = [ws.repos.toolboxes.require(toolbox)] if toolbox else sorted(ws.repos.toolboxes, key=lambda t: t.name)
    tool_counts: dict[str, list[int]] = {}
    for tool in ws.repos.tools:
        counts = tool_counts.setdefault(tool.server, [0, 0])
        counts[0] += 1
        counts[1] += 0 if tool.exposable else 1
    result: list[ServerStatus] = []
    for box in boxes:
        servers = sorted(ws.repos.servers.in_toolbox(box.id), key=lambda s: s.name)
        result += _remote_statuses(ws, box, [s for s in servers if s.kind == "remote"], tool_counts, ping, ask)
        servers = [s for s in servers if s.kind != "remote"]
        if not servers:
            continue
        engine = engine_for(ws, box)
        try:
            states = {c.labels.get("io.tbx.server"): c for c in engine.managed(box.id)}
            endpoint = Endpoint.parse(engine.endpoint)
            targets = [(state, f"{box.name}/{s.name}", s.may_ask,
                        handover_step(ws, s, endpoint, state.id) if state else None)
                       for s in servers for state in [states.get(s.id)]]
            pings = asyncio.run(_ping_all(endpoint, targets)) if ping else [(None, None)] * len(servers)
        finally:
            engine.close()
        for server, (ping_ms, error) in zip(servers, pings, strict=True):
            state = states.get(server.id)
            counts = tool_counts.get(server.id, [0, 0])
            health = _health(server.desired_state, state, ping_ms) if ping else (state.status if state else "missing")
            if state is not None and state.error:
                error = error or state.error
            if state is not None and not state.running and state.exit_code:
                error = error or f"exited with code {state.exit_code}" + (" (out of memory)" if state.oom_killed else "")
            result.append(ServerStatus(
                toolbox=box.name, name=server.name, server_id=server.id, desired=server.desired_state.value,
                state=state.status if state else "missing", health=health,
                restarts=state.restart_count if state else 0, ping_ms=ping_ms,
                tools=counts[0], pending=counts[1], image=server.image, error=error, may_ask=list(server.may_ask),
            ))
    return sorted(result, key=lambda s: (s.toolbox, s.name))


def _remote_statuses(ws: Workspace, box: Toolbox, servers: list[ServerInstance], tool_counts: dict[str, list[int]],
                     ping: bool, ask: AskToolbox | None) -> list[ServerStatus]:
    if box.is_remote and servers:
        return _seen_from_toolbox(ws, box, servers, tool_counts, ping, ask)
    pings = ping_all(ws, box.name, servers, PING_TIMEOUT) if ping and servers else [(None, None)] * len(servers)
    found = []
    for server, (ping_ms, error) in zip(servers, pings, strict=True):
        running = server.desired_state is DesiredState.RUNNING
        health = "stopped" if not running else ("healthy" if ping_ms is not None else
                                                "unresponsive" if ping else "unknown")
        found.append(_remote_status(box, server, tool_counts, health, ping_ms, error))
    return found


def _seen_from_toolbox(ws: Workspace, box: Toolbox, servers: list[ServerInstance],
                       tool_counts: dict[str, list[int]], ping: bool, ask: AskToolbox | None) -> list[ServerStatus]:
    """A remote toolbox's remote servers as its gateway sees them: the calls go out from
    there, so a ping from here would tell of the wrong network."""
    seen: dict[str, SeenThere] = {}
    why = "not asked (--no-ping)" if not ping else f"the gateway of {box.name} was not asked"
    if ping and ask is not None:
        try:
            seen, why = ask(ws, box), f"the gateway of {box.name} does not watch it (yet)"
        except StatusUnknown as exc:
            why = str(exc)
    found = []
    for server in servers:
        there = seen.get(server.id)
        if server.desired_state is not DesiredState.RUNNING:
            found.append(_remote_status(box, server, tool_counts, "stopped", None, None))
        elif there is None:
            found.append(_remote_status(box, server, tool_counts, "unknown", None, f"unknown: {why}"))
        else:
            found.append(_remote_status(box, server, tool_counts, there.health, there.ping_ms, there.error))
    return found


def _remote_status(box: Toolbox, server: ServerInstance, tool_counts: dict[str, list[int]], health: str,
                   ping_ms: float | None, error: str | None) -> ServerStatus:
    counts = tool_counts.get(server.id, [0, 0])
    return ServerStatus(
        toolbox=box.name, name=server.name, server_id=server.id, desired=server.desired_state.value,
        state="remote", health=health, restarts=0, ping_ms=ping_ms, tools=counts[0], pending=counts[1],
        image=None, error=error, may_ask=list(server.may_ask), kind="remote")


@contextmanager
def container_of(ws: Workspace, ref: ServerRef) -> Iterator[tuple[Endpoint, ContainerState]]:
    """The server's container and the engine endpoint to reach it, kept open (for a
    remote toolbox the endpoint is an SSH tunnel) until the block ends."""
    if ref.server.kind == "remote":
        raise NotFound(f"{ref.label} is a remote server: no container, and no log here ('tbx audit list' "
                       "has every call to it)")
    engine: Engine = engine_for(ws, ref.toolbox)
    try:
        state = engine.find(ref.server.id)
        if state is None:
            raise NotFound(f"server {ref.label} has no container; 'tbx server start {ref.label}' creates it")
        yield Endpoint.parse(engine.endpoint), state
    finally:
        engine.close()


async def log_lines(ws: Workspace, target: str, *, follow: bool, tail: int | None) -> AsyncIterator[str]:
    """The server's stderr with its secrets and anything token-shaped masked."""
    ref = resolve(ws, target)
    redactor = redactor_for(ws, ref.server)
    opened = container_of(ws, ref)
    endpoint, state = await asyncio.to_thread(opened.__enter__)
    try:
        async for line in streams.stderr_lines(endpoint, state.id, follow=follow, tail=tail):
            yield redactor.redact(line)
    finally:
        await asyncio.to_thread(opened.__exit__, None, None, None)


@dataclass
class CallOutcome:
    result: types.CallToolResult
    duration_ms: float


def call_tool(ws: Workspace, target: str, arguments: dict[str, Any], timeout: float | None = None,
              capture: Capture | None = None) -> CallOutcome:
    """Call ``TOOLBOX/SERVER/TOOL`` directly as the owner (no grants apply), audited.

    ``capture`` is handed the JSON-RPC lines of the call exactly as they crossed the
    server's stdio stream (see ``mcp_session``)."""
    server_target, sep, tool = target.rpartition("/")
    if not sep or not tool or "/" not in server_target:
        raise TbxError(f"bad tool {target!r}: use TOOLBOX/SERVER/TOOL, e.g. local/time/get_current_time")
    ref = resolve(ws, server_target)
    if ws.repos.tools.get(tool_key(ref.server.id, item_ref(ItemKind.TOOL, tool))) is None:
        raise NotFound(f"{ref.label} has no tool {tool!r}; 'tbx tools list {ref.label}' shows its tools")
    redactor = redactor_for(ws, ref.server)
    limit = timeout or ws.settings.runtime.call_timeout
    async def run(opened: AbstractAsyncContextManager[Session]) -> CallOutcome:
        async with opened as session:
            started = time.perf_counter()
            try:
                result = await asyncio.wait_for(session.call_tool(tool, arguments), limit)
            except TimeoutError:
                raise ServerUnavailable(f"{target} did not answer within {limit:g}s") from None
            return CallOutcome(result, (time.perf_counter() - started) * 1000)

    decision, detail = "error", {"arguments": argument_digest(arguments, redactor)}
    try:
        if ref.server.kind == "remote":
            if ref.server.desired_state is not DesiredState.RUNNING:
                raise ServerUnavailable(f"server {ref.label} is stopped; 'tbx server start {ref.label}'")
            outcome = asyncio.run(run(remote_session(ws, ref.server, ref.label, redactor, capture)))
        else:
            with container_of(ws, ref) as (endpoint, state):
                if not state.running:
                    raise ServerUnavailable(f"server {ref.label} is {state.status}; 'tbx server start {ref.label}'")
                outcome = asyncio.run(run(mcp_session(
                    endpoint, state.id, redactor=redactor, label=f"server {ref.label}",
                    before_initialize=handover_step(ws, ref.server, endpoint, state.id),
                    capture=capture, asks=ref.server.may_ask)))
        decision = "error" if outcome.result.is_error else "ok"
        detail["duration_ms"] = round(outcome.duration_ms, 2)
        return outcome
    except TbxError as exc:
        detail["error"] = redactor.redact(str(exc))
        raise
    finally:
        with ws.change() as change:
            change.record("tool.call", f"tool:{target}", detail=detail, decision=decision)
