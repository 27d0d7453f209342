"""Keeping the tokens of running servers fresh.

A server gets its connection's token only when its container is created, so a refreshed
token means a new container. Whoever is running (the gateway, the console) calls
``keep_fresh`` now and then; the token broker makes sure only one of them refreshes.
"""

from __future__ import annotations

from collections.abc import Callable

from console.errors import TbxError
from console.model import DesiredState
from console.services import servers
from console.services.connection_tokens import TokenBroker, token_set
from console.services.connections import bound_servers, resolve
from console.workspace import Workspace

Progress = Callable[[str], None]


def recreate_bound(ws: Workspace, connection_id: str, progress: Progress | None = None) -> list[str]:
    """Give every running server bound to the connection a container with the new token."""
    done = []
    for server in bound_servers(ws, connection_id):
        if server.desired_state is not DesiredState.RUNNING:
            continue
        box = ws.repos.toolboxes.get(server.toolbox)
        if box is None:
            continue
        label = f"{box.name}/{server.name}"
        if progress:
            progress(f"re-creating {label} with the new token")
        servers.recreate_server(ws, label, progress)
        done.append(label)
    return done


def refresh_and_recreate(ws: Workspace, ref: str, progress: Progress | None = None) -> list[str]:
    """``tbx connection refresh``: a new token now, and the servers that use it."""
    connection = resolve(ws, ref)
    TokenBroker(ws).refresh(connection.id)
    ws.refresh()
    return recreate_bound(ws, connection.id, progress)


def keep_fresh(ws: Workspace, toolbox_ids: set[str] | None = None, progress: Progress | None = None) -> list[str]:
    """Refresh tokens that expire within the configured lead time and are used by running
    servers (of ``toolbox_ids``, or anywhere); returns the servers re-created."""
    ahead = ws.settings.oauth.refresh_ahead_seconds
    broker = TokenBroker(ws, ahead=ahead)
    recreated: list[str] = []
    for connection in list(ws.repos.connections):
        users = [s for s in bound_servers(ws, connection.id)
                 if s.desired_state is DesiredState.RUNNING and (toolbox_ids is None or s.toolbox in toolbox_ids)]
        if not users:
            continue
        before = token_set(ws, connection)
        if not before.expires_within(before.refresh_margin(ahead)):
            continue
        try:
            after = broker.tokens(connection.id)
            if after.access_token != before.access_token:
                recreated += recreate_bound(ws, connection.id, progress)
        except TbxError as exc:  # marked on the connection and audited; the others go on
            if progress:
                progress(f"{connection.provider}/{connection.account}: {exc}")
    return recreated
