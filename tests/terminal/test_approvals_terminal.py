"""A held call met in a real terminal (issue 18): the real `tbx` console in a pty at 80x24,
a real gateway holding an mcp SDK agent's call to server-everything. The owner sees the
counter on the top line and the toast on the screen in front, opens Approvals with 0,
reads the call and allows it with a; the agent has its result; q leaves cleanly."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from console.services import grants
from console.services.grants import Target
from tests.gateway.conftest import Stack, _stack
from tests.support.gateway import agent
from tests.support.sharedkeys import shared_keyring_home
from tests.support.terminal import Terminal, tbx_argv, terminal_env

pytestmark = [pytest.mark.docker, pytest.mark.filterwarnings("ignore::mcp.MCPDeprecationWarning")]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, docker_engine) -> Iterator[Stack]:  # noqa: ANN001
    root = tmp_path_factory.mktemp("approvals-pty")
    with shared_keyring_home(root):
        yield from _stack(root, ("everything",))


def call_in_background(stack: Stack, token: str, message: str) -> tuple[threading.Thread, dict[str, Any]]:
    """The agent's call, in a thread of its own (the test's thread drives the terminal)."""
    box: dict[str, Any] = {}

    async def call() -> None:
        async with agent(stack.url, token) as client:
            box["result"] = await client.call_tool("everything__echo", {"message": message})

    def run() -> None:
        try:
            asyncio.run(call())
        except BaseException as exc:  # noqa: BLE001 - the test reads it
            box["error"] = exc

    thread = threading.Thread(target=run, name="agent", daemon=True)
    thread.start()
    return thread, box


def test_a_held_call_is_seen_and_allowed_from_a_real_terminal(stack: Stack) -> None:
    name, token = stack.agent("local")
    grants.grant(stack.ws, name, Target.parse("local/everything/echo"), ask=True)
    terminal = Terminal(tbx_argv(), terminal_env({"TBX_HOME": str(stack.paths.data_dir)}), 80, 24)
    try:
        terminal.wait_for("1 Boxes", timeout=30)
        thread, box = call_in_background(stack, token, "typed by hand")
        screen = terminal.wait_for("1 waiting", timeout=30)
        assert "0 1 waiting" in screen.splitlines()[0], "the counter on the top line, whole"
        terminal.wait_for("A call waits for you", timeout=5)  # the toast, on the screen in front
        terminal.press("0")
        screen = terminal.wait_for(f"{name} wants tool echo", timeout=10)
        assert '"message": "typed by hand"' in screen
        terminal.press("a")
        thread.join(20)
        assert "error" not in box, box.get("error")
        assert box["result"].content[0].text.endswith("typed by hand")
        terminal.wait_gone("1 waiting", timeout=10)
        terminal.press("q")
        assert terminal.wait_exit() == 0
        terminal.fail_on_traceback()
    finally:
        terminal.close()
