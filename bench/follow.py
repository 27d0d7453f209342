"""How the gateway follows its vault: idle CPU, and the delay from a change to the reload,
this code against a baseline commit (the 0.25 s poll), side by side in one run.

Each side (``before`` = a git worktree of ``--baseline``, ``after`` = this checkout) gets
its own vault (default settings but for ``CONFIG``), its own `time` container and its own
`tbx gateway serve` process (uvloop, as the CLI runs it), running at the same time.

1. Idle: CPU time of each gateway process (all threads) over ``BENCH_IDLE_SECONDS`` (20) with
   nobody connected, and its wake-ups (voluntary context switches of all its threads).
2. Change to reload: an agent holds a session open; another process (one per side, with
   that side's code) revokes or grants one of its tools, ``BENCH_CHANGES`` (20) times.
   Measured from the moment the vault file is replaced (a thread looking at it every
   0.2 ms) to the agent receiving ``notifications/tools/list_changed``, which the gateway
   sends once it has reloaded. p50, p90 and max per side.

Run: .venv/bin/python bench/follow.py [--baseline REF]   (needs the test environment)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))
os.environ.setdefault("TBX_BASE_IMAGE", "tbx-base:test")
os.environ.setdefault("TBX_CACHE_DIR", str(REPO / ".testenv/cache"))

from gateway import PASSPHRASE, Side, pct, worktree  # noqa: E402 - bench/gateway.py

from tests.support.gateway import agent  # noqa: E402

IDLE_SECONDS = float(os.environ.get("BENCH_IDLE_SECONDS", "20"))
CHANGES = int(os.environ.get("BENCH_CHANGES", "20"))
DEFAULT_BASELINE = "7474e65"
"""The last landing before the gateway followed file events (it polled every 0.25 s)."""
TOOL = "local/time/get_current_time"
CONFIG = "[gateway]\ncheckpoint_seconds = 300\n"
"""Default settings, but no timed audit checkpoints: the gateway's own writes of the vault
would blur which replacement is the measured one."""

SETUP = """
import sys
from console.catalog import load_catalog
from console.paths import resolve_paths
from console.services import agents, grants, servers, toolboxes
from console.services.grants import Target
from console.services.tools import approve
from console.vault import KeySource
from console.workspace import Workspace
ws = Workspace.create(resolve_paths(), KeySource(passphrase=sys.argv[1]))
toolboxes.add_local(ws, "local")
servers.add_server(ws, "local", load_catalog(ws.paths).get("time"))
approve(ws, "local", "time")
_agent, token = agents.add_agent(ws, "bench")
grants.grant(ws, "bench", Target.parse("local"))
grants.grant(ws, "bench", Target.parse("local/time/get_current_time"))
grants.grant(ws, "bench", Target.parse("local/time/convert_time"))
print(token)
"""
CHANGER = """
import sys
from console.paths import resolve_paths
from console.services import grants
from console.services.grants import Target
from console.workspace import Workspace
ws = Workspace.open(resolve_paths())
print("ready", flush=True)
for line in sys.stdin:
    change = grants.revoke if line.strip() == "revoke" else grants.grant
    change(ws, "bench", Target.parse(sys.argv[1]))
    print("done", flush=True)
"""


@dataclass
class Follower(Side):
    """A side of bench/gateway.py (its vault, gateway process and checkout), plus another
    process that changes the vault on demand."""

    token: str = ""
    changer: subprocess.Popen[str] | None = None
    idle_cpu: float = 0.0
    idle_wakes: int = 0
    delays: list[float] = field(default_factory=list)
    missed: int = 0
    revoke_next: bool = True

    @property
    def vault(self) -> Path:
        return self.home / "vault.tbx"

    def setup(self) -> None:
        self.token = self.run(SETUP, PASSPHRASE)
        config = self.home / "config" / "config.toml"
        assert not config.exists(), config
        config.parent.mkdir(parents=True, exist_ok=True)
        config.write_text(CONFIG)

    def start(self) -> None:
        super().start()
        self.changer = subprocess.Popen([sys.executable, "-c", CHANGER, TOOL], cwd=self.code, env=self.env, text=True,
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        assert self.changer.stdout is not None
        self.changer.stdout.readline()  # ready: the vault is open

    def cpu_seconds(self) -> float:
        """CPU time of all the gateway's threads, in ns precision (schedstat, not clock ticks)."""
        assert self.proc is not None
        return sum(int((task / "schedstat").read_text().split()[0])
                   for task in Path(f"/proc/{self.proc.pid}/task").iterdir()) / 1e9

    def wakes(self) -> int:
        """Voluntary context switches of all the gateway's threads: how often it slept and woke."""
        assert self.proc is not None
        total = 0
        for task in Path(f"/proc/{self.proc.pid}/task").iterdir():
            for line in (task / "status").read_text().splitlines():
                if line.startswith("voluntary_ctxt_switches:"):
                    total += int(line.split()[1])
        return total

    def change(self, verb: str) -> None:
        assert self.changer is not None and self.changer.stdin is not None and self.changer.stdout is not None
        self.changer.stdin.write(verb + "\n")
        self.changer.stdin.flush()
        self.changer.stdout.readline()

    def stop(self) -> None:
        for proc, end in ((self.changer, "kill"), (self.proc, "terminate")):
            if proc is not None:
                getattr(proc, end)()
                proc.wait(15)
        subprocess.run([sys.executable, "-m", "console", "server", "remove", "local/time", "--yes"], cwd=self.code,
                       env=self.env, capture_output=True, timeout=120)
        shutil.rmtree(self.home, ignore_errors=True)


