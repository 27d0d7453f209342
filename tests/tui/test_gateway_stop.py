"""g on Toolboxes stops the gateway: with agents connected it asks first and names them;
with none it just stops (the gateway's own report of its sessions is tested in
tests/gateway/test_connected_agents.py)."""

from __future__ import annotations

import pytest

from console.tui.backend import Backend, GatewayInfo
from console.tui.modals.confirm import ConfirmModal
from console.tui.screens.toolboxes import ToolboxesScreen
from tests.support.tui import still_app
from tests.tui.test_servers_screen import SIZE


def running_gateway(backend: Backend, monkeypatch: pytest.MonkeyPatch, *agent_names: str) -> list[str]:
    """A gateway that answers with these agents connected; returns the list stops land in."""
    ids = tuple(next(a.id for a in backend.workspace.repos.agents if a.name == name) for name in agent_names)
    info = GatewayInfo("http://127.0.0.1:8765", 4242, 0.0, (), ids)
    stops: list[str] = []
    monkeypatch.setattr(backend, "gateway_info", lambda toolbox: None if stops else info)
    monkeypatch.setattr(backend, "stop_gateway", lambda toolbox: stops.append(toolbox))
    return stops


async def press_g(pilot, app) -> None:  # noqa: ANN001
    await pilot.press("1")
    await pilot.pause()
    assert isinstance(app.screen, ToolboxesScreen)
    app.gateway_description = "gateway: http://127.0.0.1:8765/mcp"
    await pilot.press("g")
    await app.workers.wait_for_complete()
    await pilot.pause()


async def test_stopping_the_gateway_names_the_connected_agents_and_asks(
        seeded: Backend, monkeypatch: pytest.MonkeyPatch) -> None:
    stops = running_gateway(seeded, monkeypatch, "cursor", "claude-desktop")
    app = still_app(seeded)
    async with app.run_test(size=SIZE) as pilot:
        await press_g(pilot, app)
        modal = app.screen
        assert isinstance(modal, ConfirmModal) and modal.title_text == "Stop the gateway?"
        assert "2 agents are connected (claude-desktop and cursor)" in modal.body
        await pilot.press("escape")
        await app.workers.wait_for_complete()
        assert stops == []

        await pilot.press("g")
        await app.workers.wait_for_complete()
        await pilot.pause()
        await pilot.click("#yes")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert stops == ["local"]


async def test_with_no_agent_connected_the_gateway_stops_without_a_question(
        seeded: Backend, monkeypatch: pytest.MonkeyPatch) -> None:
    stops = running_gateway(seeded, monkeypatch)
    app = still_app(seeded)
    async with app.run_test(size=SIZE) as pilot:
        await press_g(pilot, app)
        assert not isinstance(app.screen, ConfirmModal)
        assert stops == ["local"]
