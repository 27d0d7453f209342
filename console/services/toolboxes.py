"""Toolboxes: the Docker hosts that run servers."""

from __future__ import annotations

from console.errors import AlreadyExists
from console.model import Toolbox, ToolboxKind, check_name
from console.workspace import Workspace


def add_local(ws: Workspace, name: str, engine_endpoint: str | None = None) -> Toolbox:
    check_name("toolbox", name)
    with ws.change() as change:
        repos = change.repos
        if repos.toolboxes.by_name(name):
            raise AlreadyExists(f"a toolbox named {name!r} exists; pick another name")
        toolbox = repos.toolboxes.put(
            Toolbox(name=name, kind=ToolboxKind.LOCAL, engine_endpoint=engine_endpoint)
        )
        change.record("toolbox.add", f"toolbox:{name}", detail={"kind": "local"})
    return toolbox


def remove_toolbox(ws: Workspace, name: str) -> dict[str, int]:
    """Forget a toolbox with its servers, tools and every grant into it."""
    with ws.change() as change:
        repos = change.repos
        toolbox = repos.toolboxes.require(name)
        servers = {k for k, doc in repos.servers.raw().items() if doc["toolbox"] == toolbox.id}
        counts = {
            "servers": repos.servers.delete(servers),
            "tools": repos.tools.delete([k for k, d in repos.tools.raw().items() if d["server"] in servers]),
            "tool_grants": repos.tool_grants.delete(
                [k for k, d in repos.tool_grants.raw().items() if d["server"] in servers]
            ),
            "toolbox_grants": repos.toolbox_grants.delete(
                [k for k, d in repos.toolbox_grants.raw().items() if d["toolbox"] == toolbox.id]
            ),
        }
        repos.toolboxes.delete([toolbox.id])
        change.record("toolbox.remove", f"toolbox:{name}", detail=counts)
    return counts
