"""The console follows the vault through the workspace's commit events: whoever changed it
(a worker of any screen, a service on another thread, another process read again), the
screens in front re-read, the one under a dialog included; no screen announces changes."""

from __future__ import annotations

import threading

from textual.widgets import DataTable

from console.services import agents
from console.tui.app import ConsoleApp
from console.tui.backend import Backend
from console.tui.modals.prompt import PromptModal
from console.tui.screens.agents import AgentsScreen
from console.workspace import Workspace
from tests.support.tui import still_app

SIZE = (120, 36)


def agent_rows(app: ConsoleApp) -> list[str]:
    screen = next(s for s in app.screen_stack if isinstance(s, AgentsScreen))
    table = screen.query_one(DataTable)
    return [str(table.get_row_at(i)[0]) for i in range(table.row_count)]


async def until(pilot, check, what: str) -> None:  # noqa: ANN001
    for _ in range(50):
        if check():
            return
        await pilot.pause(0.05)
    raise AssertionError(f"timed out waiting for {what}")


async def test_a_change_on_another_thread_reaches_the_screen_under_a_dialog(seeded: Backend) -> None:
    app = still_app(seeded)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("5")
        await pilot.press("a")
        await pilot.pause()
        assert isinstance(app.screen, PromptModal)
        writer = threading.Thread(target=agents.add_agent, args=(seeded.workspace, "newcomer"))
        writer.start()
        writer.join()
        await until(pilot, lambda: "newcomer" in agent_rows(app), "the new agent behind the dialog")
        assert isinstance(app.screen, PromptModal)  # still open: the list behind it followed


async def test_another_process_s_change_is_read_by_the_vault_watch(seeded: Backend) -> None:
    app = still_app(seeded)  # not live: the watch runs when the test says
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("5")
        await pilot.pause()
        agents.add_agent(Workspace.open(seeded.paths), "elsewhere")  # as the CLI would, in its own process
        assert "elsewhere" not in agent_rows(app)
        app._poll_vault()
        await until(pilot, lambda: "elsewhere" in agent_rows(app), "the other process's agent")

