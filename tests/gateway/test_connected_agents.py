"""The gateway says which agents are connected (an open session) in its state file, within
a second of a session opening or ending: the console names them before it stops the gateway."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import httpx2
import pytest

from console.tui.backend import Backend
from tests.gateway.conftest import Stack, _stack
from tests.support.rawmcp import RawAgent
from tests.support.sharedkeys import shared_keyring_home

pytestmark = pytest.mark.docker


@pytest.fixture(scope="module")
def bare(tmp_path_factory: pytest.TempPathFactory, docker_engine) -> Iterator[Stack]:  # noqa: ANN001
    """A gateway for a toolbox with no servers: sessions need none."""
    root = tmp_path_factory.mktemp("connected")
    with shared_keyring_home(root):
        yield from _stack(root, catalog_servers=())


def until(check: Callable[[], bool], what: str, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"waited {timeout:g}s for {what}"
        time.sleep(0.05)


def connected() -> tuple[str, ...]:
    from console.paths import resolve_paths

    info = Backend(resolve_paths()).gateway_info("local")
    assert info is not None, "the gateway answers"
    return info.agents


def test_the_state_file_lists_the_agents_with_an_open_session(bare: Stack) -> None:
    assert connected() == ()
    name, token = bare.agent("local")
    agent_id = next(a.id for a in bare.ws.repos.agents if a.name == name)
    with RawAgent(bare.url, token) as agent:
        session = agent.initialize()
        until(lambda: connected() == (agent_id,), "the session to be published")
        ended = httpx2.delete(bare.url + "/mcp", headers={"authorization": f"Bearer {token}", "mcp-session-id": session})
        assert ended.status_code in (200, 204)
        until(lambda: connected() == (), "the ended session to be withdrawn")
