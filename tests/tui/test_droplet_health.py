"""A remote toolbox's remote servers are not called from the console's machine: their
health is what the toolbox's gateway says (tests/remote/test_remote_signed_in_server.py
asks a simulated droplet's), and without a link to ask over it is unknown, saying why."""

from __future__ import annotations

from console.model import DesiredState, ServerInstance, Toolbox, ToolboxKind
from console.services.supervision import watched_servers
from console.tui.droplet_health import seen_from_toolboxes
from console.workspace import Workspace


def _boxes(ws: Workspace) -> tuple[Toolbox, Toolbox]:
    cloud, here = Toolbox(name="cloud", kind=ToolboxKind.DROPLET), Toolbox(name="here", kind=ToolboxKind.LOCAL)
    with ws.change() as change:
        for box in (cloud, here):
            change.repos.toolboxes.put(box)
            for name, state in (("far", DesiredState.RUNNING), ("idle", DesiredState.STOPPED)):
                change.repos.servers.put(ServerInstance(toolbox=box.id, name=name, kind="remote",
                                                        url="https://mcp.example.com/mcp", desired_state=state))
    return cloud, here


def test_without_a_link_a_droplets_remote_server_is_unknown_and_says_why(workspace: Workspace) -> None:
    cloud, here = _boxes(workspace)
    known: dict = {}
    shown = seen_from_toolboxes(workspace, lambda _id: None, known)
    assert [(h.label, h.health, h.ping_ms, h.last_error) for h in shown] == [
        ("cloud/far", "unknown", None, "unknown: toolbox cloud is not connected")]
    assert seen_from_toolboxes(workspace, lambda _id: None, known) == []  # nothing new to publish
    # The console's own supervisor watches the local toolbox's, never the droplet's.
    assert watched_servers(workspace, cloud.id) == []
    assert sorted(w.label for w in watched_servers(workspace, here.id)) == ["here/far", "here/idle"]
