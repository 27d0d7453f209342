"""The gateway for one toolbox: supervisor, shared upstream sessions, live policy, HTTP.

It follows the vault: a grant changed by ``tbx grant`` or the console is picked up within
``policy_poll_seconds`` and connected agents are told ``tools/list_changed``. It follows
the servers: a restarted server is reconnected, its tools re-discovered and compared
with their pins — a changed definition is blocked until the owner approves it again.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
from pathlib import Path
from typing import Any

import uvicorn

from console.gateway import jsonrpc as rpc
from console.gateway.audit_writer import AuditWriter
from console.gateway.auth import Identity, owner_key
from console.gateway.forwarder import Forwarder, UpstreamFailed
from console.gateway.http import McpHttpApp, session_event
from console.gateway.methods import Methods
from console.gateway.sessions import AgentSession, SessionStore
from console.gateway.surface import SEPARATOR, Surface
from console.model import DesiredState
from console.runtime.enginehttp import Endpoint
from console.runtime.session import ServerUnavailable, Session
from console.runtime.supervisor import Health, Supervisor
from console.services.supervision import sync_supervisor, watched_servers
from console.services.tools import record_discovery
from console.trust.redact import Redactor
from console.services.redaction import vault_redactor
from console.workspace import Workspace

log = logging.getLogger(__name__)
LIVE_STATES = ("running", "restarting")
LIST_CHANGED = rpc.notification("notifications/tools/list_changed")


def state_file(ws: Workspace, toolbox: str) -> Path:
    return ws.paths.state_dir / f"gateway-{toolbox}.json"


class Gateway:
    def __init__(
        self, ws: Workspace, toolbox: str, *, host: str | None = None, port: int | None = None,
        tls: tuple[str, str] | None = None,
    ) -> None:
        """``tls`` is (certificate file, key file): the gateway on a remote toolbox speaks HTTPS."""
        self.ws = ws
        self.tls = tls
        self.settings = ws.settings.gateway
        self.runtime = ws.settings.runtime
        self.toolbox = ws.repos.toolboxes.require(toolbox)
        self.host = host or self.settings.host
        self.port = self.settings.port if port is None else port
        self.sessions = SessionStore(self.settings.session_idle_minutes * 60)
        self.writer = AuditWriter(ws, self.settings.audit_flush_seconds, self.settings.checkpoint_seconds)
        self.owner_key = owner_key(ws)
        self.methods = Methods(self)
        self.app = McpHttpApp(self)
        self.supervisor: Supervisor | None = None
        self.server: uvicorn.Server | None = None
        self._forwarders: dict[str, Forwarder] = {}
        self._generation = 0
        self.started = asyncio.Event()
        self.url = ""
        self.allowed_hosts: set[str] = set()
        self.allowed_origins: set[str] = set()
        self.surface = self._surface()
        self.redactor = self._redactor()

    # -- what agents see -----------------------------------------------------------------

    def _running(self) -> set[str]:
        running = set()
        for server in self.ws.repos.servers.in_toolbox(self.toolbox.id):
            health = self.supervisor.watched(server.id) if self.supervisor else None
            if health is None or health.state == "unknown":
                if server.desired_state is DesiredState.RUNNING:
                    running.add(server.id)
            elif health.state in LIVE_STATES:
                running.add(server.id)
        return running

    def _surface(self) -> Surface:
        self._generation += 1
        return Surface(self.ws.tables(), self.toolbox.id, self._running(), self._generation)

    def _redactor(self) -> Redactor:
        return vault_redactor(self.ws)

    def rebuild(self) -> None:
        """Recompile after the vault or the servers changed, and tell agents what changed."""
        self.surface = self._surface()
        self.redactor = self._redactor()
        self._sync_watched()
        self.announce_changes()

    def caught_up(self) -> bool:
        """Reload now if the vault changed since the last poll; return whether it did.

        Called before refusing anyone, so a token or grant created a moment ago works at
        once instead of after the next poll. Only a changed file costs a reload.
        """
        if not self.ws.vault.is_stale():
            return False
        self.ws.refresh()
        self.rebuild()
        return True

    def announce_changes(self) -> None:
        now = time.time()
        for session in self.sessions:
            visible = frozenset(t["name"] for t in self.surface.tools_json(session.agent_id, session.endpoint, now))
            if visible != session.visible:
                session.visible = visible
                session.notify(LIST_CHANGED)

    def agent_name(self, agent_id: str) -> str:
        entry = self.surface.policy.agents.get(agent_id)
        return entry.name if entry else agent_id

    def instructions(self, endpoint: str | None) -> str:
        if endpoint is None:
            return (f"Tools of toolbox '{self.toolbox.name}', granted to you by its owner, named "
                    f"<server>{SEPARATOR}<tool>. Calls are checked and recorded.")
        return f"Tools of server '{endpoint}' in toolbox '{self.toolbox.name}', granted to you by its owner."

    # -- sessions ----------------------------------------------------------------------

    def open_session(self, identity: Identity, endpoint: str | None, version: str, client: Any) -> AgentSession:
        session = self.sessions.create(identity.agent_id, endpoint, version, identity.on_behalf)
        name = self.agent_name(identity.agent_id)
        info = {k: str(v)[:100] for k, v in client.items() if k in ("name", "version")} if isinstance(client, dict) else {}
        actor = "owner" if identity.on_behalf else f"agent:{name}"
        self.writer.record(session_event(actor, "session.open", session, name,
                                         {"protocol": version, "client": info, "on_behalf": identity.on_behalf}))
        return session

    def end_session(self, session: AgentSession, why: str) -> None:
        if self.sessions.end(session.id) is not None:
            name = self.agent_name(session.agent_id)
            actor = "owner" if session.on_behalf else f"agent:{name}"
            self.writer.record(session_event(actor, "session.close", session, name, {"why": why}))

    # -- upstream ----------------------------------------------------------------------

    async def forwarder(self, server_id: str) -> Forwarder:
        found = self._forwarders.get(server_id)
        if found is not None and found.alive:
            return found
        assert self.supervisor is not None
        try:
            await self.supervisor.session(server_id, wait=min(10.0, self.runtime.start_timeout))
        except ServerUnavailable as exc:
            raise UpstreamFailed(str(exc)) from None
        found = self._forwarders.get(server_id)
        if found is None or not found.alive:
            raise UpstreamFailed("the server is reconnecting")
        return found

    def _session_changed(self, server_id: str, session: Session | None) -> None:
        if session is None:
            self._forwarders.pop(server_id, None)
            return
        self._forwarders[server_id] = Forwarder(
            session.channel, on_notification=lambda line: self._upstream_note(server_id, session, line)
        )
        asyncio.get_running_loop().create_task(self._rediscover(server_id, session))

    def _upstream_note(self, server_id: str, session: Session, line: bytes) -> None:
        if b"notifications/tools/list_changed" in line:
            asyncio.get_running_loop().create_task(self._rediscover(server_id, session))

    async def _rediscover(self, server_id: str, session: Session) -> None:
        """Compare the live definitions with the pins; a changed one is blocked at once."""
        try:
            found = await session.discover()
        except Exception as exc:  # the server went away mid-listing; its next session retries
            log.info("re-discovery of %s failed: %s", server_id, exc)
            return

        def record() -> None:
            server = self.ws.repos.servers.get(server_id)
            if server is None:
                return
            with self.ws.change(actor="gateway") as change:
                record_discovery(change, server, found, self.toolbox.name)

        await asyncio.to_thread(record)
        self.rebuild()

    def _health_changed(self, health: Health) -> None:
        if health.server_id in self.surface.server_names:
            running = health.state in LIVE_STATES
            if running != (health.server_id in self.surface.policy.running):
                self.rebuild()

    def _sync_watched(self) -> None:
        if self.supervisor is not None:
            sync_supervisor(self.supervisor, self.ws, self.toolbox.id)

    # -- running -------------------------------------------------------------------------

    async def _follow_vault(self) -> None:
        last_expiry_check = 0.0
        while True:
            await asyncio.sleep(self.settings.policy_poll_seconds)
            try:
                if self.ws.vault.is_stale():
                    await asyncio.to_thread(self.ws.refresh)
                    self.rebuild()
                elif time.monotonic() - last_expiry_check >= 1.0:
                    self.announce_changes()  # grants that expired since
                    last_expiry_check = time.monotonic()
                for session in self.sessions.expire():
                    self.end_session(session, "idle")
            except Exception:  # a bad moment reading the vault must not stop the gateway
                log.exception("following the vault failed")

    async def _keep_tokens(self) -> None:
        """Servers of this toolbox get a container with a fresh token before theirs expires."""
        from console.services.connection_upkeep import keep_fresh

        every = min(30.0, self.ws.settings.oauth.refresh_ahead_seconds / 4)
        while True:
            await asyncio.sleep(every)
            try:
                recreated = await asyncio.to_thread(keep_fresh, self.ws, {self.toolbox.id})
                if recreated:
                    log.info("re-created with refreshed tokens: %s", ", ".join(recreated))
            except Exception:  # one bad refresh must not stop the gateway; it is audited
                log.exception("keeping connection tokens fresh failed")

    async def run(self) -> None:
        self.supervisor = Supervisor(Endpoint.parse(self.toolbox.engine_endpoint),
                                     watched_servers(self.ws, self.toolbox.id),
                                     start_timeout=self.runtime.start_timeout)
        self.supervisor.on_change(self._health_changed)
        self.supervisor.on_session(self._session_changed)
        http = "httptools" if _has("httptools") else "h11"
        tls = {"ssl_certfile": self.tls[0], "ssl_keyfile": self.tls[1]} if self.tls else {}
        self.server = uvicorn.Server(uvicorn.Config(self.app, host=self.host, port=self.port, http=http, **tls,
                                                    lifespan="off", log_level="warning", access_log=False))
        async with self.supervisor, self.writer:
            follow = asyncio.create_task(self._follow_vault(), name="gateway:vault")
            tokens = asyncio.create_task(self._keep_tokens(), name="gateway:tokens")
            serve = asyncio.create_task(self.server.serve(), name="gateway:http")
            try:
                while not self.server.started:
                    if serve.done():
                        await serve  # raises the bind error
                        return
                    await asyncio.sleep(0.02)
                self._announce_address()
                await serve
            finally:
                for task in (follow, tokens):
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
                for session in list(self.sessions):
                    self.end_session(session, "gateway stopped")
                await asyncio.to_thread(self._withdraw_address)

    def stop(self) -> None:
        if self.server is not None:
            self.server.should_exit = True

    def _announce_address(self) -> None:
        assert self.server is not None
        sock = self.server.servers[0].sockets[0]
        self.port = sock.getsockname()[1]
        host = self.host if ":" not in self.host else f"[{self.host}]"
        self.url = f"{'https' if self.tls else 'http'}://{host}:{self.port}"
        names = {self.host, "127.0.0.1", "localhost", "[::1]", *self.settings.allowed_hosts}
        self.allowed_hosts = {f"{name}:{self.port}".lower() for name in names} | {n.lower() for n in self.settings.allowed_hosts}
        self.allowed_origins = {f"http://{name}:{self.port}".lower() for name in names} | {
            o.lower() for o in self.settings.allowed_origins}
        path = state_file(self.ws, self.toolbox.name)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"pid": os.getpid(), "url": self.url, "toolbox": self.toolbox.name,
                                    "started": time.time()}))
        with self.ws.change(actor="gateway") as change:
            box = change.repos.toolboxes.get(self.toolbox.id)
            if box is not None:
                box.gateway_address = self.url
                change.repos.toolboxes.put(box)
            change.record("gateway.start", f"toolbox:{self.toolbox.name}", detail={"url": self.url, "pid": os.getpid()})
        self.started.set()

    def _withdraw_address(self) -> None:
        state_file(self.ws, self.toolbox.name).unlink(missing_ok=True)
        with self.ws.change(actor="gateway") as change:
            box = change.repos.toolboxes.get(self.toolbox.id)
            if box is not None and box.gateway_address == self.url:
                box.gateway_address = None
                change.repos.toolboxes.put(box)
            change.record("gateway.stop", f"toolbox:{self.toolbox.name}", detail={"url": self.url})


def _has(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None
