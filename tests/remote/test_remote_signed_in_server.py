"""A remote MCP server behind MCP authorization in a droplet's toolbox (issue 21): the
console keeps the sign-in (its refresh token and the app never leave this machine) and
hands the droplet's gateway the access token alone, as the server's ``Authorization``
header in the mirror; it refreshes the token and pushes it again before it expires, and
a sign-in the provider refused makes the droplet's calls say how to sign in again.

The server is the mcp SDK's resource server (tests/support/mcp_protected.py) behind the
test provider's MCP authorization server, both on 127.0.0.1, which the simulated
droplet's gateway reaches as a real droplet reaches the vendor's host."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import docker
import pytest

from console.gateway.remote_server_health import seen_by_gateway
from console.model import ConnectionStatus, Toolbox
from console.remote.deploy import LABEL_GATEWAY_OF, mirror_for, tls_context
from console.remote.links import open_tunnel
from console.remote.policy import policy_tables
from console.remote.push import access_of
from console.remote.push_state import PushState, mirror_root
from console.services import agents, grants
from console.services import remote_toolboxes as remote
from console.services import servers as server_svc
from console.services.connection_tokens import token_set
from console.services.grants import Target
from console.services.mcp_sign_in import sign_in
from console.services.remote_servers import add_remote_server
from console.services.server_status import ServerStatus, statuses
from console.services.supervision import watched_servers
from console.services.tools import approve
from console.tui.droplet_health import seen_from_toolboxes
from console.workspace import Workspace
from tests.remote.conftest import Cloud
from tests.support.gateway import agent
from tests.support.mcp_protected import ProtectedMcpServer
from tests.support.oauth_provider import LocalOAuthProvider
from tests.support.oauth_provider.routes_mcp import McpSettings

pytestmark = [pytest.mark.filterwarnings("ignore::mcp.MCPDeprecationWarning")]

REFRESH_CANARY = "refresh-canary-5d1f0c"
ACCESS = "access-token-of-the-sign-in"


def _tables(status: str = "ok") -> dict[str, Any]:
    token_set_value = json.dumps({"access_token": ACCESS, "refresh_token": REFRESH_CANARY, "expires_at": 1e10})
    return {
        "toolboxes": {"tb_1": {"id": "tb_1", "name": "cloud", "kind": "droplet"}},
        "servers": {"srv_1": {"id": "srv_1", "toolbox": "tb_1", "name": "far", "kind": "remote",
                              "url": "https://mcp.example.com/mcp", "transport": "streamable-http",
                              "secret_refs": {}, "connection": "cn_1"}},
        "connections": {"cn_1": {"id": "cn_1", "provider": "mcp", "account": "https://mcp.example.com/mcp",
                                 "token_secret": "sec_t", "app": "app_1", "status": status}},
        "oauth_apps": {"app_1": {"id": "app_1", "client_secret": "client-secret-canary"}},
        "secrets": {"sec_t": {"id": "sec_t", "name": "oauth/cn_1", "value": token_set_value}},
    }


def test_the_mirror_hands_a_signed_in_remote_server_its_access_token_alone() -> None:
    mirrored = policy_tables(_tables(), "tb_1")
    server = mirrored["servers"]["srv_1"]
    handed = server["secret_refs"]["Authorization"]
    assert mirrored["secrets"][handed]["value"] == f"Bearer {ACCESS}"
    assert server["connection"] == "cn_1"  # its gateway knows a refusal means "sign in again"
    text = json.dumps(mirrored)
    assert REFRESH_CANARY not in text and "client-secret-canary" not in text
    assert "connections" not in mirrored and "oauth_apps" not in mirrored


def test_a_refused_sign_in_or_a_removed_connection_takes_the_header_away() -> None:
    signed_in = policy_tables(_tables(), "tb_1")
    for gone in (policy_tables(_tables(ConnectionStatus.NEEDS_CONSENT.value), "tb_1"),
                 policy_tables({**_tables(), "connections": {}, "secrets": {}}, "tb_1")):
        assert gone["servers"]["srv_1"]["secret_refs"] == {}
        assert ACCESS not in json.dumps(gone)
        # The push that lands it takes access away: it is retried until it lands, as a revoke.
        assert set(access_of(signed_in)) - set(access_of(gone))
    refreshed = _tables()
    refreshed["secrets"]["sec_t"]["value"] = json.dumps({"access_token": "a-fresh-one", "refresh_token": "r2"})
    assert not set(access_of(signed_in)) - set(access_of(policy_tables(refreshed, "tb_1")))


async def _echo(gateway: str, token: str, verify: Any, expect: str = "echo: from the droplet") -> str:
    """The agent's call through the droplet's gateway, once its answer (a result or an
    error) says ``expect``: the gateway may still be taking the push in, or reconnecting."""
    deadline = time.monotonic() + 40
    said = ""
    while time.monotonic() < deadline:
        try:
            async with agent(gateway, token, verify=verify) as client:
                result = await client.call_tool("far__echo", {"text": "from the droplet"})
            said = " ".join(getattr(c, "text", "") for c in result.content)
        except Exception as exc:  # noqa: BLE001 - a JSON-RPC error, or the gateway reconnecting
            said = _words(exc)
        if expect in said:
            return said
        await asyncio.sleep(0.5)
    raise AssertionError(f"the droplet's gateway never said {expect!r}: {said[:300]}")


def _words(exc: BaseException) -> str:
    """What an error says, through the SDK client's task groups."""
    if isinstance(exc, BaseExceptionGroup):
        return " | ".join(_words(inner) for inner in exc.exceptions)
    return str(exc)


