"""A change that takes access away is in force on every remote toolbox when the command
returns — or the command fails, and the change lands when the toolbox is back.

Two adopted SSH hosts (real sshd on loopback, this machine's engine behind them), each
with its own gateway container and a `time` server. The commands run as real `tbx`
processes, the way scripts run them: with `TBX_PASSPHRASE` set (the path that once never
pushed at all), with the OS keyring, and once answering the passphrase prompt in a pty.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pexpect
import pytest

from console.remote.deploy import tls_context
from console.remote.sshkeys import generate_keypair
from tests.remote.conftest import wipe_toolbox
from tests.support.gateway import agent, tool_names
from tests.support.sharedkeys import REPO, shared_keyring_home
from tests.support.sshd import Sshd

pytestmark = pytest.mark.docker
PASSPHRASE = "remote-revoke-passphrase-7c1"
IN_FORCE_WITHIN = 1.0
"""Seconds from the command's return to the agent seeing the change on every toolbox."""


@dataclass
class Fleet:
    home: Path
    env: dict[str, str]
    hosts: dict[str, Sshd] = field(default_factory=dict)
    boxes: dict[str, dict] = field(default_factory=dict)
    counter: list[int] = field(default_factory=lambda: [0])

    def tbx(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([sys.executable, "-m", "console", *args], env=self.env, capture_output=True, text=True,
                              timeout=180)
        if check:
            assert done.returncode == 0, (args, done.stdout, done.stderr)
        return done

    def agent(self) -> tuple[str, str]:
        """A fresh agent granted `time` on every toolbox; (name, token)."""
        self.counter[0] += 1
        name = f"roamer-{self.counter[0]}"
        token = json.loads(self.tbx("agent", "add", name, "--json").stdout)["token"]
        for box in self.boxes:
            self.tbx("grant", name, box)
            self.tbx("grant", name, f"{box}/time")
        return name, token

    def sees(self, token: str) -> dict[str, bool]:
        """Whether the agent sees get_current_time on each toolbox's gateway."""
        async def one(box: dict) -> bool:
            try:
                async with agent(box["gateway_address"], token, verify=tls_context(box["gateway_cert"])) as client:
                    return "time__get_current_time" in await tool_names(client)
            except Exception:  # noqa: BLE001 - a refused token is "sees nothing"
                return False

        async def all_of() -> list[bool]:
            return await asyncio.gather(*(one(box) for box in self.boxes.values()))

        return dict(zip(self.boxes, asyncio.run(all_of()), strict=True))


@pytest.fixture(scope="module", params=["passphrase-env", "keyring"])
def fleet(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, docker_engine) -> Iterator[Fleet]:  # noqa: ANN001
    root = tmp_path_factory.mktemp("fleet")
    private, public = generate_keypair("tbx-fleet")
    key_file = root / "id_ed25519"
    key_file.write_text(private)
    key_file.chmod(0o600)
    net = random.randint(20, 250)
    with shared_keyring_home(root) as home:
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        env.pop("TBX_PASSPHRASE", None)
        if request.param == "passphrase-env":
            env["TBX_PASSPHRASE"] = PASSPHRASE
        fleet = Fleet(home, env)
        fleet.tbx("init")
        try:
            for n, name in enumerate(("t1", "t2")):
                sshd = Sshd([public], host=f"127.{net}.{n + 1}.{random.randint(2, 250)}", port=2222)
                sshd.start()
                fleet.hosts[name] = sshd
                fleet.tbx("toolbox", "add", name, "--ssh", sshd.target, "--identity", str(key_file))
                fleet.tbx("server", "add", name, "time")
                fleet.tbx("tools", "approve", f"{name}/time")
            fleet.boxes = {b["name"]: b for b in json.loads(fleet.tbx("toolbox", "list", "--json").stdout)}
            yield fleet
        finally:
            for box in fleet.boxes.values():
                wipe_toolbox(box["id"])
            for sshd in fleet.hosts.values():
                sshd.close()


def in_force_after(fleet: Fleet, token: str, expected: bool) -> float:
    """Seconds until every toolbox shows (or stops showing) the tool."""
    started = time.monotonic()
    while True:
        if all(seen == expected for seen in fleet.sees(token).values()):
            return time.monotonic() - started
        assert time.monotonic() - started < 10, f"not {'granted' if expected else 'revoked'} everywhere in 10 s"
        time.sleep(0.05)


REMOVALS: dict[str, tuple[bool, list[str]]] = {
    # name: (once per toolbox, the command with NAME and BOX standing for agent and toolbox)
    "revoke a tool": (True, ["revoke", "NAME", "BOX/time"]),
    "kill switch": (True, ["revoke", "NAME", "BOX"]),
    "disable": (False, ["agent", "disable", "NAME"]),
    "rotate": (False, ["agent", "rotate", "NAME"]),
    "remove the agent": (False, ["agent", "remove", "NAME", "--yes"]),
}


@pytest.mark.parametrize("removal", sorted(REMOVALS))
def test_every_access_removal_is_in_force_everywhere_when_the_command_returns(fleet: Fleet, removal: str) -> None:
    name, token = fleet.agent()
    in_force_after(fleet, token, True)
    per_toolbox, template = REMOVALS[removal]
    for box in fleet.boxes if per_toolbox else [None]:
        done = fleet.tbx(*[part.replace("NAME", name).replace("BOX", box or "") for part in template], check=False)
        assert done.returncode == 0, done.stderr
    took = in_force_after(fleet, token, False)
    assert took < IN_FORCE_WITHIN, f"{removal}: in force everywhere only {took:.2f} s after the command returned"


def test_an_unreachable_toolbox_fails_the_revoke_and_gets_it_when_back(fleet: Fleet) -> None:
    name, token = fleet.agent()
    in_force_after(fleet, token, True)
    fleet.hosts["t2"].stop()
    try:
        done = fleet.tbx("revoke", name, "t2/time", check=False)
        assert done.returncode == 1
        assert "NOT yet on toolbox t2" in done.stderr and "retrying in the background" in done.stderr
        listed = fleet.tbx("toolbox", "list").stdout
        assert "t2" in listed and "PENDING, takes access away" in listed
        assert fleet.sees(token)["t2"], "t2's gateway still has the old policy (its SSH was down)"
    finally:
        fleet.hosts["t2"].start()
    deadline = time.monotonic() + 30
    while fleet.sees(token)["t2"]:
        assert time.monotonic() < deadline, "the background retry did not bring the revoke to t2"
        time.sleep(0.2)
    assert "pending" not in fleet.tbx("toolbox", "list").stdout.lower()
    fleet.tbx("audit", "verify")
    records = [json.loads(line) for line in (fleet.home / "audit.jsonl").read_text().splitlines()]
    pushes = [(r["target"], r["decision"], r["detail"].get("late")) for r in records if r["action"] == "policy.push"]
    assert ("toolbox:t2", "error", None) in pushes and ("toolbox:t2", "ok", True) in pushes, pushes[-6:]


def test_a_grant_touches_only_the_toolbox_it_changes(fleet: Fleet) -> None:
    name, _token = fleet.agent()
    before = (fleet.home / "audit.jsonl").read_text().count('"policy.push"')
    fleet.tbx("revoke", name, "t1/time")
    records = [json.loads(line) for line in (fleet.home / "audit.jsonl").read_text().splitlines()]
    pushes = [r["target"] for r in records if r["action"] == "policy.push"][before:]
    assert pushes == ["toolbox:t1"]


@pytest.mark.parametrize("fleet", ["passphrase-env"], indirect=True)  # a keyring vault asks nothing
def test_answering_the_passphrase_prompt_pushes_too(fleet: Fleet) -> None:
    name, token = fleet.agent()
    in_force_after(fleet, token, True)
    env = {k: v for k, v in fleet.env.items() if k != "TBX_PASSPHRASE"}
    child = pexpect.spawn(sys.executable, ["-m", "console", "revoke", name, "t1/time"], env=env, timeout=60,
                          encoding="utf-8")
    child.expect("Passphrase for vault")
    child.sendline(PASSPHRASE)
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0, child.before
    assert not fleet.sees(token)["t1"]
