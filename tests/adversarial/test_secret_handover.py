"""The secrets handover under pressure: hostile values, racing attachers, a fed launcher.

The launcher (console/runtime/launch.sh) runs in a real container of the test base image
with ``cat`` as its "server": whatever reaches the server's stdin comes back on stdout,
so a second frame, or a value that escaped its quoting, would be seen.
"""

from __future__ import annotations

import asyncio
import hashlib
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from console.model import Mount
from console.runtime.attach import attached
from console.runtime.containers import ContainerSpec, Engine
from console.runtime.enginehttp import Endpoint
from console.runtime.handover import (
    LAUNCHER_DIR,
    PROTOCOL,
    HandoverError,
    Secrets,
    hand_over,
    launcher_command,
    launcher_waiting,
)

pytestmark = pytest.mark.docker

BASE = "tbx-base:test"
WAIT = 3
"""The launcher's wait: short, so a test can outlive it."""
HOSTILE = {
    "SUBSTITUTION": "$(touch /tmp/pwned)`touch /tmp/pwned`",
    "QUOTES": "a'b\"c\\d e",
    "NEWLINES": "line one\nline two\n\n",
    "EQUALS": "k=v=w",
    "UNICODE": "sécret ☃ 秘密",
    "SPACES": "  leading and trailing  ",
    "LONG": "x" * 100_000,
}
DUMP = ('for n in SUBSTITUTION QUOTES NEWLINES EQUALS UNICODE SPACES LONG; do eval "printf \'%s\' \\"\\$$n\\"" '
        '| sha256sum; done; [ -e /tmp/pwned ] && echo PWNED; cat /tmp/tok/creds.json | sha256sum; exec cat')


@pytest.fixture
async def container(tmp_path: Path, docker_engine) -> AsyncIterator[tuple[Engine, str]]:  # noqa: ANN001
    """A container of the base image whose launcher waits for HOSTILE and a token file,
    then prints each value's digest and echoes its stdin."""
    launcher = tmp_path / "launch"
    launcher.mkdir()
    shutil.copy(Path(__file__).resolve().parents[2] / "console/runtime/launch.sh", launcher / "launch")
    engine = Engine()
    names = [*sorted(HOSTILE), "/tmp/tok/creds.json"]
    spec = ContainerSpec(name=f"tbx-test-handover-{tmp_path.name[-12:]}", image=BASE,
                         command=launcher_command(names, ["/bin/sh", "-c", DUMP], WAIT),
                         labels={"io.tbx.test": "handover"},
                         mounts=[Mount(source=str(launcher), target=LAUNCHER_DIR, read_only=True)])
    made = engine.create(spec)
    try:
        yield engine, made.id
    finally:
        engine.remove(made.id)
        engine.close()


def _digests() -> list[str]:
    return [hashlib.sha256(value.encode()).hexdigest() for value in HOSTILE.values()]


async def _secrets() -> Secrets:
    return Secrets(dict(HOSTILE), {"/tmp/tok/creds.json": '{"access_token": "t"}'})


async def test_hostile_values_arrive_exactly_and_run_nothing(container: tuple[Engine, str], tmp_path: Path) -> None:
    engine, cid = container
    endpoint = Endpoint.parse(engine.endpoint)
    out: list[bytes] = []
    async with attached(endpoint, cid) as channel:
        channel.on_stdout(out.append)

        async def start() -> None:
            await asyncio.to_thread(engine.start, cid)

        assert await hand_over(endpoint, cid, _secrets, lock_dir=tmp_path / "locks", timeout=20, start=start)
        await channel.send(b"after the frame")
        for _ in range(100):
            if b"after the frame" in out:
                break
            await asyncio.sleep(0.05)
    lines = [line.decode().split()[0] for line in out]
    assert lines[:len(HOSTILE)] == _digests()
    assert lines[len(HOSTILE)] == hashlib.sha256(b'{"access_token": "t"}').hexdigest()
    assert b"PWNED" not in b"".join(out)
    assert out[-1] == b"after the frame"  # the server's stdin starts right after the frame
    # Fed at once on start, the launcher's watchdog is gone with it: past the wait the
    # server still runs, and nothing the launcher forked is left looking like a launcher.
    await asyncio.sleep(WAIT + 1.5)
    state = engine.inspect(cid)
    assert state is not None and state.running and state.restart_count == 0
    assert not await launcher_waiting(endpoint, cid)


async def test_attachers_racing_a_start_feed_the_launcher_once(container: tuple[Engine, str], tmp_path: Path) -> None:
    """The starter and four others who attach meanwhile (a supervisor, `tbx call`s):
    one frame in all, so the running server never reads a second one."""
    engine, cid = container
    endpoint = Endpoint.parse(engine.endpoint)
    locks = tmp_path / "locks"
    out: list[bytes] = []
    async with attached(endpoint, cid) as channel:
        channel.on_stdout(out.append)

        async def start() -> None:
            await asyncio.to_thread(engine.start, cid)

        async def late() -> bool:
            await asyncio.sleep(0.05)
            return await hand_over(endpoint, cid, _secrets, lock_dir=locks, timeout=20)

        fed = await asyncio.gather(hand_over(endpoint, cid, _secrets, lock_dir=locks, timeout=20, start=start),
                                   *(late() for _ in range(4)))
        await channel.send(b"end")
        for _ in range(100):
            if b"end" in out:
                break
            await asyncio.sleep(0.05)
    assert fed == [True, False, False, False, False]
    assert not [line for line in out if PROTOCOL.encode() in line]
    # A server already running is not fed again either.
    assert not await hand_over(endpoint, cid, _secrets, lock_dir=locks, timeout=20)


async def test_a_frame_lacking_a_name_stops_the_server_before_it_runs(container: tuple[Engine, str],
                                                                      tmp_path: Path) -> None:
    engine, cid = container
    endpoint = Endpoint.parse(engine.endpoint)

    async def short() -> Secrets:
        return Secrets({k: v for k, v in HOSTILE.items() if k != "LONG"}, {"/tmp/tok/creds.json": "{}"})

    async def start() -> None:
        await asyncio.to_thread(engine.start, cid)

    with pytest.raises(HandoverError, match="the handover lacked LONG"):
        await hand_over(endpoint, cid, short, lock_dir=tmp_path / "locks", timeout=20, start=start)
    logs = engine.client.api.logs(cid, stdout=True, stderr=True).decode()
    assert "lacked LONG" in logs and HOSTILE["QUOTES"] not in logs