def _droplet_files(toolbox_id: str) -> bytes:
    root = Path("/var/lib/tbx") / toolbox_id
    return b"".join(p.read_bytes() for p in root.rglob("*") if p.is_file() and not p.is_socket())


def _droplet_vault(ws: Workspace, box: Toolbox) -> str:
    """What the droplet's gateway holds: the mirror the last push shipped, once it landed.
    (Opening the droplet's copy here would count its gateway's checkpoints as this
    machine's, and the console's own mirror would then look rolled back.)"""
    state = PushState.read(mirror_root(ws, box))
    assert not state.pending, state.error
    return json.dumps(mirror_for(ws, box).open().tables())


def _status(ws: Workspace, wanted: Callable[[ServerStatus], bool]) -> ServerStatus:
    """``far`` as 'tbx server list' shows it, once it is as wanted (the droplet's gateway
    pings every few seconds)."""
    deadline = time.monotonic() + 40
    while True:
        far = {s.name: s for s in statuses(ws, "cloud", ask=seen_by_gateway)}["far"]
        if wanted(far):
            return far
        assert time.monotonic() < deadline, f"the droplet's gateway never saw far as wanted: {far}"
        time.sleep(1)


def _expire_soon(ws: Workspace, connection_id: str) -> None:
    """The console's copy of the token is about to expire (as it would an hour later)."""
    from console.oauth.tokens import TokenSet

    connection = ws.repos.connections.get(connection_id)
    with ws.change() as change:
        stored = change.repos.secrets.get(connection.token_secret)
        tokens = TokenSet.model_validate_json(stored.value)
        stored.value = tokens.model_copy(update={"expires_at": time.time() + 20,
                                                 "issued_at": time.time() - 3600}).to_secret_value()
        change.repos.secrets.put(stored)


