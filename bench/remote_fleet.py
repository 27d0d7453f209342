"""A change reaching a fleet of remote toolboxes: 1, 4, 8 and 20 of them.

Each toolbox is an adopted SSH host (a real sshd on its own loopback address, this
machine's Docker engine behind it) with its own gateway container and a `time` server.
The user's vault is locked by a passphrase given in TBX_PASSPHRASE, the way scripts run
tbx (the path that once never pushed at all). For each fleet size, `tbx` runs as its own
process and we time, from its start:

  returned   the command exits
  in force   an agent connected to every toolbox's gateway sees the change there

for a change to one toolbox (`tbx revoke A t1/time`, then `tbx grant`) and a change to
every toolbox (`tbx agent disable A`, then `enable`). Aim: within 1.5 s at 20.

Run: .venv/bin/python bench/remote_fleet.py [--sizes 1,4,8,20] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("TBX_BASE_IMAGE", "tbx-base:test")
os.environ.setdefault("TBX_CACHE_DIR", str(REPO / ".testenv" / "cache"))

import httpx2  # noqa: E402

from console.catalog import load_catalog  # noqa: E402
from console.paths import resolve_paths  # noqa: E402
from console.remote.deploy import tls_context  # noqa: E402
from console.remote.sshkeys import generate_keypair  # noqa: E402
from console.services import agents, grants, servers, toolboxes  # noqa: E402
from console.services import remote_toolboxes as remote  # noqa: E402
from console.services.grants import Target  # noqa: E402
from console.services.tools import approve  # noqa: E402
from console.vault import KeySource  # noqa: E402
from console.workspace import Workspace  # noqa: E402
from tests.remote.conftest import wipe_toolbox  # noqa: E402
from tests.support.sshd import Sshd  # noqa: E402

PASSPHRASE = "fleet-bench-passphrase-not-secret"
TOOL = "time__get_current_time"
INIT = {"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
    "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "fleet", "version": "1"}}}


class Watcher:
    """An agent on one toolbox's gateway: does it see the tool right now?"""

    def __init__(self, url: str, cert: str, token: str) -> None:
        self.url, self.token, self.cert = url, token, cert
        self.http: httpx2.AsyncClient | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.session: str | None = None

    async def sees(self) -> bool:
        if self.loop is not asyncio.get_running_loop():  # a client belongs to one event loop
            self.loop, self.session = asyncio.get_running_loop(), None
            self.http = httpx2.AsyncClient(verify=tls_context(self.cert), timeout=10)
        assert self.http is not None
        headers = {"authorization": f"Bearer {self.token}", "content-type": "application/json",
                   "accept": "application/json, text/event-stream"}
        try:
            if self.session is None:
                opened = await self.http.post(self.url + "/mcp", json=INIT, headers=headers)
                if opened.status_code != 200:
                    return False
                self.session = opened.headers["mcp-session-id"]
            listed = await self.http.post(self.url + "/mcp", headers={**headers, "mcp-session-id": self.session},
                                          json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
            if listed.status_code != 200:
                self.session = None
                return False
            return TOOL in {t["name"] for t in listed.json().get("result", {}).get("tools", [])}
        except httpx2.HTTPError:
            self.session = None
            return False


async def until(watchers: list[Watcher], expected: bool, started: float, timeout: float = 30.0) -> float:
    while True:
        seen = await asyncio.gather(*(w.sees() for w in watchers))
        if all(s == expected for s in seen):
            return time.perf_counter() - started
        if time.perf_counter() - started > timeout:
            return float("nan")
        await asyncio.sleep(0.02)


def run_tbx(env: dict[str, str], *args: str) -> tuple[float, subprocess.CompletedProcess[str]]:
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "console", *args], env=env, capture_output=True, text=True,
                          timeout=120)
    return started, done


