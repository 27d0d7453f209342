"""A remote toolbox's gateway calling a signed-in remote server (issue 21): its vault (a
mirror) holds no connection, only the access token the console handed it as the server's
``Authorization``. Each request reads the token the console pushed last; a refusal, or
no token at all, ends in one line that says how to sign in again.

The vault here is shaped as ``policy_tables`` shapes a mirror; the server is the SDK's
resource server behind the test provider (tests/support/mcp_protected.py)."""

from __future__ import annotations

import asyncio

import pytest

from console.model import DesiredState, Secret, ServerInstance, Toolbox, ToolboxKind
from console.runtime.remote_session import remote_mcp_session
from console.runtime.session import ServerUnavailable
from console.services.connection_tokens import TokenBroker, token_set
from console.services.remote_servers import target_of
from console.workspace import Workspace
from tests.oauth.test_mcp_upstream import device_sign_in
from tests.support.mcp_protected import ProtectedMcpServer
from tests.support.oauth_provider import LocalOAuthProvider

HANDED = "sec_handed-bearer"


def _hand(ws: Workspace, access: str | None) -> None:
    """What a push does to the mirror: the token the console holds now, or none."""
    with ws.change() as change:
        if access is None:
            change.repos.secrets.delete([HANDED])
        else:
            change.repos.secrets.put(Secret(id=HANDED, name=f"server/{HANDED}", value=f"Bearer {access}"))


def _as_a_mirror(ws: Workspace, url: str) -> ServerInstance:
    box = Toolbox(name="cloud", kind=ToolboxKind.LOCAL)
    server = ServerInstance(toolbox=box.id, name="far", kind="remote", url=url, connection="cn_kept_elsewhere",
                            secret_refs={"Authorization": HANDED}, desired_state=DesiredState.RUNNING)
    with ws.change() as change:
        change.repos.toolboxes.put(box)
        change.repos.servers.put(server)
    return server


async def test_each_request_carries_the_last_handed_token_and_a_refusal_says_how_to_sign_in(
        workspace: Workspace, provider: LocalOAuthProvider, server: ProtectedMcpServer) -> None:
    provider.mcp.cimd = False
    # The console's sign-in; the "mirror" server below is bound to a connection id this
    # vault does not hold, as a droplet's gateway's is.
    connection = await device_sign_in(workspace, provider, server)
    first = token_set(workspace, connection).access_token
    far = _as_a_mirror(workspace, server.url)
    _hand(workspace, first)
    server.authorizations.clear()
    async with remote_mcp_session(target_of(workspace, far), label="server cloud/far") as session:
        assert (await session.call_tool("echo", {"text": "a"})).content[0].text == "echo: a"  # type: ignore[union-attr]
        assert server.authorizations[-1] == f"Bearer {first}"
        await asyncio.to_thread(TokenBroker(workspace).refresh, connection.id)  # the console refreshes it
        second = token_set(workspace, workspace.repos.connections.get(connection.id)).access_token  # type: ignore[arg-type]
        assert second != first
        _hand(workspace, second)  # and pushes it: no new session needed
        assert (await session.call_tool("echo", {"text": "b"})).content[0].text == "echo: b"  # type: ignore[union-attr]
        assert server.authorizations[-1] == f"Bearer {second}"

        with provider.store.lock:  # the user revokes the grant at the provider
            provider.store.kill_family(provider.store.by_access(second, "mcp").family)  # type: ignore[union-attr]
        with pytest.raises(Exception):  # noqa: B017 - the SDK's own error; the channel says why
            await session.call_tool("echo", {"text": "c"})
        await session.channel.closed.wait()
        assert session.channel.close_reason == ("cloud/far refused the access token of its sign-in: "
                                                "sign in again with 'tbx server login cloud/far'")

    _hand(workspace, None)  # the console took the header off (the sign-in was refused)
    sent = len(server.authorizations)
    with pytest.raises(ServerUnavailable, match="cloud/far has no live sign-in: sign in again with "
                                                "'tbx server login cloud/far'"):
        async with remote_mcp_session(target_of(workspace, far), label="server cloud/far"):
            pass
    assert len(server.authorizations) == sent  # nothing was sent without a token