@pytest.mark.docker
def test_a_droplet_calls_a_signed_in_remote_server_and_the_console_keeps_its_token(
        cloud_ws: Workspace, cloud: Cloud) -> None:
    ws = cloud_ws
    with LocalOAuthProvider() as provider:
        provider.mcp = McpSettings()
        provider.mcp.cimd = False
        with ProtectedMcpServer(provider) as server:
            connection = asyncio.run(sign_in(ws, server.url, device=True, open_browser=lambda _u: False,
                                             show_code=lambda grant: provider.approve_device(grant.user_code)))
            first = token_set(ws, connection)
            assert first.refresh_token
            added = remote.add_droplet(ws, "cloud", region="fra1", size="s-1vcpu-1gb")
            box = added.toolbox
            add_remote_server(ws, "cloud", server.url, name="far", connection=connection.id)
            approve(ws, "cloud", "far")
            _agent, token = agents.add_agent(ws, "far-agent")
            grants.grant(ws, "far-agent", Target.parse("cloud"))
            grants.grant(ws, "far-agent", Target.parse("cloud/far"))
            assert remote.sync(ws, box).pushed
            verify = tls_context(box.gateway_cert)

            server.authorizations.clear()
            assert asyncio.run(_echo(added.gateway_url, token, verify)) == "echo: from the droplet"
            seen = [a for a in server.authorizations if a]
            assert seen and set(seen) == {f"Bearer {first.access_token}"}
            assert not any(token in a for a in seen), "the agent's token reached the upstream"
            # The droplet holds the access token, never the refresh token nor the app's registration.
            there = _droplet_vault(ws, box)
            assert first.access_token in there
            assert first.refresh_token not in there and first.refresh_token.encode() not in _droplet_files(box.id)
            app = ws.repos.oauth_apps.get(connection.app or "")
            assert app is not None and app.client_id not in there

            # Its status is the droplet gateway's, which calls it; nothing pings it from here.
            far = _status(ws, lambda s: s.health == "healthy" and s.ping_ms is not None)
            assert far.kind == "remote" and far.error is None
            asked = len(server.authorizations)
            unasked = {s.name: s for s in statuses(ws, "cloud")}["far"]
            assert (unasked.health, unasked.ping_ms) == ("unknown", None)
            assert unasked.error is not None and unasked.error.startswith("unknown: ")
            assert len(server.authorizations) == asked
            with open_tunnel(ws, box) as link:  # the console's link, as the Servers screen asks over it
                known: dict[str, Any] = {}
                shown = seen_from_toolboxes(ws, lambda _id: link, known)
            assert [(h.label, h.health) for h in shown] == [("cloud/far", "healthy")] and known
            assert watched_servers(ws, box.id) == []  # the console's supervisor does not call it from here

            # The provider lets the token expire; the console refreshes it and pushes it before.
            provider.expire_access_tokens()
            _expire_soon(ws, connection.id)
            synced = remote.sync(ws, ws.repos.toolboxes.require("cloud"))
            fresh = token_set(ws, ws.repos.connections.get(connection.id))
            assert fresh.access_token != first.access_token and synced.pushed and synced.renewed == ("cloud/far",)
            assert asyncio.run(_echo(added.gateway_url, token, verify)) == "echo: from the droplet"
            assert server.authorizations[-1] == f"Bearer {fresh.access_token}"
            assert fresh.refresh_token not in _droplet_vault(ws, box)

            # The user revokes the grant at the provider: the droplet's calls say how to sign in again.
            with provider.store.lock:
                provider.store.kill_family(provider.store.by_access(fresh.access_token, "mcp").family)  # type: ignore[union-attr]
            said = asyncio.run(_echo(added.gateway_url, token, verify, "tbx server login cloud/far"))
            assert "refused the access token of its sign-in" in said and "\n" not in said.strip(), said
            assert fresh.access_token not in said
            # The console's refresh is refused: the connection needs a sign-in and the header goes.
            _expire_soon(ws, connection.id)
            remote.sync(ws, ws.repos.toolboxes.require("cloud"))
            assert ws.repos.connections.get(connection.id).status is ConnectionStatus.NEEDS_CONSENT
            assert "Authorization" not in _droplet_vault(ws, box)
            said = asyncio.run(_echo(added.gateway_url, token, verify, "has no live sign-in"))
            assert "sign in again with 'tbx server login cloud/far'" in said, said
            far = _status(ws, lambda s: s.health != "healthy" and "tbx server login cloud/far" in (s.error or ""))
            assert "\n" not in (far.error or "")
            for container in docker.from_env().containers.list(filters={"label": f"{LABEL_GATEWAY_OF}={box.id}"}):
                container.stop(timeout=2)  # a gateway that cannot be asked: unknown, and why
            far = {s.name: s for s in statuses(ws, "cloud", ask=seen_by_gateway)}["far"]
            assert far.health == "unknown" and "does not answer on its owner's socket" in (far.error or "")

            # Removed: the header is off the droplet, a change that took access away.
            server_svc.remove_server(ws, "cloud/far")
            assert remote.sync(ws, ws.repos.toolboxes.require("cloud")).pushed
            state = PushState.read(mirror_root(ws, box))
            assert not state.pending
            there = _droplet_vault(ws, box)
            assert "Authorization" not in there and fresh.access_token not in there
            remote.remove_remote(ws, "cloud")