def measure(env: dict[str, str], watchers: list[Watcher], first: list[Watcher], agent: str,
            rounds: int) -> dict[str, list[tuple[float, float]]]:
    """(returned, in force) seconds for each kind of change, ``rounds`` times each."""
    changes = {
        "revoke one toolbox": (["revoke", agent, "t1/time"], first, False),
        "grant one toolbox": (["grant", agent, "t1/time"], first, True),
        "disable (every toolbox)": (["agent", "disable", agent], watchers, False),
        "enable (every toolbox)": (["agent", "enable", agent], watchers, True),
    }
    results: dict[str, list[tuple[float, float]]] = {name: [] for name in changes}

    async def one(args: list[str], watched: list[Watcher], expected: bool) -> tuple[float, float]:
        started, done = await asyncio.to_thread(run_tbx, env, *args)
        if done.returncode != 0:
            raise SystemExit(f"tbx {' '.join(args)} failed: {done.stderr}")
        returned = time.perf_counter() - started
        return returned, await until(watched, expected, started)

    async def all_rounds() -> None:
        for _ in range(rounds):
            for name, (args, watched, expected) in changes.items():
                results[name].append(await one(args, watched, expected))

    asyncio.run(all_rounds())
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1,4,8,20")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    sizes = [int(n) for n in args.sizes.split(",")]
    private, public = generate_keypair("tbx-fleet-bench")
    net = random.randint(20, 250)
    hosts: list[Sshd] = []
    made: list[str] = []
    with tempfile.TemporaryDirectory(prefix="tbx-fleet-") as home:
        env = {**os.environ, "TBX_HOME": home, "TBX_PASSPHRASE": PASSPHRASE, "PYTHONPATH": str(REPO)}
        os.environ.update(TBX_HOME=home, TBX_PASSPHRASE=PASSPHRASE)
        ws = Workspace.create(resolve_paths(), KeySource(passphrase=PASSPHRASE))
        toolboxes.add_local(ws, "local")
        _agent, token = agents.add_agent(ws, "roamer")
        entry = load_catalog(ws.paths).get("time")
        watchers: list[Watcher] = []
        rows = []
        try:
            for size in sizes:
                setup = time.perf_counter()
                while len(hosts) < size:
                    n = len(hosts) + 1
                    sshd = Sshd([public], host=f"127.{net}.{n}.2", port=2222)
                    sshd.start()
                    hosts.append(sshd)
                    added = remote.add_ssh(ws, f"t{n}", sshd.target, private)
                    made.append(added.toolbox.id)
                    servers.add_server(ws, f"t{n}", entry)
                    approve(ws, f"t{n}", "time")
                    grants.grant(ws, "roamer", Target.parse(f"t{n}"))
                    grants.grant(ws, "roamer", Target.parse(f"t{n}/time"))
                    remote.sync(ws, added.toolbox)
                    box = ws.repos.toolboxes.require(f"t{n}")
                    watchers.append(Watcher(box.gateway_address or "", box.gateway_cert or "", token))
                print(f"fleet of {size}: set up in {time.perf_counter() - setup:.0f} s", file=sys.stderr)
                for name, samples in measure(env, watchers, watchers[:1], "roamer", args.rounds).items():
                    returned = statistics.median(s[0] for s in samples)
                    in_force = statistics.median(s[1] for s in samples)
                    worst = max(s[1] for s in samples)
                    rows.append(f"  {size:>3}  {name:<26}{returned:8.2f} s{in_force:10.2f} s{worst:10.2f} s")
            print(f"policy propagation to a fleet of SSH toolboxes, TBX_PASSPHRASE set, `tbx` as its own process; "
                  f"median of {args.rounds} rounds (from the command's start)")
            print(f"  {'N':>3}  {'change':<26}{'returned':>10}{'in force':>12}{'worst':>12}")
            print("\n".join(rows))
        finally:
            for toolbox_id in made:
                with contextlib.suppress(Exception):
                    wipe_toolbox(toolbox_id)
            for sshd in hosts:
                sshd.close()


if __name__ == "__main__":
    main()
