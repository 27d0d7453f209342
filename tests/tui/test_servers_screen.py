"""2 Servers, driven as a user would: on the seeded vault (nothing live), and on the real
engine with a real catalog server (add, healthy, stop, start, logs, remove)."""

from __future__ import annotations

import asyncio
import io
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import docker
import pytest
from rich.console import Console
from textual.pilot import Pilot
from textual.widgets import Input, OptionList

from console.config import load_settings
from console.model import DesiredState, Secret, ServerInstance
from console.paths import resolve_paths
from console.runtime.streams import Stats
from console.runtime.supervisor import Health
from console.tui.app import ConsoleApp
from console.tui.backend import Backend
from console.tui.commands import ConsoleCommands
from console.tui.modals.add_server import AddServerModal
from console.tui.modals.confirm import ConfirmModal
from console.tui.screens.servers import ServersScreen
from console.tui.widgets.server_detail import ServerDetail
from console.tui.widgets.server_log import ServerLog, TailLog
from console.tui.widgets.server_table import ServerTable, ToolCounts, server_row
from tests.support.tui import WHEN, still_app

SIZE = (120, 36)
CANARY = "canary-7f3a9c1e-DO-NOT-LEAK-5b2d"


def screen_text(app: ConsoleApp) -> str:
    """What the terminal shows now, as plain text."""
    console = Console(width=app.size.width, height=app.size.height, file=io.StringIO(), record=True,
                      force_terminal=True, color_system="truecolor", legacy_windows=False, safe_box=False)
    console.print(app.screen._compositor.render_update(full=True, screen_stack=app._background_screens))
    return console.export_text()


def cells(table: ServerTable, key: str) -> list[str]:
    return [getattr(value, "plain", str(value)) for value in table.get_row(key)]