def idle(sides: list[Follower]) -> None:
    """Both gateways at once, nobody connected."""
    time.sleep(3.0)  # start-up work (the server's discovery, the first checkpoint) settles
    cpu = [side.cpu_seconds() for side in sides]
    wakes = [side.wakes() for side in sides]
    time.sleep(IDLE_SECONDS)
    for side, c, w in zip(sides, cpu, wakes, strict=True):
        side.idle_cpu = side.cpu_seconds() - c
        side.idle_wakes = side.wakes() - w


def signature(path: Path) -> tuple[int, int, int]:
    st = os.stat(path)
    return st.st_ino, st.st_size, st.st_mtime_ns  # inode numbers alone come back after two writes


def replaced_at(path: Path, before: tuple[int, int, int], timeout: float = 30.0) -> float:
    """When ``path`` stops being ``before`` (looked at every 0.2 ms)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(FileNotFoundError):
            if signature(path) != before:
                return time.monotonic()
        time.sleep(0.0002)
    raise SystemExit(f"{path} was not replaced within {timeout:g}s")


async def delays(side: Follower, rounds: int) -> None:
    """``rounds`` changes, after one that is not counted: it shows the event stream is open."""
    arrived: list[float] = []

    def note(message: object) -> None:
        if getattr(getattr(message, "root", message), "method", None) == "notifications/tools/list_changed":
            arrived.append(time.monotonic())

    async with agent(side.url, side.token, on_message=note) as client:
        await client.list_tools(cache_mode="bypass")  # what the agent saw: changes are announced against it
        await asyncio.sleep(0.3)
        for n in range(rounds + 1):
            arrived.clear()
            renamed = asyncio.ensure_future(asyncio.to_thread(replaced_at, side.vault, signature(side.vault)))
            await asyncio.sleep(0.01)
            await asyncio.to_thread(side.change, "revoke" if side.revoke_next else "grant")
            side.revoke_next = not side.revoke_next
            at = await renamed
            deadline = time.monotonic() + 5
            while not arrived and time.monotonic() < deadline:
                await asyncio.sleep(0.002)
            if n > 0:
                if arrived:
                    side.delays.append(arrived[0] - at)
                else:
                    side.missed += 1
            await client.list_tools(cache_mode="bypass")
            await asyncio.sleep(random.uniform(0.3, 0.55))  # the next change: anywhere in a poll interval


def report(sides: list[Follower], baseline: str) -> None:
    print(f"gateway following its vault: before = {baseline} (polling every 0.25 s), after = this checkout "
          f"(file events, a 5 s safety poll); default settings (but no timed checkpoints), uvloop, "
          f"one `time` server each")
    print(f"1. idle, {IDLE_SECONDS:g} s, nobody connected (both gateways at once)")
    for side in sides:
        print(f"  {side.label:<7} CPU {side.idle_cpu:6.3f} s = {side.idle_cpu / IDLE_SECONDS:.2%} of a core; "
              f"{side.idle_wakes / IDLE_SECONDS:5.1f} wake-ups/s")
    before, after = sides
    if before.idle_cpu > 0:
        print(f"  after/before CPU: {after.idle_cpu / before.idle_cpu:.2f}x, "
              f"wake-ups: {after.idle_wakes / max(before.idle_wakes, 1):.2f}x")
    print(f"2. vault replaced by another process -> list_changed at the agent (the reload), {CHANGES} changes")
    for side in sides:
        d = side.delays
        print(f"  {side.label:<7} p50 {pct(d, .5):6.1f} ms  p90 {pct(d, .9):6.1f} ms  max {max(d) * 1000:6.1f} ms  "
              f"mean {statistics.mean(d) * 1000:6.1f} ms" + (f"  ({side.missed} not announced within 5 s)"
                                                             if side.missed else ""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", default=DEFAULT_BASELINE, help="git ref to compare with")
    baseline = parser.parse_args().baseline
    sides = [Follower("before", worktree(baseline)), Follower("after", REPO)]
    try:
        for side in sides:
            side.setup()
            side.start()
        idle(sides)
        for _ in range(2):  # alternate, so drift hits both sides alike
            for side in sides:
                asyncio.run(delays(side, CHANGES // 2))
        report(sides, baseline)
    finally:
        for side in sides:
            side.stop()


if __name__ == "__main__":
    main()
