"""The Agents screen on the seeded vault: add (token once), rotate, disable, remove, surface, config."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from textual.widgets import DataTable, Static

from console.policy import hash_token
from console.services.access import access_report
from console.tui.app import ConsoleApp
from console.tui.backend import Backend
from console.tui.modals.agent_token import AgentTokenModal
from console.tui.modals.confirm import ConfirmModal
from console.tui.modals.prompt import PromptModal
from console.tui.modals.write_config import WriteConfigModal
from console.tui.screens.agents import AgentsScreen
from console.tui.screens.grants import GrantsScreen
from console.tui.widgets.agent_surface import AgentSurface, surface_parts
from console.tui.widgets.client_snippet import ClientSnippet
from console.tui.widgets.grant_matrix import GrantMatrix
from tests.support.tui import seed_items, still_app

SIZE = (120, 36)


async def settle(app: ConsoleApp, pilot) -> None:  # noqa: ANN001
    await app.workers.wait_for_complete()
    await pilot.pause()


def select(app: ConsoleApp, name: str) -> None:
    assert isinstance(app.screen, AgentsScreen)
    table = app.screen.query_one(DataTable)
    names = [table.get_row_at(i)[0] for i in range(table.row_count)]
    table.move_cursor(row=names.index(name))


def surface(app: ConsoleApp) -> str:
    return app.screen.query_one(AgentSurface).text


def audit_actions(backend: Backend) -> list[tuple[str, str | None]]:
    return [(r["action"], r["agent"]) for r in backend.workspace.audit.records()]


async def test_the_list_shows_every_agent_with_its_state_token_fingerprint_and_grants(seeded: Backend) -> None:
    app = still_app(seeded)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("5")
        table = app.screen.query_one(DataTable)
        rows = [[str(cell) for cell in table.get_row_at(i)] for i in range(table.row_count)]
        assert rows == [
            ["claude-desktop", "enabled", "0" * 12, "1", "2", "2026-11-24 09:30"],
            ["cursor", "enabled", "0" * 12, "1", "1", "2026-11-24 09:30"],
            ["nightly-batch", "disabled", "0" * 12, "0", "0", "2026-11-24 09:30"],
        ]
        await pilot.press("slash", *"curs")
        assert table.row_count == 1 and table.get_row_at(0)[0] == "cursor"


async def test_adding_an_agent_shows_its_token_once_and_keeps_only_the_hash(seeded: Backend) -> None:
    app = still_app(seeded)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("5", "a")
        assert isinstance(app.screen, PromptModal)
        await pilot.press(*"CI Bot", "enter")
        assert "bad agent name 'CI Bot'" in str(app.screen.query_one("#problem").render())
        app.screen.query_one("#value").value = "cursor"
        await pilot.press("enter")
        assert "that name is taken" in str(app.screen.query_one("#problem").render())
        app.screen.query_one("#value").value = "ci-bot"
        await pilot.press("enter")
        await settle(app, pilot)
        modal = app.screen
        assert isinstance(modal, AgentTokenModal)
        token = modal.token
        assert token.startswith("tbx_") and len(token) > 40
        shown = str(modal.query_one("#token").render()) + str(modal.query_one("#config").render())
        assert token not in shown and "•" in shown  # masked, config included
        agent = seeded.workspace.repos.agents.require("ci-bot")
        assert agent.token_hash == hash_token(token)
        assert token not in json.dumps(seeded.workspace.tables())
        assert seeded.workspace.policy().authenticate(token) == agent.id
        await pilot.press("c")
        assert app.clipboard == token
        await pilot.press("s")
        config = json.loads(app.clipboard)
        assert config["mcpServers"]["toolbox-ci-bot"]["env"]["TBX_AGENT_TOKEN"] == token
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, AgentsScreen)
        table = app.screen.query_one(DataTable)
        assert table.get_row_at(table.cursor_row)[0] == "ci-bot"  # the new agent is selected, in name order
        assert [table.get_row_at(i)[0] for i in range(table.row_count)] == [
            "ci-bot", "claude-desktop", "cursor", "nightly-batch"]
        snippet = app.screen.query_one(ClientSnippet).text()
        assert snippet is not None and token not in snippet and "PASTE-THE-TOKEN-OF-ci-bot" in snippet
        assert ("agent.add", "ci-bot") in audit_actions(seeded)


async def test_rotating_confirms_and_shows_the_new_token_once(seeded: Backend) -> None:
    app = still_app(seeded)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("5")
        select(app, "cursor")
        old = seeded.workspace.repos.agents.require("cursor").token_hash
        await pilot.press("r")
        assert isinstance(app.screen, ConfirmModal)
        await pilot.press("n")
        await settle(app, pilot)
        assert seeded.workspace.repos.agents.require("cursor").token_hash == old
        await pilot.press("r", "y")
        await settle(app, pilot)
        modal = app.screen
        assert isinstance(modal, AgentTokenModal) and modal.title_text == "New token for cursor"
        agent = seeded.workspace.repos.agents.require("cursor")
        assert agent.token_hash == hash_token(modal.token) != old
        assert seeded.workspace.policy().authenticate(modal.token) == agent.id
        assert ("agent.rotate", "cursor") in audit_actions(seeded)
        await pilot.press("v")  # shown on request only
        assert str(modal.query_one("#token").render()) == modal.token


async def test_disable_and_enable_follow_in_the_list_and_the_surface(seeded: Backend) -> None:
    app = still_app(seeded)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("5")
        select(app, "cursor")
        await pilot.press("x")
        await settle(app, pilot)
        assert seeded.workspace.repos.agents.require("cursor").disabled
        assert not access_report(seeded.workspace, "cursor").enabled
        table = app.screen.query_one(DataTable)
        assert str(table.get_row_at(table.cursor_row)[1]) == "disabled"
        assert "agent disabled" in surface(app)
        await pilot.press("x")
        await settle(app, pilot)
        assert not seeded.workspace.repos.agents.require("cursor").disabled
        assert "agent disabled" not in surface(app)
        assert [a for a in audit_actions(seeded) if a[1] == "cursor"][-2:] == [
            ("agent.disable", "cursor"), ("agent.enable", "cursor")]


async def test_removing_says_how_many_grants_go_with_the_agent(seeded: Backend) -> None:
    app = still_app(seeded)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("5")
        select(app, "claude-desktop")
        await pilot.press("d")
        assert isinstance(app.screen, ConfirmModal)
        assert "its 3 grant(s) (1 toolbox access, 2 tool grant(s))" in str(app.screen.query_one(".dialog-body").render())
        await pilot.press("y")
        await settle(app, pilot)
        ws = seeded.workspace
        assert ws.repos.agents.by_name("claude-desktop") is None
        agent_ids = {a.id for a in ws.repos.agents}
        assert all(g.agent in agent_ids for g in ws.repos.tool_grants)
        assert all(g.agent in agent_ids for g in ws.repos.toolbox_grants)
        table = app.screen.query_one(DataTable)
        assert [table.get_row_at(i)[0] for i in range(table.row_count)] == ["cursor", "nightly-batch"]
        assert any("removed with 3 grant(s)" in n.message for n in app._notifications)


async def test_the_detail_shows_the_surface_with_reasons_and_the_client_config(seeded: Backend) -> None:
    app = still_app(seeded)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("5")
        await settle(app, pilot)
        text = surface(app)
        assert "local  ✓ toolbox access" in text
        assert "✓ files/read_text_file" in text and "allowed by the grant files/read_text_file" in text
        assert "✓ time/convert_time" in text and "allowed by the server-wide grant time/*" in text
        assert "✗ files/list_directory" in text and "no grant for files/list_directory or files/*" in text
        snippet = app.screen.query_one(ClientSnippet)
        assert snippet.client == "claude-desktop"
        assert json.loads(snippet.text() or "")["mcpServers"]["toolbox-claude-desktop"]["args"][-4:-2] == [
            "connect", "claude-desktop"]
        await pilot.press("right_square_bracket", "right_square_bracket")
        cursor_config = json.loads(snippet.text() or "")["mcpServers"]["toolbox-claude-desktop"]
        assert cursor_config == {"url": "http://127.0.0.1:8765/mcp",
                                 "headers": {"Authorization": "Bearer ${env:TBX_AGENT_TOKEN}"}}
        assert "Cursor reads claude-desktop's token from TBX_AGENT_TOKEN" in str(
            snippet.query_one("#snippet-note", Static).render())
        await pilot.press("right_square_bracket")
        assert snippet.client == "vscode" and '"servers"' in (snippet.text() or "")
        await pilot.press("c")
        assert app.clipboard == snippet.text()
        await pilot.press("down")  # cursor: its changed tool says why it is refused
        await settle(app, pilot)
        assert "✗ git/git_log" in surface(app)
        assert "tool definition changed since approval" in surface(app)
        assert "toolbox-cursor" in (snippet.text() or "") and snippet.client == "vscode"


async def test_w_writes_the_client_config_into_the_clients_file_after_showing_the_diff(
        seeded: Backend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    config = tmp_path / ".cursor" / "mcp.json"
    config.parent.mkdir()
    config.write_text(json.dumps({"mcpServers": {"github": {"url": "https://api.githubcopilot.com/mcp/"}}}))
    app = still_app(seeded)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("5")
        await settle(app, pilot)
        await pilot.press("right_square_bracket", "right_square_bracket", "w")
        await pilot.pause()
        modal = app.screen
        assert isinstance(modal, WriteConfigModal)
        assert '+    "toolbox-claude-desktop": {' in modal.change.diff()
        await pilot.click("#yes")
        await settle(app, pilot)
        written = json.loads(config.read_text())["mcpServers"]
        assert set(written) == {"github", "toolbox-claude-desktop"}
        assert json.loads((tmp_path / ".cursor" / "mcp.json.tbx-backup").read_text())["mcpServers"].keys() == {
            "github"}
        assert any(f"wrote {config}" in n.message for n in app._notifications)
        await pilot.press("w")
        await pilot.pause()
        assert isinstance(app.screen, AgentsScreen)
        assert any("already has toolbox-claude-desktop" in n.message for n in app._notifications)


async def test_palette_commands_and_the_way_to_the_grants(seeded: Backend) -> None:
    from console.tui.commands import ConsoleCommands

    app = still_app(seeded)
    async with app.run_test(size=SIZE) as pilot:
        titles = [title for title, _help, _cb in ConsoleCommands(app.screen)._commands()]
        for title in ("agent: Add", "agent: Rotate token", "agent: Disable/enable", "agent: Remove",
                      "agent: Copy client config", "grant: Revoke all for agent", "grant: Transpose matrix"):
            assert title in titles
        await app.run_on_screen("agents", "copy_config")
        assert "toolbox-claude-desktop" in app.clipboard
        select(app, "cursor")
        await pilot.press("g")
        await pilot.pause()
        assert isinstance(app.screen, GrantsScreen)
        matrix = app.screen.query_one(GrantMatrix)
        assert matrix.grid is not None and [a.name for a in matrix.grid.agents] == ["cursor"]
        assert matrix.has_focus


def test_the_surface_lists_every_kind_and_cuts_long_uris_in_the_middle(seeded: Backend) -> None:
    seed_items(seeded.workspace)
    report = access_report(seeded.workspace, "claude-desktop")
    text = "".join(part for part, _style in surface_parts(report, width=44))
    assert "✓ everything/prompt:simple-prompt\n" in text
    assert "✗ everything/res…ument/architecture.md\n" in text
    assert "    no grant for\n    everything/prompt:args-prompt or\n    everything/*\n" in text
    assert all(len(line) <= 44 for line in text.splitlines())
