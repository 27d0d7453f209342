"""The Grants and Agents screens at 120x36 on the seeded vault, nothing live (pytest-textual-snapshot).

Regenerate after an intended change with: pytest tests/tui/test_snapshots_grants.py --snapshot-update
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
from textual.pilot import Pilot

from console.tui.backend import Backend
from tests.support.tui import seed_items, still_app

SIZE = (120, 36)
TOKEN = "tbx_" + "K7q2" * 10 + "x9Z"


@pytest.fixture(autouse=True)
def same_everywhere(monkeypatch: pytest.MonkeyPatch) -> None:
    """The claude snippet names this machine's tbx; a new token is random: pin both."""
    monkeypatch.setattr("console.gateway.clientconfig.tbx_command", lambda: "tbx")
    monkeypatch.setattr("console.services.agents.new_agent_token", lambda: TOKEN)


def keys(*pressed: str) -> Callable[[Pilot], Awaitable[None]]:
    async def run(pilot: Pilot) -> None:
        await pilot.press(*pressed)
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()

    return run


def test_grants_matrix(snap_compare, seeded: Backend) -> None:  # noqa: ANN001
    assert snap_compare(still_app(seeded), terminal_size=SIZE, run_before=keys("4", "down", "down", "right"))


def test_grants_matrix_transposed(snap_compare, seeded: Backend) -> None:  # noqa: ANN001
    assert snap_compare(still_app(seeded), terminal_size=SIZE, run_before=keys("4", "t", "right", "right", "right"))


def test_grants_matrix_with_every_kind_of_item(snap_compare, seeded: Backend) -> None:  # noqa: ANN001
    seed_items(seeded.workspace)
    assert snap_compare(still_app(seeded), terminal_size=SIZE, run_before=keys("4", "down", "down", "down", "down"))


def test_agents_surface_and_snippet(snap_compare, seeded: Backend) -> None:  # noqa: ANN001
    assert snap_compare(still_app(seeded), terminal_size=SIZE, run_before=keys("5"))


def test_agent_token_shown_once(snap_compare, seeded: Backend) -> None:  # noqa: ANN001
    # rotating (not adding): a new agent's CREATED would be today
    assert snap_compare(still_app(seeded), terminal_size=SIZE, run_before=keys("5", "down", "r", "y"))