async def until(pilot: Pilot, check: Callable[[], object], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {timeout:g}s for {what}")
        await pilot.pause(0.1)


async def open_servers(pilot: Pilot) -> ServersScreen:
    await pilot.press("2")
    await pilot.pause()
    screen = pilot.app.screen
    assert isinstance(screen, ServersScreen)
    return screen


def select(screen: ServersScreen, name: str) -> str:
    server_id = next(s.id for s in screen.servers.values() if s.name == name)
    table = screen.query_one(ServerTable)
    table.move_cursor(row=table.get_row_index(server_id))
    return server_id


# -- the seeded vault, nothing live ------------------------------------------------------------


async def test_without_live_data_the_table_shows_the_vault_and_dashes(seeded: Backend) -> None:
    app = still_app(seeded)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_servers(pilot)
        table = screen.query_one(ServerTable)
        by_name = {cells(table, key)[0]: cells(table, key) for key in screen.servers}
        assert by_name["files"] == ["files", "running", "-", "-", "-", "-", "-", "2/4"]
        assert by_name["git"][1:3] == ["stopped", "-"] and by_name["git"][7] == "1/2"
        assert [table.get_row_at(i)[0] for i in range(table.row_count)] == ["files", "git", "notes", "time"]
        assert screen.feed.following == {}  # no stats stream, no log tail: nothing touched Docker
        assert not [w for w in app.workers if w.group == "server-log" and w.is_running]
        assert "the log is read live from the server's container" in screen_text(app)
        await pilot.press("slash", *"stopped")
        await pilot.pause()
        assert [table.get_row_at(i)[0] for i in range(table.row_count)] == ["git"]
        await pilot.press("escape")
        await pilot.pause()
        assert table.row_count == 4


async def test_config_names_secrets_and_never_shows_their_values(seeded: Backend) -> None:
    ws = seeded.workspace
    with ws.change() as change:
        box = change.repos.toolboxes.by_name("local")
        secret = change.repos.secrets.put(Secret(name="local/keeper/API_TOKEN", value=CANARY, created=WHEN))
        change.repos.servers.put(ServerInstance(
            toolbox=box.id, name="keeper", catalog_id="memory", image="tbx/memory:0123456789abcdef",
            env={"MEMORY_FILE_PATH": "/data/memory.jsonl"}, secret_refs={"API_TOKEN": secret.id},
            spec={"command": ["mcp-server-memory"]}, desired_state=DesiredState.RUNNING, created=WHEN))
    app = still_app(seeded)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_servers(pilot)
        select(screen, "keeper")
        await pilot.press("right_square_bracket", "right_square_bracket", "right_square_bracket")
        await pilot.pause()
        assert screen.query_one(ServerDetail).active == "config"
        shown = screen_text(app)
        assert "MEMORY_FILE_PATH=/data/memory.jsonl" in shown and "mcp-server-memory" in shown
        assert "API_TOKEN" in shown and CANARY not in shown
        await pilot.press("left_square_bracket")
        await pilot.pause()
        assert screen.query_one(ServerDetail).active == "tools"


async def test_the_add_picker_searches_and_validates_before_anything_starts(seeded: Backend) -> None:
    app = still_app(seeded)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_servers(pilot)
        await pilot.press("a")
        await pilot.pause()
        modal = app.screen
        assert isinstance(modal, AddServerModal)
        await pilot.press(*"repository")
        await pilot.pause()
        options = modal.query_one("#entries", OptionList)
        assert [options.get_option_at_index(i).id for i in range(options.option_count)] == ["git"]
        await pilot.press("enter")
        await pilot.pause()
        assert modal.current is not None and modal.current.id == "git"
        assert "GitPython" in screen_text(app)  # the entry's description
        await pilot.press("ctrl+s")
        await pilot.pause()
        problem = str(modal.query_one("#problem").render())
        assert "/repo needs a folder" in problem
        assert modal.focused is modal.query_one("#mount-0", Input)
        await pilot.press(*"/no/such/folder", "enter")
        await pilot.pause()
        assert "/no/such/folder is not a folder on this machine" in str(modal.query_one("#problem").render())
        modal.query_one("#mount-0", Input).value = str(seeded.paths.data_dir)
        modal.query_one("#name", Input).value = "time"
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert "already has a server named 'time'" in str(modal.query_one("#problem").render())
        modal.query_one("#name", Input).value = "repo"
        modal.query_one("#limit-memory", Input).value = "8"
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert "memory MiB: input should be greater than or equal to 16" in str(modal.query_one("#problem").render())

        # Secrets are typed masked and never drawn.
        modal.query_one("#search", Input).value = "github"
        await pilot.pause()
        assert modal.current is not None and modal.current.id == "github"
        secret = modal.query_one("#secret-GITHUB_PERSONAL_ACCESS_TOKEN", Input)
        assert secret.password
        secret.value = CANARY
        await pilot.pause()
        assert CANARY not in screen_text(app) and "Signs in with github" in screen_text(app)
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen is screen
    assert [s.name for s in seeded.workspace.repos.servers] == ["time", "files", "git", "notes"]


async def test_t_picks_another_toolbox(seeded: Backend) -> None:
    app = still_app(seeded)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_servers(pilot)
        await pilot.press("t")
        await pilot.pause()
        assert app.screen.__class__.__name__ == "PickToolboxModal"
        await pilot.press("up", "enter")  # lab sorts before local
        await pilot.pause()
        assert app.toolbox_name == "lab"
        assert screen.query_one(ServerTable).row_count == 0
        assert "toolbox lab has no servers yet: press a" in screen_text(app)


async def test_keys_and_palette_entries_have_ids(seeded: Backend) -> None:
    app = still_app(seeded)
    async with app.run_test(size=SIZE) as pilot:
        await open_servers(pilot)
        titles = [title for title, _help, _cb in ConsoleCommands(app.screen)._commands()]
        assert {"server: Add", "server: Restart", "server: Start/stop", "server: Remove", "server: Show logs"} <= set(
            titles)
        for binding in ServersScreen.BINDINGS:
            assert binding.id and binding.id.startswith("server.") and binding.tooltip  # type: ignore[union-attr]
        await app.run_on_screen("servers", "logs")
        await pilot.pause()
        assert isinstance(app.focused, TailLog)


async def test_the_log_pauses_when_scrolled_up_and_search_jumps_to_matches(seeded: Backend) -> None:
    app = still_app(seeded)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_servers(pilot)
        panel = screen.query_one(ServerLog)
        log = panel.log_widget
        panel._pending = [f"line {n}: {'ERROR disk full' if n in (40, 90) else 'ok'}" for n in range(1, 151)]
        panel._flush()
        await pilot.pause()
        assert log.is_vertical_scroll_end and panel.following
        await pilot.press("l")
        await pilot.press("pageup")
        await pilot.pause()
        assert not panel.following and "paused: End follows again" in screen_text(app)
        panel._pending = ["line 151: ok"]
        panel._flush()
        await pilot.pause()
        assert not log.is_vertical_scroll_end  # a paused tail stays where the user is
        await pilot.press("end")
        await pilot.pause()
        assert panel.following and log.is_vertical_scroll_end
        await pilot.press("slash", *"error")
        await pilot.pause()
        assert panel._matches == [39, 89]  # from the end of the log, the nearest match is the last
        assert "match 2/2" in screen_text(app) and not panel.following
        assert log.scroll_y <= 89 < log.scroll_y + log.size.height
        await pilot.press("enter")
        await pilot.pause()
        assert "match 1/2" in screen_text(app) and log.scroll_y <= 39 < log.scroll_y + log.size.height
        await pilot.press("escape")
        await pilot.pause()
        assert app.focused is log
        await pilot.press("n")
        await pilot.pause()
        assert "match 2/2" in screen_text(app) and log.scroll_y <= 89 < log.scroll_y + log.size.height


async def test_a_refresh_of_fifty_live_rows_rewrites_cells_in_place(seeded: Backend) -> None:
    """50 rows whose every live cell changes: each refresh rewrites those cells by row key,
    the rows keep their order and the cursor stays on its server (timings: bench/tui.py)."""
    ws = seeded.workspace
    with ws.change() as change:
        box = change.repos.toolboxes.by_name("local")
        for n in range(46):
            change.repos.servers.put(ServerInstance(toolbox=box.id, name=f"server-{n:02d}", created=WHEN,
                                                    desired_state=DesiredState.RUNNING))
    app = still_app(seeded)
    async with app.run_test(size=(120, 60)) as pilot:
        screen = await open_servers(pilot)
        table = screen.query_one(ServerTable)
        servers = sorted(screen.servers.values(), key=lambda s: s.name)
        assert len(servers) == 50
        table.move_cursor(row=7)
        chosen = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        order = [row.value for row in table.rows]
        for round_ in range(1, 4):
            written = table.sync(fifty_live_rows(app, servers, round_))
            assert written >= 50 * 3
            await pilot.pause()
            assert [row.value for row in table.rows] == order
            assert table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value == chosen
            assert cells(table, servers[0].id)[2] == "healthy"
        assert table.sync(fifty_live_rows(app, servers, 3)) == 0, "nothing changed: nothing rewritten"


def fifty_live_rows(app: ConsoleApp, servers: list[ServerInstance], round_: int) -> list:
    rows = []
    for i, server in enumerate(servers):
        health = Health(server.id, server.name, state="running", health="healthy", restarts=round_ % 3,
                        ping_ms=1.0 + (i + round_) % 7 / 10, container_id=f"c{i}")
        stats = Stats(cpu_percent=(i * round_) % 100 / 3, memory_bytes=(40 + round_ + i) << 20,
                      memory_limit=256 << 20, pids=3)
        rows.append((server.id, server_row(app, server, ToolCounts(1, 2), live=True, health=health, stats=stats)))
    return rows


# -- the real engine -----------------------------------------------------------------------------


@pytest.fixture
def engine_backend(tmp_path: Path, test_keyring, monkeypatch: pytest.MonkeyPatch,  # noqa: ANN001
                   docker_engine) -> Iterator[Backend]:  # noqa: ANN001
    """A vault of our own with the local toolbox, on the real engine; containers removed after."""
    from console.services.toolboxes import add_local

    monkeypatch.setenv("TBX_HOME", str(tmp_path / "tbx"))
    monkeypatch.delenv("TBX_PASSPHRASE", raising=False)
    paths = resolve_paths()
    paths.ensure()
    settings = load_settings(paths.config_file)  # the test environment's base image
    settings.tui.refresh_seconds = 0.5
    backend = Backend(paths, settings)
    backend.create_vault(None)
    box = add_local(backend.workspace, "local")
    yield backend
    client = docker.from_env()
    for container in client.containers.list(all=True, filters={"label": f"io.tbx.toolbox={box.id}"}):
        container.remove(force=True)


@pytest.mark.docker
async def test_add_time_then_stop_start_read_its_log_and_remove_it(engine_backend: Backend) -> None:
    from console.services.server_status import call_tool

    ws = engine_backend.workspace
    app = ConsoleApp(engine_backend)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_servers(pilot)
        table = screen.query_one(ServerTable)
        await pilot.press("a")
        await pilot.pause()
        assert isinstance(app.screen, AddServerModal)
        await pilot.press(*"time", "enter")
        await pilot.pause()
        assert app.screen.current is not None and app.screen.current.id == "time"  # type: ignore[attr-defined]
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert app.screen is screen
        assert "+time" in table.rows or ws.repos.servers.by_name(ws.repos.toolboxes.require("local").id, "time")

        def row() -> list[str]:
            key = next((sid for sid, s in screen.servers.items() if s.name == "time"), None)
            return cells(table, key) if key in table.rows else []

        await until(pilot, lambda: row()[1:3] == ["running", "healthy"] and row()[3] != "-" and row()[5] != "-",
                    60, "time to run healthy with a ping and a CPU figure")
        assert row()[7] == "0/2"
        activity = "\n".join(screen.query_one("#activity").lines)  # type: ignore[attr-defined]
        assert "time: preparing image for time" in activity and "ready: 2 tool(s) discovered" in activity
        server_id = select(screen, "time")
        assert server_id in screen.feed.following  # a stats stream for the running container

        # Hidden, the screen reads nothing from the engine; shown again, it follows again.
        await pilot.press("1")
        await pilot.pause()
        assert screen.feed.following == {}
        assert not [w for w in app.workers if w.group == "server-log" and w.is_running]
        await pilot.press("2")
        await until(pilot, lambda: server_id in screen.feed.following, 10, "the stats stream to come back")

        # Stop asks first; the table follows.
        await pilot.press("s")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmModal)
        await pilot.press("y")
        await until(pilot, lambda: row()[1:3] == ["exited", "stopped"], 30, "time to be stopped")
        assert ws.repos.servers.get(server_id).desired_state is DesiredState.STOPPED
        assert row()[5] == "-" and server_id not in screen.feed.following

        await pilot.press("s")  # start: no question
        await until(pilot, lambda: row()[1:3] == ["running", "healthy"], 60, "time to run again")

        # A failed call makes mcp-server-time write to stderr: the Logs tab shows it.
        log = screen.query_one(ServerLog).log_widget
        await until(pilot, lambda: screen.query_one(ServerLog).target == "local/time", 10, "the log to follow time")
        outcome = await asyncio.to_thread(call_tool, ws, "local/time/get_current_time", {"timezone": "Not/AZone"})
        assert outcome.result.is_error
        await until(pilot, lambda: any("Not/AZone" in line for line in log.lines), 20, "the failure in the log")

        await pilot.press("d")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmModal)
        await pilot.press("y")
        await until(pilot, lambda: server_id not in table.rows, 30, "the row to go")
        assert ws.repos.servers.get(server_id) is None
        assert not docker.from_env().containers.list(all=True, filters={"label": f"io.tbx.server={server_id}"})
        messages = [n.message for n in app._notifications]
        assert any("local/time removed" in m for m in messages), messages
