"""The grants matrix's third cell state (issue 18): k makes a cell's grant ask the owner
for each call and k again allows; an expiry set on an asking grant keeps it asking; an
"always deny" shows as such, over a server-wide grant. What a cell shows is what the
policy (and so the gateway) says."""

from __future__ import annotations

from console.model import GrantMode
from console.services.grants import always_deny
from console.tui.backend import Backend
from console.tui.messages import VaultChanged
from console.tui.widgets.grant_grid import Mark, cell_text, utc_now
from tests.support.tui import still_app
from tests.tui.test_grants_screen import SIZE, matrix, mark, put, settle

CELL = ("git/git_status", "cursor")


def stored_mode(backend: Backend, path: str, agent: str) -> GrantMode | None:
    ws = backend.workspace
    agent_id = ws.repos.agents.require(agent).id
    servers = {s.id: s.name for s in ws.repos.servers}
    return next((g.mode for g in ws.repos.tool_grants.of_agent(agent_id) if f"{servers[g.server]}/{g.tool}" == path),
                None)


def shown(app, path: str, agent: str) -> tuple[str, str]:  # noqa: ANN001
    put(app, path, agent)
    grid, (row, col) = matrix(app).grid, matrix(app).current  # type: ignore[misc]
    cell = grid.cell(row, col, utc_now())
    return cell_text(cell, utc_now()), grid.explain(row, col, utc_now())


async def test_k_makes_a_cell_ask_and_allow_again(seeded: Backend) -> None:
    app = still_app(seeded)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("4")
        put(app, *CELL)
        await pilot.press("k")  # no grant yet: granted, asking
        assert shown(app, *CELL)[0] == "✓?"  # at once, before the write lands
        await settle(app, pilot)
        assert stored_mode(seeded, *CELL) is GrantMode.ASK
        text, why = shown(app, *CELL)
        assert text == "✓?" and "asks: each call waits for the owner's approval" in why
        server = matrix(app).current[0].server_id  # type: ignore[index]
        assert seeded.workspace.policy({server}).check(  # what the gateway would decide, the server running
            seeded.workspace.repos.agents.require("cursor").id, server, "git_status", utc_now().timestamp()).ask
        # An expiry keeps it asking.
        await pilot.press("e")
        await pilot.press(*"8h", "enter")
        await settle(app, pilot)
        assert stored_mode(seeded, *CELL) is GrantMode.ASK and shown(app, *CELL)[0].startswith("✓? ")
        await pilot.press("k")  # allows again
        assert shown(app, *CELL)[0].startswith("✓ ")
        await settle(app, pilot)
        assert stored_mode(seeded, *CELL) is GrantMode.ALLOW and mark(app, *CELL) is Mark.GRANTED
        await pilot.press("space")  # and space still revokes
        await settle(app, pilot)
        assert stored_mode(seeded, *CELL) is None


async def test_an_always_denied_item_shows_over_a_server_wide_grant(seeded: Backend) -> None:
    app = still_app(seeded)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("4")
        put(app, "git/*", "cursor")
        await pilot.press("space")
        await settle(app, pilot)
        assert mark(app, *CELL) is Mark.VIA
        ws = seeded.workspace
        row = matrix(app).current[0]  # type: ignore[index]
        always_deny(ws, ws.repos.agents.require("cursor").id, row.server_id, "git_status")
        app.screen.post_message(VaultChanged())
        await pilot.pause(0.3)
        text, why = shown(app, *CELL)
        assert text == "⊘ never" and "always denied" in why
        assert mark(app, "git/*", "cursor") is Mark.GRANTED  # the server-wide grant stands for the rest
