"""Signing a remote server in to its MCP authorization from wherever the person is.

The CLI and the console both go through here: ``sign_in_with`` runs ``mcp_sign_in.sign_in``
with the console's own way of talking to the user (a ``connections.SignIn``: the address
shown, a device code shown, a Cancel that is asked while waiting); ``bind`` makes a server's
requests carry the connection, ``sign_in_again`` also connects it again; ``add_after_sign_in``
adds a server with a sign-in made for it and, when the add fails, takes the new sign-in
back so nothing is left half-added.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from console.model import Connection, ServerInstance
    from console.services.connections import SignIn
    from console.services.servers import ServerRef
    from console.services.tools import DiscoveryOutcome
    from console.workspace import Workspace


def sign_in_with(ws: Workspace, url: str, how: SignIn) -> tuple[Connection, bool]:
    """Sign in to the server at ``url``; (its connection, whether it is a new one)."""
    from console.services.mcp_sign_in import sign_in

    before = {c.id for c in ws.repos.connections}
    connection = asyncio.run(sign_in(ws, url, device=how.device, open_browser=how.opener, show_code=how.show_code,
                                     on_url=how.on_url, cancelled=how.cancelled or (lambda: False),
                                     sleep=how.sleep))
    return connection, connection.id not in before


def bind(ws: Workspace, ref: ServerRef, connection: Connection) -> None:
    """The server's requests carry this connection's token from now on."""
    server = ws.repos.servers.get(ref.server.id)
    if server is None or server.connection == connection.id:
        return
    with ws.change() as change:
        server.connection = connection.id
        change.repos.servers.put(server)
        change.record("server.connection", f"server:{ref.label}", detail={"connection": connection.id})


def sign_in_again(ws: Workspace, target: str, connection: Connection) -> DiscoveryOutcome | None:
    """After a new sign-in for server ``target`` (TOOLBOX/SERVER): bound to it, and connected
    again with the new token where it is meant to run (its tools discovered again)."""
    from console.model import DesiredState
    from console.services import servers

    ref = servers.resolve(ws, target)
    bind(ws, ref, connection)
    current = ws.repos.servers.get(ref.server.id)
    if current is None or current.desired_state is not DesiredState.RUNNING:
        return None
    return servers.restart_server(ws, target)


def add_after_sign_in(ws: Workspace, add: Callable[[str], ServerInstance], connection: Connection,
                      is_new: bool) -> ServerInstance:
    """``add`` the server bound to ``connection``. A sign-in made for this add alone goes
    (revoked) when the add fails: the user is back where they started, with one error."""
    from console.services.connections import bound_servers, remove

    try:
        return add(connection.id)
    except Exception:
        if is_new and not bound_servers(ws, connection.id):
            remove(ws, connection.id)
        raise
