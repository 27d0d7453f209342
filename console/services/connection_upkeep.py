"""Keeping the tokens of running servers fresh.

A server is handed its connection's token at every start (over the attach stream), so a
refreshed token reaches it without a new container: a server that reads its token from
a file gets the file replaced in its tmpfs while it runs (it re-reads it); any other
has its process restarted, which hands it the new token. Its id, items and grants stay.
Whoever is running (the gateway, the console) calls ``keep_fresh`` now and then; the
token broker makes sure only one of them refreshes.
"""

from __future__ import annotations

from collections.abc import Callable

from console.errors import TbxError
from console.model import DesiredState, ServerInstance
from console.services import servers
from console.services.connection_tokens import TokenBroker, token_set
from console.services.connections import bound_servers, resolve
from console.services.token_injection import server_secrets
from console.workspace import Workspace

Progress = Callable[[str], None]


def renew_bound(ws: Workspace, connection_id: str, progress: Progress | None = None) -> list[str]:
    """Hand the connection's current token to every running server bound to it."""
    done = []
    for server in bound_servers(ws, connection_id):
        if server.desired_state is not DesiredState.RUNNING:
            continue
        box = ws.repos.toolboxes.get(server.toolbox)
        if box is None:
            continue
        label = f"{box.name}/{server.name}"
        # A remote server is handed nothing: its requests read the token as they go
        # (``UpstreamAuth``), and on a droplet the push that follows carries it there.
        if server.kind != "remote" and not _replace_token_file(ws, label, server, progress):
            if progress:
                progress(f"restarting {label} with the new token")
            servers.restart_server(ws, label)
        connection = ws.repos.connections.get(connection_id)
        if connection is not None:
            with ws.change() as change:
                servers.record_use(change, servers.resolve(ws, label), connection)
        done.append(label)
    return done


def _replace_token_file(ws: Workspace, label: str, server: ServerInstance, progress: Progress | None) -> bool:
    """Write the new token over the running server's token file; False when the server
    takes its token from its environment (or its container does not run)."""
    secrets = server_secrets(ws, server)
    if not secrets.files:
        return False
    ref = servers.resolve(ws, label)
    engine = servers.engine_for(ws, ref.toolbox)
    try:
        state = engine.find(server.id)
        if state is None or not state.running:
            return False
        if progress:
            progress(f"writing the new token into {label}'s token file")
        for path, text in secrets.files.items():
            engine.replace_file(state.id, path, text)
        return True
    finally:
        engine.close()


def refresh_and_renew(ws: Workspace, ref: str, progress: Progress | None = None) -> list[str]:
    """``tbx connection refresh``: a new token now, handed to the servers that use it."""
    connection = resolve(ws, ref)
    TokenBroker(ws).refresh(connection.id)
    ws.refresh()
    return renew_bound(ws, connection.id, progress)


def keep_fresh(ws: Workspace, toolbox_ids: set[str] | None = None, progress: Progress | None = None) -> list[str]:
    """Refresh tokens that expire within the configured lead time and are used by running
    servers (of ``toolbox_ids``, or anywhere); returns the servers handed a new token."""
    ahead = ws.settings.oauth.refresh_ahead_seconds
    broker = TokenBroker(ws, ahead=ahead)
    renewed: list[str] = []
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
                renewed += renew_bound(ws, connection.id, progress)
        except TbxError as exc:  # marked on the connection and audited; the others go on
            if progress:
                progress(f"{connection.provider}/{connection.account}: {exc}")
    return renewed
