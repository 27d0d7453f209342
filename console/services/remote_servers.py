"""Remote servers of a toolbox: MCP servers someone else runs, reached over HTTP.

No image and no container: adding one connects to it, discovers what it offers (pinned
and scanned as any server's items) and records it; starting and stopping say whether
the gateway uses it. Static credentials are HTTP headers whose values the vault keeps
as secrets (``ServerInstance.secret_refs``: header name -> secret id); they go on every
request through the session's one ``httpx2.Auth`` (``remote_session.HeaderAuth``).
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import time
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from functools import partial
from typing import Literal

import httpx2

from console.errors import AlreadyExists, TbxError, UsageError
from console.model import DesiredState, Secret, ServerInstance, check_name
from console.runtime.remote_session import HeaderAuth, RemoteTarget, remote_mcp_session
from console.runtime.session import Capture, Discovery, ServerUnavailable, Session
from console.services.items import plural
from console.services.redaction import server_redactor
from console.services.servers import Progress, ServerRef
from console.services.tools import DiscoveryOutcome, record_discovery
from console.trust.redact import Redactor
from console.workspace import Workspace

_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,64}$")
_RESERVED = {"host", "content-length", "content-type", "accept", "connection", "transfer-encoding",
             "mcp-session-id", "mcp-protocol-version", "mcp-method", "mcp-name", "last-event-id"}
"""Headers the transport sets itself: a configured value would break or forge the protocol."""


class SignInNeeded(UsageError):
    """The server asks for MCP authorization and no sign-in for it is kept: the CLI and the
    console sign in (``remote_sign_in``) and add it again with the new connection."""

    def __init__(self, url: str, then: str = "add it again") -> None:
        super().__init__(f"{url} asks for sign-in (MCP authorization): sign in with 'tbx server login {url}', "
                         f"then {then}")
        self.url = url


def check_url(url: str) -> str:
    """An absolute https URL (http only to this machine: a test or a tunnel's end),
    without userinfo (credentials go in headers, from the vault)."""
    try:
        parsed = httpx2.URL(url)
    except Exception as exc:  # noqa: BLE001 - httpx2 raises several kinds for a bad URL
        raise UsageError(f"bad server URL {url!r}: {exc}") from None
    if parsed.scheme not in ("https", "http") or not parsed.host:
        raise UsageError(f"bad server URL {url!r}: use https://HOST/PATH")
    if parsed.userinfo:
        raise UsageError("put credentials in --header NAME=VAR (kept in the vault), not in the URL")
    if parsed.scheme == "http" and not _loopback(parsed.host):
        raise UsageError(f"{parsed.host} is reached over plain http: use https (http only for this machine)")
    return str(parsed)


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_header(name: str, value: str) -> None:
    if not _TOKEN.match(name) or name.lower() in _RESERVED:
        raise UsageError(f"{name!r} cannot be a header of a remote server (a plain HTTP header name, "
                         f"not one the MCP transport sets)")
    if not value or any(ch in value for ch in "\r\n\0"):
        raise UsageError(f"the value of header {name} is empty or holds a line break")


def headers_of(ws: Workspace, server: ServerInstance) -> dict[str, str]:
    found = {}
    for header, secret_id in server.secret_refs.items():
        secret = ws.repos.secrets.get(secret_id)
        if secret is not None:
            found[header] = secret.value
    return found


def target_of(ws: Workspace, server: ServerInstance, auth: httpx2.Auth | None = None,
              headers: dict[str, str] | None = None) -> RemoteTarget:
    """Where and how to reach a remote server. ``auth`` (an OAuth flow to the upstream)
    sees every request after the static headers were put on it."""
    if server.url is None:
        raise UsageError(f"server {server.name} is not a remote server")
    if auth is None and server.connection:
        # Signed in to its MCP authorization ('tbx server login'): its requests carry that
        # connection's token, refreshed here, in place of anything an agent sent.
        from console.services.upstream_auth import UpstreamAuth

        auth = UpstreamAuth(ws, server.connection)
    found = headers_of(ws, server) if headers is None else headers
    return RemoteTarget(server.url, server.transport, HeaderAuth(found, auth) if found or auth else None,
                        timeout=ws.settings.runtime.start_timeout)


def connect_for(ws: Workspace, server: ServerInstance) -> Callable[..., AbstractAsyncContextManager[Session]]:
    """What the supervisor opens a remote server's session with."""
    return partial(remote_mcp_session, target_of(ws, server))


def remote_session(ws: Workspace, server: ServerInstance, label: str, redactor: Redactor,
                   capture: Capture | None = None) -> AbstractAsyncContextManager[Session]:
    """A session of the owner's own with the server (``tbx call``, the Try screen)."""
    return remote_mcp_session(target_of(ws, server), timeout=ws.settings.runtime.start_timeout, redactor=redactor,
                              label=f"server {label}", capture=capture, asks=server.may_ask)


async def _discover(target: RemoteTarget, label: str, redactor: Redactor, asks: list[str]) -> Discovery:
    async with remote_mcp_session(target, timeout=target.timeout, redactor=redactor, label=f"server {label}",
                                  asks=asks) as session:
        return await session.discover()


def add_remote_server(
    ws: Workspace,
    toolbox: str,
    url: str,
    *,
    name: str,
    headers: dict[str, str] | None = None,
    transport: Literal["streamable-http", "sse"] = "streamable-http",
    connection: str | None = None,
    progress: Progress | None = None,
) -> ServerInstance:
    """Connect, discover, then record the server with its header secrets: a server that
    does not answer leaves the vault as it was. ``connection``: the MCP sign-in its
    requests carry (``signed_in_to``)."""
    progress = progress or (lambda _line: None)
    box = ws.repos.toolboxes.require(toolbox)
    name = check_name("server", name)
    if ws.repos.servers.by_name(box.id, name):
        raise AlreadyExists(f"toolbox {toolbox} already has a server named {name!r}; pass --name to pick another")
    url = check_url(url)
    headers = headers or {}
    for header, value in headers.items():
        check_header(header, value)
    stored = {header: Secret(name=f"{toolbox}/{name}/header/{header}", value=value)
              for header, value in headers.items()}
    server = ServerInstance(toolbox=box.id, name=name, kind="remote", url=url, transport=transport,
                            secret_refs={header: secret.id for header, secret in stored.items()},
                            connection=connection, desired_state=DesiredState.RUNNING)
    ref = ServerRef(box, server)
    progress(f"connecting to {RemoteTarget(url).origin} over MCP")
    try:
        found = asyncio.run(_discover(target_of(ws, server, headers=headers), ref.label,
                                      Redactor(list(headers.items())), list(server.may_ask)))
    except TbxError:
        if not headers and _sign_in_wanted(ws, connection) and asks_for_sign_in(url):
            raise SignInNeeded(url) from None
        raise
    with ws.change() as change:
        for secret in stored.values():
            change.repos.secrets.put(secret)
        change.repos.servers.put(server)
        change.record("server.add", f"server:{ref.label}", detail={
            "kind": "remote", "origin": RemoteTarget(url).origin, "transport": transport,
            "headers": sorted(headers), "connection": connection})
        outcome = record_discovery(change, server, found, box.name)
    progress(f"ready: {plural(outcome.new)} discovered, pending approval")
    return server


def _sign_in_wanted(ws: Workspace, connection: str | None) -> bool:
    """No sign-in is kept for the server, or the one kept was refused even refreshed
    (expired, revoked: ``UpstreamAuth`` marked it): only a new sign-in helps."""
    from console.model import ConnectionStatus

    found = ws.repos.connections.get(connection) if connection else None
    return found is None or found.status is ConnectionStatus.NEEDS_CONSENT


def signed_in_to(ws: Workspace, url: str) -> str | None:
    """The MCP sign-in (a connection, 'tbx server login URL') whose resource is ``url``."""
    from console.services.mcp_sign_in import MCP

    wanted = url.rstrip("/")
    return next((c.id for c in ws.repos.connections if c.provider == MCP and c.account.rstrip("/") == wanted), None)


def asks_for_sign_in(url: str) -> bool:
    """Whether the server answers a request without a token with a 401 (MCP authorization)."""
    from console.oauth.mcp_discovery import DiscoveryError, probe

    async def ask() -> bool:
        async with httpx2.AsyncClient(timeout=10, follow_redirects=False, trust_env=False) as client:
            try:
                await probe(client, url)
            except DiscoveryError:
                return False
            return True

    return asyncio.run(ask())


def rediscover(ws: Workspace, ref: ServerRef, action: str) -> DiscoveryOutcome:
    """Connect again and record what the server offers now (start, restart)."""
    server = ref.server
    found = asyncio.run(_discover(target_of(ws, server), ref.label, server_redactor(ws, server),
                                  list(server.may_ask)))
    with ws.change() as change:
        current = change.repos.servers.get(server.id) or server
        current.desired_state = DesiredState.RUNNING
        change.repos.servers.put(current)
        change.record(action, f"server:{ref.label}", detail={"kind": "remote"})
        return record_discovery(change, current, found, ref.toolbox.name)


async def _ping(ws: Workspace, server: ServerInstance, label: str, timeout: float) -> tuple[float | None, str | None]:
    try:
        async with remote_mcp_session(target_of(ws, server), timeout=timeout, redactor=server_redactor(ws, server),
                                      label=f"server {label}", asks=server.may_ask) as session:
            started = time.perf_counter()
            await asyncio.wait_for(session.ping(), timeout)
            return (time.perf_counter() - started) * 1000, None
    except (ServerUnavailable, TimeoutError, ConnectionError) as exc:
        return None, str(exc) or "no answer to an MCP ping"


def ping_all(ws: Workspace, toolbox: str, servers: list[ServerInstance],
             timeout: float) -> list[tuple[float | None, str | None]]:
    """Each running remote server's MCP ping round trip in ms, or why there is none."""
    async def probe(server: ServerInstance) -> tuple[float | None, str | None]:
        if server.desired_state is not DesiredState.RUNNING:
            return None, None
        return await _ping(ws, server, f"{toolbox}/{server.name}", timeout)

    async def run() -> list[tuple[float | None, str | None]]:
        return list(await asyncio.gather(*(probe(s) for s in servers)))

    return asyncio.run(run())
