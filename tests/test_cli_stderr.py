"""A command that succeeds says nothing on stderr: no warning, no traceback (issue 13).

The real ``tbx`` runs in a subprocess, as a script runs it: a throwaway TBX_HOME and
TBX_PASSPHRASE. Every command's ``--help``, then a real, successful invocation of each
command that can succeed without an engine, a network or a peer. The commands are read
from the click group, so a new command fails here until it is put in one list or the
other. The vault holds an SSH toolbox: with one, every command that changes the vault
loads the push code and so asyncssh, whose import used to print ten lines of
CryptographyDeprecationWarning (DSA).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import click
import pytest

from console.cli import cli
from console.model import ServerInstance, ToolDef, Trust, tool_pin
from console.paths import resolve_paths
from console.remote.policy import digest, policy_tables
from console.remote.push_state import PushState, mirror_root
from console.workspace import Workspace
from tests.support.remote_seed import seed_remote

REPO = Path(__file__).resolve().parents[1]
PASSPHRASE = "stderr-test-passphrase"
TOKEN_HINT = "This token is shown once. Store it in the agent's configuration now; tbx keeps only its hash.\n"
HINTS = {
    ("agent", "add"): TOKEN_HINT, ("agent", "rotate"): TOKEN_HINT,
    ("client-config",): "note: tokens are shown once; paste bot's token, or run with --rotate to issue a new one here\n",
}
"""What a successful command may say on stderr: a hint meant for a person, word for word."""

INVOKED: list[tuple[str, ...]] = [
    ("locate",),
    ("agent", "add", "bot"),
    ("agent", "list"),
    ("grant", "bot", "local"),
    ("grant", "bot", "local/time/now", "--for", "1h"),
    ("grant", "bot", "local/time/now", "--ask"),
    ("access", "bot"),
    ("approvals", "list"),
    ("revoke", "bot", "local/time/now"),
    ("agent", "disable", "bot"),
    ("agent", "enable", "bot"),
    ("agent", "rotate", "bot"),
    ("client-config", "bot", "--client", "claude"),
    ("client-config", "bot", "--client", "claude-desktop", "--write", "--file", "{tmp}/claude_desktop_config.json"),
    ("toolbox", "list"),
    ("toolbox", "orphans"),
    ("server", "list", "local", "--no-ping"),
    ("server", "egress", "local/time"),
    ("server", "client-metadata", "https://tbx.example/client.json"),
    ("tools", "list"),
    ("tools", "show", "local/time/now"),
    ("tools", "block", "local/time/now"),
    ("tools", "approve", "local/time/now"),
    ("tools", "unapprove", "local/time/now"),
    ("catalog", "list"),
    ("connection", "list"),
    ("audit", "list"),
    ("audit", "verify"),
    ("audit", "export", "{tmp}/audit.jsonl"),
    ("vault", "info"),
    ("vault", "rotate"),
    ("vault", "passwd"),
    ("vault", "restore"),
    ("doctor",),
    ("agent", "remove", "bot", "--yes"),
]
"""Run in this order on one home (``init`` and ``toolbox add`` set it up first)."""

NOT_INVOKED = {
    ("init",): "run first, to make the home the others use",
    ("toolbox", "add"): "run first (--local); SSH and droplet toolboxes need a host or DigitalOcean",
    ("toolbox", "options"): "asks the DigitalOcean API",
    ("toolbox", "adopt"): "needs a droplet at DigitalOcean that no toolbox owns (tests/remote/test_orphan_adopt.py)",
    ("toolbox", "destroy-orphan"): "asks the DigitalOcean API (tests/remote/test_orphans.py)",
    ("toolbox", "sync"): "needs a reachable remote toolbox",
    ("toolbox", "reconcile"): "needs the Docker engine",
    ("toolbox", "remove"): "removes containers through the Docker engine",
    ("server", "add"): "builds an image through the Docker engine",
    ("server", "start"): "needs the Docker engine",
    ("server", "stop"): "needs the Docker engine",
    ("server", "restart"): "needs the Docker engine",
    ("server", "edit"): "makes the server's container again through the Docker engine (tests/test_server_edit.py); "
                        "a remote server's --url, --header and --remove-header connect to it first "
                        "(tests/gateway/test_remote_edit.py checks their stderr is empty)",
    ("server", "logs"): "needs the Docker engine",
    ("server", "remove"): "removes a container through the Docker engine",
    ("server", "login"): "signs in at a remote server's authorization server (tests/oauth/test_mcp_login_cli.py)",
    ("server", "allow"): "asks the Docker engine whether to restart the server (tests/gateway/test_agent_asks.py)",
    ("server", "deny"): "asks the Docker engine whether to restart the server (tests/gateway/test_agent_asks.py)",
    ("call",): "needs a running gateway",
    ("approvals", "allow"): "needs a running gateway holding a call (tests/gateway/test_approvals.py)",
    ("approvals", "deny"): "needs a running gateway holding a call (tests/gateway/test_approvals.py)",
    ("approvals", "watch"): "prompts until interrupted, with a running gateway (tests/gateway/test_approvals.py)",
    ("connect",): "a stdio bridge to a running gateway",
    ("gateway", "serve"): "runs until interrupted (tests/gateway run it)",
    ("gateway", "status"): "exits 1 while no gateway runs, by design",
    ("import",): "resolves package versions from the npm and PyPI registries",
    ("connection", "add"): "an OAuth flow with a browser and a provider",
    ("connection", "app"): "registers an OAuth app with a provider",
    ("connection", "reconnect"): "an OAuth flow with a browser and a provider",
    ("connection", "refresh"): "asks the provider for a fresh token",
    ("connection", "remove"): "needs a connection, made by an OAuth flow",
}
"""Every other command, and why it is not run here (its ``--help`` still is)."""


def leaf_commands() -> list[tuple[str, ...]]:
    def walk(command: click.Command, path: tuple[str, ...], ctx: click.Context) -> Iterator[tuple[str, ...]]:
        if isinstance(command, click.Group):
            for name in command.list_commands(ctx):
                sub = command.get_command(ctx, name)
                assert sub is not None, name
                yield from walk(sub, (*path, name), click.Context(sub, parent=ctx, info_name=name))
        else:
            yield path

    return list(walk(cli, (), click.Context(cli, info_name="tbx")))


def group_commands() -> list[tuple[str, ...]]:
    groups = {path[:-1] for path in leaf_commands() if len(path) > 1}
    return sorted({()} | groups)


@pytest.fixture
def home(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TBX_", "PYTHONWARNINGS"))}
    env.update({
        "TBX_HOME": str(tmp_path / "tbx"), "TBX_PASSPHRASE": PASSPHRASE, "TBX_NEW_PASSPHRASE": PASSPHRASE + "-new",
        "TBX_CACHE_DIR": os.environ.get("TBX_CACHE_DIR", str(tmp_path / "cache")),
        "PYTHONPATH": str(REPO), "PYTHON_KEYRING_BACKEND": "tests.support.keyrings.FileKeyring",
        "TBX_TEST_KEYRING_FILE": str(tmp_path / "keyring.json"),
    })
    return env


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "console", *args], env=env, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=120)


def seed(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    """A server with one approved tool, as the runtime records it, and two remote toolboxes
    whose policy has landed: the commands below change only the local toolbox, so nothing
    is pushed (no host answers), yet each loads the push code."""
    for key in ("TBX_HOME", "TBX_PASSPHRASE"):
        monkeypatch.setenv(key, env[key])
    ws = Workspace.open(resolve_paths())
    with ws.change() as change:
        toolbox = change.repos.toolboxes.require("local")
        server = change.repos.servers.put(ServerInstance(toolbox=toolbox.id, name="time", desired_state="running"))
        pin = tool_pin("now", "The time now.", {"type": "object"}, None, None)
        change.repos.tools.put(ToolDef(server=server.id, name="now", description="The time now.",
                                       input_schema={"type": "object"}, pin=pin, approved_pin=pin,
                                       trust=Trust.APPROVED))
    for box in seed_remote(ws):
        landed = digest(policy_tables(ws.tables(), box.id))
        PushState(wanted=landed, installed=landed, installed_access=[]).write(mirror_root(ws, box))


def command_of(args: tuple[str, ...]) -> tuple[str, ...]:
    return next(path for path in leaf_commands() if args[:len(path)] == path)


def test_the_lists_name_every_command() -> None:
    leaves = set(leaf_commands())
    invoked = {command_of(args) for args in INVOKED}
    assert leaves == invoked | set(NOT_INVOKED), "put a new command in INVOKED (or NOT_INVOKED, with a reason)"
    assert not invoked & set(NOT_INVOKED)


def test_every_help_is_clean(home: dict[str, str]) -> None:
    commands = group_commands() + leaf_commands()
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda path: (path, run(home, *path, "--help")), commands))
    for path, result in results:
        assert (result.returncode, result.stderr) == (0, ""), f"tbx {' '.join(path)} --help"
        assert "Usage: tbx" in result.stdout


def test_every_successful_command_is_quiet_on_stderr(home: dict[str, str], tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    for setup in (("init",), ("toolbox", "add", "local", "--local")):
        result = run(home, *setup)
        assert (result.returncode, result.stderr) == (0, ""), f"tbx {' '.join(setup)}"
    seed(home, monkeypatch)
    for args in INVOKED:
        if args[:2] == ("vault", "restore"):
            home = {**home, "TBX_PASSPHRASE": home["TBX_NEW_PASSPHRASE"]}  # after passwd
        argv = [arg.format(tmp=tmp_path) for arg in args]
        result = run(home, *argv)
        said = f"tbx {' '.join(argv)}: exit {result.returncode}, stderr:\n{result.stderr}"
        assert result.returncode == 0, said
        assert result.stderr == HINTS.get(command_of(args), ""), said
    exported = (tmp_path / "audit.jsonl").read_text().splitlines()
    assert exported and all(json.loads(line)["action"] for line in exported)


def test_only_asyncssh_dsa_warning_is_silenced() -> None:
    """The filter is aimed: the same warning raised by other code still shows."""
    probe = ("import console.remote, asyncssh\n"
             "from cryptography.hazmat.primitives.asymmetric import dsa\n"
             "dsa.DSAPrivateKey\n")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    assert result.returncode == 0
    assert result.stderr.count("CryptographyDeprecationWarning: DSA is deprecated") == 1
    assert "<string>:3" in result.stderr
