"""Which servers a supervisor should watch, shared by the gateway and the console."""

from __future__ import annotations

from functools import partial

from console.model import DesiredState, ServerInstance, Toolbox
from console.runtime.enginehttp import Endpoint
from console.runtime.supervisor import Supervisor, WatchedServer
from console.services.redaction import server_redactor
from console.services.remote_servers import connect_for
from console.services.token_injection import handover_step
from console.workspace import Workspace


def watched_server(ws: Workspace, toolbox: Toolbox, server: ServerInstance) -> WatchedServer:
    """A server as the supervisor sees it, with a redactor for its own secrets and the
    handover of them to a launcher that waits (a container the engine restarted)."""
    endpoint = Endpoint.parse(toolbox.engine_endpoint)
    if server.kind == "remote":
        return WatchedServer(server.id, f"{toolbox.name}/{server.name}",
                             server.desired_state is DesiredState.RUNNING, server_redactor(ws, server),
                             tuple(server.may_ask), connect=connect_for(ws, server),
                             reach=(server.url, tuple(sorted(server.secret_refs.items())), server.connection))
    return WatchedServer(server.id, f"{toolbox.name}/{server.name}",
                         server.desired_state is DesiredState.RUNNING, server_redactor(ws, server),
                         tuple(server.may_ask), partial(handover_step, ws, server, endpoint))


def watched_servers(ws: Workspace, toolbox_id: str) -> list[WatchedServer]:
    box = ws.repos.toolboxes.get(toolbox_id)
    if box is None:
        return []
    # A remote toolbox's gateway calls its remote servers from over there: the console
    # asks it how they are (console/tui/droplet_health.py) rather than call them from here.
    return [watched_server(ws, box, s) for s in ws.repos.servers.in_toolbox(toolbox_id)
            if not (box.is_remote and s.kind == "remote")]


def sync_supervisor(supervisor: Supervisor, ws: Workspace, toolbox_id: str) -> None:
    """Watch servers added since, forget removed ones, update wishes of the rest."""
    apply_watched(supervisor, watched_servers(ws, toolbox_id))


def apply_watched(supervisor: Supervisor, wanted: list[WatchedServer]) -> None:
    """``sync_supervisor`` with the wanted servers read beforehand (off the event loop)."""
    by_id = {w.server_id: w for w in wanted}
    for server_id in {h.server_id for h in supervisor.all_health()} - by_id.keys():
        supervisor.unwatch(server_id)
    for server in by_id.values():
        supervisor.watch(server)
