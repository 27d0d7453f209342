"""The gateway for one toolbox: composes the pipeline's parts and runs them.

It follows the vault: a grant changed by ``tbx grant``, the console or a policy push is
picked up as soon as the vault file is replaced (inotify; polling every
``policy_poll_seconds`` where there are no file events), read and compiled off the event
loop, and connected agents are told ``*/list_changed``. It follows the servers: a
restarted server is reconnected and nothing is forwarded to it until its definitions were
re-discovered and compared with their pins — a changed definition is blocked until the
owner approves it again. It stops cleanly on SIGTERM, SIGINT and SIGHUP: sessions end,
the audit log is flushed and checkpointed, the stop is recorded and the address withdrawn.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import threading
import time
from collections.abc import Iterable
from typing import Any

from console.gateway import jsonrpc as rpc
from console.gateway import process
from console.gateway.approvals import Approvals
from console.gateway.approvals_http import ApprovalControl
from console.gateway.audit_writer import AuditWriter
from console.gateway.auth import owner_key
from console.gateway.control_socket import ControlSocket
from console.gateway.server_health_http import ServerHealthControl
from console.gateway.egress_host import EgressHost
from console.gateway.filewatch import FileWatch
from console.gateway.http import Admission, McpHttpApp
from console.gateway.pipeline import Pipeline
from console.gateway.process import GatewayInfo
from console.gateway.server import FD_RESERVE, ConnectionGuard, GatewayServer, build_server, raise_file_limit
from console.gateway.client_requests import AgentAsks
from console.gateway.relay import Relay
from console.gateway.sessions import SessionStore
from console.gateway.shared import SharedUpstream
from console.gateway.snapshot import Snapshot, Snapshots
from console.gateway.surface import SEPARATOR
from console.gateway.upstreams import Upstreams
from console.model import DesiredState, ItemKind, ServerInstance
from console.runtime.enginehttp import Endpoint
from console.runtime.session import Session
from console.runtime.supervisor import Health, Supervisor
from console.services.supervision import apply_watched, watched_servers
from console.services.tools import record_discovery
from console.workspace import Workspace

log = logging.getLogger(__name__)
LIVE_STATES = ("running", "restarting")
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
LIST_CHANGED = {kind.value: rpc.notification(f"notifications/{noun}/list_changed")
                for kind, noun in ((ItemKind.TOOL, "tools"), (ItemKind.PROMPT, "prompts"),
                                   (ItemKind.RESOURCE, "resources"), (ItemKind.TEMPLATE, "resources"))}


class Gateway:
    def __init__(
        self, ws: Workspace, toolbox: str, *, host: str | None = None, port: int | None = None,
        tls: tuple[str, str] | None = None, control_socket: str | None = None,
    ) -> None:
        """``tls`` is (certificate file, key file): the gateway on a remote toolbox speaks HTTPS.
        ``control_socket``: the owner's door is this Unix socket, not the port (``control_socket.py``)."""
        self.ws = ws
        self.tls = tls
        self.settings = ws.settings.gateway
        self.runtime = ws.settings.runtime
        self.toolbox = ws.repos.toolboxes.require(toolbox)
        self.host = host or self.settings.host
        self.port = self.settings.port if port is None else port
        self.supervisor: Supervisor | None = None
        self.server: GatewayServer | None = None
        self.guard: ConnectionGuard | None = None
        self._syncing: asyncio.Task[None] | None = None
        self.started = asyncio.Event()
        self.url = ""
        self._problems: list[str] = []
        self._agents: list[str] = []
        """Ids of the agents with an open session, as last published in the state file."""
        self._started_at = time.time()
        self.snapshots = Snapshots(ws, self.toolbox.id, self._running)
        self.snapshots.on_swap(self._swapped)
        self.sessions = SessionStore(self.settings.session_idle_minutes * 60, self.settings.max_sessions_per_agent)
        self.writer = AuditWriter(ws, self.settings.audit_flush_seconds, self.settings.checkpoint_seconds,
                                  max_pending=self.settings.audit_pending_max,
                                  on_state_change=self._audit_state_changed)
        self.upstreams = Upstreams(self._session_wait, self._verify, min(10.0, self.runtime.start_timeout))
        self.relay = Relay(self.sessions, self.snapshots)
        self.upstreams.on_notification(self.relay.server_said)
        self.asks = AgentAsks(self.snapshots, self.writer.record, timeout=self.runtime.call_timeout)
        self.upstreams.on_undeclared_request(self.asks.undeclared)
        self.shared = SharedUpstream(self.sessions, self.snapshots, self.upstreams, self.relay,
                                     self.runtime.call_timeout)
        self.approvals = Approvals(self.snapshots, self.writer.record, self._approval_grant,
                                   timeout=self.settings.approval_timeout_seconds,
                                   progress_every=self.settings.approval_progress_seconds,
                                   max_pending=self.settings.max_pending_approvals)
        self.pipeline = Pipeline(snapshots=self.snapshots, sessions=self.sessions, upstreams=self.upstreams,
                                 audit=self.writer, owner_key=owner_key(ws), settings=self.settings,
                                 call_timeout=self.runtime.call_timeout, instructions=self.instructions,
                                 relay=self.relay, shared=self.shared, asks=self.asks, approvals=self.approvals)
        self.egress = EgressHost(ws.paths, self.writer.record, allow_private=self.settings.egress_private_addresses)
        self._egress_sync: asyncio.Task[None] | None = None
        self.admission = Admission()
        self.app = McpHttpApp(self.pipeline, self.admission, toolbox=self.toolbox.name,
                              max_body_bytes=self.settings.max_body_bytes,
                              body_timeout=self.settings.body_timeout_seconds)
        control = ApprovalControl(self.approvals, self.pipeline.owner_key,
                                  lambda reason: self.pipeline.unauthenticated.update([reason]),
                                  grants_here=control_socket is None)
        health = ServerHealthControl(control, lambda: self.supervisor.all_health() if self.supervisor else [])
        self.control = ControlSocket(control, control_socket, health) if control_socket else None
        if self.control is None:
            self.app.control = control

    @property
    def snapshot(self) -> Snapshot:
        return self.snapshots.current

    def instructions(self, endpoint: str | None) -> str:
        if endpoint is None:
            return (f"Tools of toolbox '{self.toolbox.name}', granted to you by its owner, named "
                    f"<server>{SEPARATOR}<tool>. Calls are checked and recorded.")
        return f"Tools of server '{endpoint}' in toolbox '{self.toolbox.name}', granted to you by its owner."

    # -- what agents see -----------------------------------------------------------------

    def _running(self, servers: Iterable[ServerInstance]) -> set[str]:
        """Servers to treat as running: the supervisor's word, the desired state before it has one."""
        running = set()
        for server in servers:
            health = self.supervisor.watched(server.id) if self.supervisor else None
            if health is None or health.state == "unknown":
                if server.desired_state is DesiredState.RUNNING:
                    running.add(server.id)
            elif health.state in LIVE_STATES:
                running.add(server.id)
        return running

    def _swapped(self, snapshot: Snapshot) -> None:
        self.announce_changes()
        if self.supervisor is not None:
            self._syncing = asyncio.get_running_loop().create_task(self._sync_watched())
            self._egress_sync = asyncio.get_running_loop().create_task(self._sync_egress())

    async def _sync_egress(self) -> None:
        """The servers' proxies follow the policy: egress given, changed or taken away."""
        await self.egress.follow(self._egress_wanted)

    def _egress_wanted(self) -> dict[str, tuple[str, list[str]]]:
        with self.ws.vault.reading():
            return {server.id: (f"{self.toolbox.name}/{server.name}", list(server.egress))
                    for server in self.ws.repos.servers.in_toolbox(self.toolbox.id) if server.network == "egress"}

    async def _sync_watched(self) -> None:
        wanted = await asyncio.to_thread(self._wanted)
        if self.supervisor is not None:
            apply_watched(self.supervisor, wanted)

    def _wanted(self) -> Any:
        with self.ws.vault.reading():
            return watched_servers(self.ws, self.toolbox.id)

    def announce_changes(self) -> None:
        """Tell each session which of its listings changed (grants, pins, expiry, servers)."""
        now = time.time()
        surface = self.snapshots.current.surface
        for session in self.sessions:
            shown = surface.exposed(session.agent_id, session.endpoint, now)
            said: set[bytes] = set()
            for kind, names in shown.items():
                if session.visible.get(kind, frozenset()) != names:
                    session.visible[kind] = names
                    if LIST_CHANGED[kind] not in said:
                        said.add(LIST_CHANGED[kind])
                        session.notify(LIST_CHANGED[kind])

    async def _approval_grant(self, agent_id: str, server_id: str, ref: str, allow_for: Any) -> None:
        """The grant an owner's decision on a held call makes ("allow for N minutes", "always deny")."""
        from console.services.grants import allow_for as allow_while, always_deny

        if allow_for is None:
            await asyncio.to_thread(always_deny, self.ws, agent_id, server_id, ref)
        else:
            await asyncio.to_thread(allow_while, self.ws, agent_id, server_id, ref, allow_for)

    # -- upstream ----------------------------------------------------------------------

    async def _session_wait(self, server_id: str, wait: float) -> Session:
        assert self.supervisor is not None
        if self.supervisor.watched(server_id) is None:
            # A server added a moment ago: the supervisor is told about it after the swap.
            if self._syncing is not None:
                await self._syncing
            if self.supervisor.watched(server_id) is None:
                await self._sync_watched()
        return await self.supervisor.session(server_id, wait=min(wait, self.runtime.start_timeout))

    async def _verify(self, server_id: str, session: Session) -> int:
        """Re-discover a server and compare with the pins; the generation that holds the result."""
        async with asyncio.timeout(self.runtime.start_timeout):  # a server that never lists is retried
            found = await session.discover()

        def record() -> None:
            server = self.ws.repos.servers.get(server_id)
            if server is not None:
                with self.ws.change(actor="gateway") as change:
                    record_discovery(change, server, found, self.toolbox.name)

        await asyncio.to_thread(record)
        if not await self.snapshots.reload():
            raise RuntimeError(f"the policy could not be reloaded: {self.snapshots.problem}")
        return self.snapshots.current.generation

    def _health_changed(self, health: Health) -> None:
        surface = self.snapshots.current.surface
        if health.server_id in surface.server_names:
            running = health.state in LIVE_STATES
            if running != (health.server_id in surface.policy.running):
                asyncio.get_running_loop().create_task(self.snapshots.reload())

    # -- running -------------------------------------------------------------------------

    async def _follow_vault(self) -> None:
        """Reload the policy when the vault changes; the once-a-second upkeep beside it."""
        async with asyncio.TaskGroup() as group:
            group.create_task(self._watch_vault(), name="gateway:vault-watch")
            group.create_task(self._upkeep(), name="gateway:upkeep")

    async def _watch_vault(self) -> None:
        """A file event wakes the reload at once; every ``policy_poll_seconds`` a look at the
        vault catches what an event might have missed (without file events: the poll).

        The gateway's own writes (audit checkpoints, discovery records) wake it too: each
        costs one recompile, as it would at the next request, and a reload writes nothing,
        so nothing loops. Reloads queue in ``Snapshots.reload``: events during one are
        answered by one look (and at most one reload) after it.
        """
        every = self.settings.policy_poll_seconds
        with FileWatch(self.ws.vault.path, every) as watch:  # it says so when it polls
            while True:
                await watch.wait(every)
                try:
                    if self.snapshots.stale():
                        await self.snapshots.reload()
                except Exception:  # a bad moment reading the vault must not stop the gateway
                    log.exception("following the vault failed")

    async def _upkeep(self) -> None:
        """Grants that expired, idle sessions, the refusal summary, the published problems."""
        while True:
            await asyncio.sleep(1.0)
            try:
                self.announce_changes()  # grants that expired since
                for session in self.sessions.expire():
                    self.pipeline.session_ended(session, "idle")
                for summary in (self.pipeline.summarise_refusals(), self.relay.summary(), self.asks.summary()):
                    if summary is not None:
                        self.writer.record(summary)
                await self.shared.tidy()
                await self._publish_problems()
            except Exception:  # one bad second must not stop the upkeep
                log.exception("the gateway's upkeep failed")

    async def _keep_tokens(self) -> None:
        """Servers of this toolbox are handed a fresh token before theirs expires."""
        from console.services.connection_upkeep import keep_fresh

        every = min(30.0, self.ws.settings.oauth.refresh_ahead_seconds / 4)
        while True:
            await asyncio.sleep(every)
            try:
                renewed = await asyncio.to_thread(keep_fresh, self.ws, {self.toolbox.id})
                if renewed:
                    log.info("handed refreshed tokens: %s", ", ".join(renewed))
            except Exception:  # one bad refresh must not stop the gateway; it is audited
                log.exception("keeping connection tokens fresh failed")

    async def run(self) -> None:
        limit = raise_file_limit(self.settings.max_connections + FD_RESERVE)
        self.guard = ConnectionGuard(max(16, min(self.settings.max_connections, limit - FD_RESERVE)),
                                     self.settings.header_timeout_seconds)
        self.server = build_server(self.app, host=self.host, port=self.port, tls=self.tls, guard=self.guard,
                                   idle_timeout=self.settings.idle_timeout_seconds)
        self.supervisor = Supervisor(Endpoint.parse(self.toolbox.engine_endpoint),
                                     watched_servers(self.ws, self.toolbox.id),
                                     start_timeout=self.runtime.start_timeout)
        self.supervisor.on_change(self._health_changed)
        self.supervisor.on_session(self.upstreams.session_changed)
        self.supervisor.ask_for = self.asks.asker
        loop = asyncio.get_running_loop()
        handled = self._handle_signals(loop)
        loop.set_exception_handler(_quiet_resource_errors())
        try:
            async with self.supervisor, self.writer:
                await self._serve()
        finally:
            for sig in handled:
                loop.remove_signal_handler(sig)

    async def _serve(self) -> None:
        assert self.server is not None
        follow = asyncio.create_task(self._follow_vault(), name="gateway:vault")
        tokens = asyncio.create_task(self._keep_tokens(), name="gateway:tokens")
        serve = asyncio.create_task(self.server.serve(), name="gateway:http")
        owner = asyncio.create_task(self.control.serve(), name="gateway:control") if self.control else None
        egress = asyncio.create_task(self.egress.summarise_every(), name="gateway:egress")
        try:
            await self._sync_egress()  # before agents arrive, so a call's first fetch finds its proxy
            while not self.server.started:
                if serve.done():
                    await serve  # raises the bind error
                    return
                await asyncio.sleep(0.02)
            await asyncio.to_thread(self._announce_address)
            self.started.set()
            await serve
        finally:
            if self.control is not None:
                self.control.stop()
            for task in (follow, tokens, owner, egress, self._egress_sync):
                if task is None:
                    continue
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            self.approvals.close("the gateway stopped")
            self._end_sessions("gateway stopped")
            await self.pipeline.input_requests.close()
            await self.upstreams.close()
            await self.egress.close()
            if self.url:
                with contextlib.suppress(Exception):  # a failing flush leaves records pending for __aexit__
                    await self.writer.flush()
                await asyncio.to_thread(self._withdraw_address)

    def _handle_signals(self, loop: asyncio.AbstractEventLoop) -> list[int]:
        if threading.current_thread() is not threading.main_thread():
            return []  # only the main thread receives signals (tests run the gateway in a thread)
        for sig in STOP_SIGNALS:
            loop.add_signal_handler(sig, self.stop)
        return list(STOP_SIGNALS)

    def stop(self) -> None:
        """Stop serving (safe to call from a signal handler on the loop, or repeatedly)."""
        self.approvals.close("the gateway is stopping")  # held calls are answered before their sessions end
        self._end_sessions("gateway stopped")  # open event streams end, so the server can
        if self.server is not None:
            self.server.should_exit = True

    def _end_sessions(self, why: str) -> None:
        for session in list(self.sessions):
            self.pipeline.end_session(session, why)

    # -- address and status --------------------------------------------------------------

    def problems(self) -> list[str]:
        """What keeps the gateway from working as it should, one line each, worst first."""
        found = []
        if self.writer.failure:
            found.append(f"audit: {self.writer.failure}")
        if self.snapshots.problem:
            found.append(f"policy: {self.snapshots.problem}; serving the last good policy")
        return found

    def _audit_state_changed(self, failure: str | None) -> None:
        """Say at once that calls are refused (or work again), not at the next second."""
        if self.url:
            asyncio.get_running_loop().create_task(self._publish_problems())

    async def _publish_problems(self) -> None:
        """The state file says what is wrong and which agents are connected (the console
        names them before it stops the gateway); rewritten only when either changes."""
        problems = self.problems()
        agents = sorted({session.agent_id for session in self.sessions})
        if (problems != self._problems or agents != self._agents) and self.url:
            if problems != self._problems:
                for problem in problems:
                    log.error("%s", problem)
            self._problems, self._agents = problems, agents
            await asyncio.to_thread(self._write_state)

    def _write_state(self) -> None:
        process.write_state(self.ws.paths, GatewayInfo(
            url=self.url, pid=os.getpid(), started=self._started_at, problems=tuple(self._problems),
            agents=tuple(self._agents), toolbox=self.toolbox.name))

    def _announce_address(self) -> None:
        assert self.server is not None
        sock = self.server.servers[0].sockets[0]
        self.port = sock.getsockname()[1]
        host = self.host if ":" not in self.host else f"[{self.host}]"
        self.url = f"{'https' if self.tls else 'http'}://{host}:{self.port}"
        names = {self.host, "127.0.0.1", "localhost", "[::1]", *self.settings.allowed_hosts}
        self.admission.hosts = {f"{name}:{self.port}".lower() for name in names} | {
            n.lower() for n in self.settings.allowed_hosts}
        self.admission.origins = {f"{scheme}://{name}:{self.port}".lower() for name in names
                                  for scheme in ("http", "https")} | {o.lower() for o in self.settings.allowed_origins}
        self._started_at = time.time()
        self._write_state()
        with self.ws.change(actor="gateway") as change:
            box = change.repos.toolboxes.get(self.toolbox.id)
            if box is not None:
                box.gateway_address = self.url
                change.repos.toolboxes.put(box)
            change.record("gateway.start", f"toolbox:{self.toolbox.name}", detail={"url": self.url, "pid": os.getpid()})

    def _withdraw_address(self) -> None:
        process.remove_state(self.ws.paths, self.toolbox.name)
        with self.ws.change(actor="gateway") as change:
            box = change.repos.toolboxes.get(self.toolbox.id)
            if box is not None and box.gateway_address == self.url:
                box.gateway_address = None
                change.repos.toolboxes.put(box)
            change.record("gateway.stop", f"toolbox:{self.toolbox.name}", detail={"url": self.url})


def _quiet_resource_errors() -> Any:
    """The loop's error handler, saying "out of file descriptors" once a minute, not per accept."""
    last = [0.0]

    def handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        exception = context.get("exception")
        if isinstance(exception, OSError) and exception.errno in (24, 23, 105, 12):  # EMFILE ENFILE ENOBUFS ENOMEM
            if time.monotonic() - last[0] < 60:
                return
            last[0] = time.monotonic()
            log.error("out of system resources accepting connections (%s); new connections wait", exception)
            return
        loop.default_exception_handler(context)

    return handler
