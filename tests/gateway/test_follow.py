"""The gateway follows its vault file's changes: a change made by another process is in
force, and announced to connected agents, within milliseconds; idle, it does not poll."""

from __future__ import annotations

import asyncio
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from console.gateway.filewatch import signature
from console.gateway.service import Gateway
from tests.gateway.conftest import Stack, _stack, subprocess_env
from tests.support.gateway import agent, tool_names
from tests.support.sharedkeys import shared_keyring_home

pytestmark = pytest.mark.docker
IN_FORCE_WITHIN = 0.1


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, docker_engine) -> Iterator[Stack]:  # noqa: ANN001
    root = tmp_path_factory.mktemp("follow")
    with shared_keyring_home(root):
        # The default policy_poll_seconds (a 5 s safety poll). No timed audit checkpoints: the
        # gateway's own writes of the vault would blur which replacement is the measured one.
        yield from _stack(root, ("time",), "checkpoint_seconds = 300\n")


class Replaced:
    """Notes the moment the vault file is replaced, by looking at it every 0.2 ms from a thread
    (independent of the watch under test). The gateway runs in this process: threads take
    turns every 0.1 ms meanwhile, not every 5 ms, so the moment is not noted late."""

    def __init__(self, path: Path, loop: asyncio.AbstractEventLoop) -> None:
        self.path, self.loop = path, loop
        self._switch = sys.getswitchinterval()
        sys.setswitchinterval(0.0001)
        self.at = 0.0
        self.seen = asyncio.Event()
        self._before = signature(path)
        self._stop = False
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop:
            if signature(self.path) != self._before:
                self.at = time.monotonic()
                self.loop.call_soon_threadsafe(self.seen.set)
                return
            time.sleep(0.0002)

    def stop(self) -> None:
        self._stop = True
        self._thread.join(1)
        sys.setswitchinterval(self._switch)


async def tbx(*args: str) -> None:
    """`tbx` in another process, as the owner runs it beside the gateway."""
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "console", *args, env=subprocess_env(),
                                                stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    _out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()


async def test_a_revoke_by_another_process_is_in_force_and_announced_within_100ms(stack: Stack) -> None:
    name, token = stack.agent("local", "local/time/get_current_time", "local/time/convert_time")
    announced: list[float] = []

    def note(message: object) -> None:
        if getattr(getattr(message, "root", message), "method", None) == "notifications/tools/list_changed":
            announced.append(time.monotonic())

    async with agent(stack.url, token, on_message=note) as client:
        assert await tool_names(client) == ["time__convert_time", "time__get_current_time"]
        await asyncio.sleep(0.3)  # the event stream is open
        for round_, (verb, expected) in enumerate([("revoke", ["time__convert_time"]),
                                                   ("grant", ["time__convert_time", "time__get_current_time"])]):
            announced.clear()
            replaced = Replaced(stack.paths.vault, asyncio.get_running_loop())
            try:
                change = asyncio.ensure_future(tbx(verb, name, "local/time/get_current_time"))
                await asyncio.wait_for(replaced.seen.wait(), 30)
                # No request before the announcement: a request reloads by itself (the pipeline
                # looks at the vault before deciding), so only the follower can announce early.
                deadline = time.monotonic() + 2
                while not announced and time.monotonic() < deadline:
                    await asyncio.sleep(0.001)
                listed = await tool_names(client)
                listed_after = time.monotonic() - replaced.at
                await change
            finally:
                replaced.stop()
            assert announced, "no notifications/tools/list_changed"
            assert listed == expected
            delay = announced[0] - replaced.at
            print(f"\n{verb} by another process (round {round_ + 1}): tools/list in force "
                  f"{listed_after * 1000:.1f} ms after the vault was replaced; list_changed announced "
                  f"after {delay * 1000:.1f} ms (policy_poll_seconds = {stack.gateway.gateway.settings.policy_poll_seconds:g})")
            assert listed_after < IN_FORCE_WITHIN
            assert delay < IN_FORCE_WITHIN


async def test_idle_the_gateway_does_not_look_at_the_vault(stack: Stack) -> None:
    """Idle, nothing asks whether the vault changed (the poll did, 4 times a second); its own
    writes (audit checkpoints after calls) cost one reload each, and then it is quiet."""
    _name, token = stack.agent("local", "local/time/get_current_time")
    async with agent(stack.url, token) as client:
        for _ in range(5):
            await client.call_tool("time__get_current_time", {"timezone": "UTC"})
    stack.gateway.flush_audit()  # the checkpoint moves: the gateway writes its vault
    looks = [0]

    def count(gw: Gateway) -> None:
        stale = gw.snapshots.stale

        def counted() -> bool:
            looks[0] += 1
            return stale()

        gw.snapshots.stale = counted  # type: ignore[method-assign]

    await asyncio.sleep(0.5)  # the checkpoint's own reload
    generation = stack.gateway.call(lambda gw: gw.snapshots.current.generation)
    stack.gateway.call(count)
    try:
        await asyncio.sleep(3.0)
        after = stack.gateway.call(lambda gw: gw.snapshots.current.generation)
    finally:
        stack.gateway.call(lambda gw: gw.snapshots.__dict__.pop("stale", None))
    print(f"\nidle 3 s: the vault looked at {looks[0]} times (polling every 0.25 s: 12); "
          f"reloads: {after - generation}")
    assert looks[0] <= 1
    assert after == generation
