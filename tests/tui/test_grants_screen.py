"""The Grants screen on the seeded vault: cells, the kill switch, transpose, filter, expiry, revoke all."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from console.services.access import access_report
from console.services.agents import remove_agent
from console.tui.app import ConsoleApp
from console.tui.backend import Backend
from console.tui.modals.confirm import ConfirmModal
from console.tui.modals.prompt import PromptModal
from console.tui.screens.grants import GrantsScreen
from console.tui.widgets.grant_grid import GrantGrid, Mark, utc_now
from console.tui.widgets.grant_matrix import GrantMatrix
from tests.support.bigvault import generate_big_vault
from tests.support.tui import fresh_backend, seed_items, still_app
from tests.tui.test_tools_screen import screen_text

SIZE = (120, 36)


def matrix(app: ConsoleApp) -> GrantMatrix:
    assert isinstance(app.screen, GrantsScreen), app.screen
    return app.screen.query_one(GrantMatrix)


def put(app: ConsoleApp, path: str, agent: str) -> None:
    """Move the cursor to ``path`` ("toolbox", "time/*", "files/read_text_file") × ``agent``."""
    m = matrix(app)
    assert m.grid is not None
    row = next(r for r in m.grid.all_rows if (r.path or "toolbox") == path)
    found = m.grid.agent_named(agent)
    assert found is not None
    m.move_to(row.key, found.id)
    assert m.current is not None and m.current[0].key == row.key and m.current[1].name == agent


def mark(app: ConsoleApp, path: str, agent: str) -> Mark:
    put(app, path, agent)
    grid, (row, col) = matrix(app).grid, matrix(app).current  # type: ignore[misc]
    assert grid is not None
    return grid.cell(row, col, utc_now()).mark


def allowed(backend: Backend, agent: str) -> set[str]:
    report = access_report(backend.workspace, agent)
    return {f"{box}/{tool.server}/{tool.tool}" for box, tool in report.allowed}


def reasons(backend: Backend, agent: str) -> dict[str, str]:
    report = access_report(backend.workspace, agent, everything=True)
    return {f"{tb.name}/{t.server}/{t.tool}": t.reason for tb in report.toolboxes for t in tb.tools}


def tool_grant_keys(backend: Backend, agent: str) -> set[str]:
    ws = backend.workspace
    agent_id = ws.repos.agents.require(agent).id
    servers = {s.id: s.name for s in ws.repos.servers}
    return {f"{servers[g.server]}/{g.tool}" for g in ws.repos.tool_grants.of_agent(agent_id)}


def has_access(backend: Backend, agent: str, toolbox: str = "local") -> bool:
    ws = backend.workspace
    key = f"{ws.repos.agents.require(agent).id}|{ws.repos.toolboxes.require(toolbox).id}"
    return ws.repos.toolbox_grants.get(key) is not None


def screen_lines(app: ConsoleApp) -> list[str]:
    return screen_text(app).splitlines()


async def settle(app: ConsoleApp, pilot) -> None:  # noqa: ANN001
    await app.workers.wait_for_complete()
    await pilot.pause()


async def test_toggling_tool_server_and_access_cells_writes_what_access_reports(seeded: Backend) -> None:
    app = still_app(seeded)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("4")
        # a tool cell
        assert mark(app, "files/write_file", "cursor") is Mark.NONE
        await pilot.press("space")
        assert mark(app, "files/write_file", "cursor") is Mark.GRANTED  # at once, before the write lands
        await settle(app, pilot)
        assert "files/write_file" in tool_grant_keys(seeded, "cursor")
        assert "local/files/write_file" in allowed(seeded, "cursor")
        # a server cell: the server-wide grant reaches every tool of the server
        put(app, "time/*", "cursor")
        await pilot.press("space")
        await settle(app, pilot)
        assert "time/*" in tool_grant_keys(seeded, "cursor")
        assert {"local/time/convert_time", "local/time/get_current_time"} <= allowed(seeded, "cursor")
        assert mark(app, "time/convert_time", "cursor") is Mark.VIA
        put(app, "time/*", "cursor")
        await pilot.press("space")
        await settle(app, pilot)
        assert "time/*" not in tool_grant_keys(seeded, "cursor")
        assert not {"local/time/convert_time", "local/time/get_current_time"} & allowed(seeded, "cursor")
        assert mark(app, "time/convert_time", "cursor") is Mark.NONE
        # revoking the tool cell
        put(app, "files/write_file", "cursor")
        await pilot.press("space")
        await settle(app, pilot)
        assert "files/write_file" not in tool_grant_keys(seeded, "cursor")
        assert reasons(seeded, "cursor").get("local/files/write_file") == "no-tool-grant"


async def test_the_kill_switch_asks_first_and_keeps_the_tool_grants(seeded: Backend) -> None:
    app = still_app(seeded)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("4")
        assert allowed(seeded, "claude-desktop") >= {"local/files/read_text_file", "local/time/convert_time"}
        before = tool_grant_keys(seeded, "claude-desktop")
        put(app, "toolbox", "claude-desktop")
        await pilot.press("space")
        assert isinstance(app.screen, ConfirmModal)
        await pilot.press("escape")  # cancelled: nothing changes
        await settle(app, pilot)
        assert has_access(seeded, "claude-desktop")
        put(app, "toolbox", "claude-desktop")
        await pilot.press("space")
        await pilot.press("y")
        await settle(app, pilot)
        assert not has_access(seeded, "claude-desktop")
        assert tool_grant_keys(seeded, "claude-desktop") == before  # kept, only cut off
        assert allowed(seeded, "claude-desktop") == set()
        assert reasons(seeded, "claude-desktop")["local/files/read_text_file"] == "no-toolbox-grant"
        put(app, "files/read_text_file", "claude-desktop")
        grid, (row, agent) = matrix(app).grid, matrix(app).current  # type: ignore[misc]
        cell = grid.cell(row, agent, utc_now())  # type: ignore[union-attr]
        assert cell.mark is Mark.GRANTED and cell.inactive
        await pilot.pause()
        assert "kill switch off" in str(app.screen.query_one("#cell").render())
        # still toggleable while cut off
        put(app, "files/write_file", "claude-desktop")
        await pilot.press("space")
        await settle(app, pilot)
        assert "files/write_file" in tool_grant_keys(seeded, "claude-desktop")
        # granting access again (no question asked) brings every grant back
        put(app, "toolbox", "claude-desktop")
        await pilot.press("space")
        await settle(app, pilot)
        assert not isinstance(app.screen, ConfirmModal)
        assert has_access(seeded, "claude-desktop")
        assert {"local/files/read_text_file", "local/files/write_file", "local/time/convert_time"} <= allowed(
            seeded, "claude-desktop")
        records = list(seeded.workspace.audit.records())
        actions = [(r["action"], r["agent"]) for r in records]
        assert ("revoke.toolbox", "claude-desktop") in actions and ("grant.toolbox", "claude-desktop") in actions


async def test_grants_on_unapproved_tools_are_marked_and_via_cells_say_where_to_revoke(seeded: Backend) -> None:
    app = still_app(seeded)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("4")
        put(app, "files/list_directory", "claude-desktop")
        await pilot.press("space")
        await settle(app, pilot)
        put(app, "files/list_directory", "claude-desktop")
        grid, (row, agent) = matrix(app).grid, matrix(app).current  # type: ignore[misc]
        assert grid.cell(row, agent, utc_now()).ineffective  # type: ignore[union-attr]
        await pilot.pause()
        assert reasons(seeded, "claude-desktop")["local/files/list_directory"] == "tool-pending"
        assert "not effective: the tool is pending" in str(app.screen.query_one("#cell").render())
        assert grid.cell(next(r for r in grid.rows if r.path == "git/git_log"),  # type: ignore[union-attr]
                         grid.agent_named("cursor"), utc_now()).ineffective  # type: ignore[union-attr,arg-type]
        # a tool reached through time/* cannot be revoked on its own: the screen says so
        assert mark(app, "time/convert_time", "claude-desktop") is Mark.VIA
        await pilot.press("space")
        await settle(app, pilot)
        assert "time/*" in tool_grant_keys(seeded, "claude-desktop")
        assert any("revoke that on the server row" in n.message for n in app._notifications)


async def test_transpose_swaps_the_axes_and_keeps_the_cell(seeded: Backend) -> None:
    app = still_app(seeded)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("4")
        m = matrix(app)
        put(app, "git/git_status", "cursor")
        await pilot.press("t")
        assert m.transposed
        assert [a.name for a in m.display_rows] == ["claude-desktop", "cursor", "nightly-batch"]  # type: ignore[union-attr]
        assert m.current is not None and m.current[0].path == "git/git_status" and m.current[1].name == "cursor"
        assert m.cursor[0] == 1
        await pilot.press("down")  # moves to the next agent now
        assert m.current is not None and m.current[1].name == "nightly-batch"
        await pilot.press("space")  # a disabled agent's cell still toggles
        await settle(app, pilot)
        assert "git/git_status" in tool_grant_keys(seeded, "nightly-batch")
        await pilot.press("t")
        assert not m.transposed and m.current is not None and m.current[1].name == "nightly-batch"


async def test_filter_keeps_matching_agents_and_rows(seeded: Backend) -> None:
    app = still_app(seeded)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("4")
        m = matrix(app)
        assert m.grid is not None
        await pilot.press("slash", *"cursor")
        assert [a.name for a in m.grid.agents] == ["cursor"]
        assert len(m.grid.rows) == len(m.grid.all_rows)
        search = app.screen.query_one("#filter")
        search.value = "time/"
        await pilot.pause()
        assert [r.path or "toolbox" for r in m.grid.rows] == [
            "toolbox", "time/*", "time/convert_time", "time/get_current_time"]
        assert len(m.grid.agents) == 3
        await pilot.press("escape")
        put(app, "files/read_text_file", "cursor")
        await pilot.press("slash")
        search.value = "files/read cursor"
        await pilot.pause()
        assert [r.path or "toolbox" for r in m.grid.rows] == ["toolbox", "files/*", "files/read_text_file"]
        assert [a.name for a in m.grid.agents] == ["cursor"]
        assert m.cursor == (2, 0)  # still on its cell
        await pilot.press("enter")  # keep the filter, back to the matrix
        assert m.has_focus
        await pilot.press("up", "down", "space")  # toggles within the filtered view
        await settle(app, pilot)
        assert "files/read_text_file" in tool_grant_keys(seeded, "cursor")
        await pilot.press("slash", "escape")
        assert len(m.grid.rows) == len(m.grid.all_rows) and len(m.grid.agents) == 3
        await pilot.press("slash")
        search.value = "nothing-like-this"
        await pilot.pause()
        assert [r.path or "toolbox" for r in m.grid.rows] == ["toolbox"]


async def test_expiry_is_set_validated_and_cleared(seeded: Backend) -> None:
    app = still_app(seeded)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("4")
        put(app, "files/read_text_file", "claude-desktop")
        await pilot.press("e")
        assert isinstance(app.screen, PromptModal)
        await pilot.press(*"8 hours", "enter")
        assert isinstance(app.screen, PromptModal)
        assert "bad duration" in str(app.screen.query_one("#problem").render())
        app.screen.query_one("#value").value = "8h"
        await pilot.press("enter")
        await settle(app, pilot)
        ws = seeded.workspace
        agent = ws.repos.agents.require("claude-desktop")
        files = next(s for s in ws.repos.servers if s.name == "files")
        grant = ws.repos.tool_grants.get(f"{agent.id}|{files.id}|read_text_file")
        assert grant is not None and grant.expires is not None
        assert timedelta(hours=7, minutes=58) < grant.expires - datetime.now(UTC) <= timedelta(hours=8)
        put(app, "files/read_text_file", "claude-desktop")
        m = matrix(app)
        cell = m.grid.cell(*m.current, utc_now())  # type: ignore[union-attr,misc]
        assert cell.mark is Mark.GRANTED and cell.expires == grant.expires
        assert "✓ 7h" in m.render_line(m.cursor[0] + 1 - m.scroll_offset.y).text
        for record in reversed(list(ws.audit.records())):
            if record["action"] == "grant.update":
                assert record["target"] == "tool:local/files/read_text_file"
                break
        else:
            raise AssertionError("no grant.update record")
        # an expiry on a cell without a grant grants it for that long
        put(app, "git/git_status", "cursor")
        await pilot.press("e", *"30m", "enter")
        await settle(app, pilot)
        assert "local/git/git_status" in reasons(seeded, "cursor")
        # 'never' clears it
        put(app, "files/read_text_file", "claude-desktop")
        await pilot.press("e", *"never", "enter")
        await settle(app, pilot)
        assert ws.repos.tool_grants.get(f"{agent.id}|{files.id}|read_text_file").expires is None  # type: ignore[union-attr]
        put(app, "toolbox", "claude-desktop")
        await pilot.press("e")
        assert not isinstance(app.screen, PromptModal)
        assert any("toolbox access does not expire" in n.message for n in app._notifications)


async def test_revoke_all_for_an_agent_confirms_then_clears_the_toolbox(seeded: Backend) -> None:
    app = still_app(seeded)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("4")
        put(app, "files/read_text_file", "claude-desktop")
        await pilot.press("x")
        assert isinstance(app.screen, ConfirmModal)
        assert "2 grant(s) on 2 server(s) and its toolbox access" in str(app.screen.query_one(".dialog-body").render())
        await pilot.press("escape")
        await settle(app, pilot)
        assert tool_grant_keys(seeded, "claude-desktop") == {"files/read_text_file", "time/*"}
        await pilot.press("x", "y")
        await settle(app, pilot)
        assert tool_grant_keys(seeded, "claude-desktop") == set()
        assert not has_access(seeded, "claude-desktop")
        assert access_report(seeded.workspace, "claude-desktop").toolboxes == []
        assert tool_grant_keys(seeded, "cursor") == {"git/git_log"}  # the others keep theirs
        m = matrix(app)
        assert all(m.grid.cell(r, m.grid.agent_named("claude-desktop"), utc_now()).mark  # type: ignore[union-attr,arg-type]
                   in (Mark.NONE, Mark.OFF) for r in m.grid.rows)  # type: ignore[union-attr]
        await pilot.press("x")
        assert not isinstance(app.screen, ConfirmModal)
        assert any("holds nothing in toolbox local" in n.message for n in app._notifications)


async def test_a_failed_write_puts_the_cell_back_and_says_why(seeded: Backend) -> None:
    app = still_app(seeded)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("4")
        put(app, "git/git_status", "cursor")
        remove_agent(seeded.workspace, "cursor")  # behind the screen's back: the grant cannot land
        app.screen.action_toggle()  # what space does; checked before anything is awaited
        assert mark(app, "git/git_status", "cursor") is Mark.GRANTED  # shown at once
        await settle(app, pilot)
        m = matrix(app)
        assert m.grid is not None and m.grid.agent_named("cursor") is None
        assert any("no agent named 'cursor'" in n.message and n.severity == "error" for n in app._notifications)


async def test_a_big_matrix_renders_only_what_is_in_view(tmp_path: Path, test_keyring, monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.delenv("TBX_PASSPHRASE", raising=False)
    backend = fresh_backend(tmp_path / "tbx")
    backend.create_vault(None)
    big = generate_big_vault(backend.workspace, agents=100, tools=1000)
    assert (big.agents, big.tools) == (100, 1000)
    computed: list[int] = []
    original = GrantGrid.cell

    def counting(self: GrantGrid, row, agent, now):  # noqa: ANN001, ANN202
        computed.append(1)
        return original(self, row, agent, now)

    monkeypatch.setattr(GrantGrid, "cell", counting)
    app = still_app(backend)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("4")
        await pilot.pause()
        m = matrix(app)
        assert m.grid is not None and len(m.grid.rows) == 1 + 50 + 1000 and len(m.grid.agents) == 100
        visible_cells = 36 * (120 // 16 + 1)
        assert 0 < len(computed) <= 3 * visible_cells, len(computed)  # not 100,000
        computed.clear()
        await pilot.press("pagedown", "end", "right", "right")
        assert m.current is not None and m.current[0].tool == m.grid.rows[-1].tool
        assert len(computed) <= 8 * visible_cells
        before = m.grid.cell(*m.current, utc_now()).mark
        await pilot.press("space")
        assert m.grid.cell(*m.current, utc_now()).mark is not before
        await settle(app, pilot)
        await pilot.press("slash", *"srv-001/")
        assert len(m.grid.rows) == 1 + 1 + 20


async def test_a_prompt_row_is_granted_with_the_keys_and_opens_nothing_else(seeded: Backend) -> None:
    seed_items(seeded.workspace)
    app = still_app(seeded)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("4")
        rows = [r.path for r in matrix(app).grid.all_rows if r.server == "everything"]  # type: ignore[union-attr]
        assert rows == ["everything/*", "everything/echo",
                        "everything/resource:demo://resource/static/document/architecture.md",
                        "everything/template:demo://resource/dynamic/text/{resourceId}",
                        "everything/prompt:args-prompt", "everything/prompt:simple-prompt"]
        await pilot.press("slash", *"everything/simple cursor", "enter")
        await pilot.pause()
        m = matrix(app)
        assert [r.path for r in m.grid.rows] == ["", "everything/*", "everything/prompt:simple-prompt"]  # type: ignore[union-attr]
        assert [a.name for a in m.grid.agents] == ["cursor"]  # type: ignore[union-attr]
        await pilot.press("down", "down")
        assert m.current is not None and m.current[0].tool == "prompt:simple-prompt"
        await pilot.pause()
        assert str(app.screen.query_one("#cell").render()) == (
            "cursor holds no grant for local/everything/prompt:simple-prompt")
        await pilot.press("space")
        await settle(app, pilot)
        assert "everything/prompt:simple-prompt" in tool_grant_keys(seeded, "cursor")
        assert {t for t in allowed(seeded, "cursor") if "/everything/" in t} == {
            "local/everything/prompt:simple-prompt"}, "the prompt grant opens no tool, resource or template"
        [record] = [r for r in seeded.workspace.audit.records() if r["action"] == "grant.tool"
                    and r["target"].startswith("prompt:")]
        assert record["target"] == "prompt:local/everything/simple-prompt" and record["agent"] == "cursor"

        # A grant on a pending prompt is kept but gives nothing, and the cell says why.
        await pilot.press("escape")
        await pilot.press("slash", *"everything/args cursor", "enter")
        await pilot.press("down", "down", "space")
        await settle(app, pilot)
        assert "everything/prompt:args-prompt" in tool_grant_keys(seeded, "cursor")
        assert reasons(seeded, "cursor")["local/everything/prompt:args-prompt"] == "tool-pending"
        assert str(app.screen.query_one("#cell").render()).endswith("not effective: the prompt is pending")


async def test_item_rows_stay_readable_at_80_columns(seeded: Backend) -> None:
    seed_items(seeded.workspace)
    app = still_app(seeded)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("4")
        await pilot.press("slash", *"everything/", "enter")
        await pilot.pause()
        lines = screen_lines(app)
        assert any("   resource:demo://…c/document/architecture.md   ·" in line for line in lines), lines
        assert any("   template:demo…mic/text/{resourceId} pending   ·" in line for line in lines), lines
        assert all(len(line) <= 80 for line in lines)
        assert any(" prompt:simple-prompt" in line for line in lines)
        assert any("everything/*" in line and "all items" in line for line in lines)
