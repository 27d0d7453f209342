"""Servers and Tools at 120x36 with the seeded vault and nothing live (pytest-textual-snapshot).

Regenerate after an intended change with:
    pytest tests/tui/test_snapshots_servers.py --snapshot-update
"""

from __future__ import annotations

from console.model import DesiredState, Mount, Secret, ServerInstance
from console.tui.backend import Backend
from tests.support.tui import WHEN, seed_items, still_app

SIZE = (120, 36)
NEXT_TAB = "right_square_bracket"


def test_servers_with_the_tools_tab(snap_compare, seeded: Backend) -> None:  # noqa: ANN001
    assert snap_compare(still_app(seeded), terminal_size=SIZE, press=["2", NEXT_TAB, NEXT_TAB])


def with_a_configured_server(backend: Backend) -> Backend:
    """The seeded vault plus a server with env, a secret and a mount, to show them."""
    with backend.workspace.change() as change:
        box = change.repos.toolboxes.by_name("local")
        secret = change.repos.secrets.put(Secret(name="local/keeper/MEMORY_API_KEY", value="not-on-screen",
                                                 created=WHEN))
        change.repos.servers.put(ServerInstance(
            toolbox=box.id, name="keeper", catalog_id="memory", image="tbx/memory:0123456789abcdef",
            spec={"command": ["mcp-server-memory"]}, env={"MEMORY_FILE_PATH": "/data/memory.jsonl"},
            secret_refs={"MEMORY_API_KEY": secret.id}, mounts=[Mount(source="/home/ada/notes", target="/data")],
            desired_state=DesiredState.RUNNING, created=WHEN))
    return backend


def test_servers_with_the_config_tab(snap_compare, seeded: Backend) -> None:  # noqa: ANN001
    app = still_app(with_a_configured_server(seeded))
    assert snap_compare(app, terminal_size=SIZE, press=["2", "down", "down", NEXT_TAB, NEXT_TAB, NEXT_TAB])


def test_the_add_picker(snap_compare, seeded: Backend) -> None:  # noqa: ANN001
    assert snap_compare(still_app(seeded), terminal_size=SIZE, press=["2", "a", *"memory"])


def test_tools_with_findings(snap_compare, seeded: Backend) -> None:  # noqa: ANN001
    assert snap_compare(still_app(seeded), terminal_size=SIZE, press=["3", "down", "down"])


def test_tools_with_the_diff_of_a_changed_tool(snap_compare, seeded: Backend) -> None:  # noqa: ANN001
    assert snap_compare(still_app(seeded), terminal_size=SIZE, press=["3", "down", "down", "down", "down"])


def test_the_approve_modal(snap_compare, seeded: Backend) -> None:  # noqa: ANN001
    assert snap_compare(still_app(seeded), terminal_size=SIZE, press=["3", "down", "down", "a"])


def test_tools_with_every_kind_of_item(snap_compare, seeded: Backend) -> None:  # noqa: ANN001
    seed_items(seeded.workspace)
    assert snap_compare(still_app(seeded), terminal_size=SIZE, press=["3", "down", "down", "down", "down"])
