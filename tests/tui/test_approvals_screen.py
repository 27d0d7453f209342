"""The console as the owner's seat for held calls (issue 18): a real gateway holding the
calls of an mcp SDK agent to the real server-everything, the console following it; a
new call rings and toasts on any screen and is counted in the header; on the Approvals
screen the owner reads the call and decides it with a key."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from mcp.shared.exceptions import MCPError
from textual.widgets import Static

from console.services import grants
from console.services.grants import Target
from console.tui.app import ConsoleApp
from console.tui.backend import Backend
from console.tui.modals.prompt import PromptModal
from console.tui.screens.approvals import ApprovalsScreen
from tests.gateway.conftest import Stack, _stack
from tests.support.gateway import agent
from tests.support.sharedkeys import shared_keyring_home
from tests.support.tui import until

pytestmark = [pytest.mark.docker, pytest.mark.filterwarnings("ignore::mcp.MCPDeprecationWarning")]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, docker_engine) -> Iterator[Stack]:  # noqa: ANN001
    root = tmp_path_factory.mktemp("approvals-tui")
    with shared_keyring_home(root):
        yield from _stack(root, ("everything",))


def text(app: ConsoleApp, selector: str) -> str:
    return str(app.screen.query_one(selector, Static).render())


async def test_the_owner_sees_a_held_call_anywhere_and_decides_it_with_keys(stack: Stack) -> None:
    name, token = stack.agent("local")
    grants.grant(stack.ws, name, Target.parse("local/everything/echo"), ask=True)
    backend = Backend(stack.paths)
    backend.open_vault()
    app = ConsoleApp(backend, live=False)
    rang: list[bool] = []
    app.bell = lambda: rang.append(True)  # type: ignore[method-assign]
    async with app.run_test(size=(120, 36)) as pilot, agent(stack.url, token) as client:
        await pilot.press("4")  # on the Grants screen, far from the approvals
        app.follow_approvals()
        call = asyncio.ensure_future(client.call_tool("everything__echo", {"message": "from the console"}))
        await until(pilot, lambda: app.approvals_waiting == 1, 20, "the held call in the console")
        assert rang == [True]
        # The toast is a message the app handles on a later turn of its loop (Textual's notify).
        await until(pilot, lambda: any("wants tool:local/everything/echo" in n.message for n in app._notifications),
                    5, "the toast")
        assert text(app, "#approvals") == "0 1 waiting"
        await pilot.press("0")
        assert isinstance(app.screen, ApprovalsScreen)
        shown = text(app, "#call")
        assert f"{name} wants tool echo of server everything" in shown and '"message": "from the console"' in shown
        assert "trust: approved" in shown and "sha256 " in shown
        await pilot.press("a")
        result = await asyncio.wait_for(call, 20)
        assert result.content[0].text.endswith("from the console")  # type: ignore[union-attr]
        await until(pilot, lambda: app.approvals_waiting == 0, 10, "the counter back to none")
        assert "no call is waiting" in text(app, "#call") and text(app, "#approvals") == ""

        # Allow for a while: the duration asked in a dialog, the next call straight through.
        call = asyncio.ensure_future(client.call_tool("everything__echo", {"message": "again"}))
        await until(pilot, lambda: app.approvals_waiting == 1, 20, "the second held call")
        await pilot.press("f")
        await until(pilot, lambda: isinstance(app.screen, PromptModal), 5, "the duration dialog")
        await pilot.press("enter")  # 15m, as offered
        assert (await asyncio.wait_for(call, 20)).content[0].text.endswith("again")  # type: ignore[union-attr]
        quick = await asyncio.wait_for(client.call_tool("everything__echo", {"message": "no wait"}), 5)
        assert quick.content[0].text.endswith("no wait")  # type: ignore[union-attr]
        assert len(rang) == 2

    # Deny, with another agent.
    other, other_token = stack.agent("local")
    grants.grant(stack.ws, other, Target.parse("local/everything/echo"), ask=True)
    app = ConsoleApp(backend, live=False)
    async with app.run_test(size=(120, 36)) as pilot, agent(stack.url, other_token) as client:
        app.follow_approvals()
        await pilot.press("0")
        call = asyncio.ensure_future(client.call_tool("everything__echo", {"message": "nope"}))
        await until(pilot, lambda: app.approvals_waiting == 1, 20, "the held call")
        await until(pilot, lambda: "nope" in text(app, "#call"), 5, "the call on the screen")
        await pilot.press("d")
        with pytest.raises(MCPError) as refused:
            await asyncio.wait_for(call, 20)
        assert "the owner denied the call" in refused.value.error.message
