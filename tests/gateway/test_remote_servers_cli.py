"""``tbx server add --url``, list, stop, start and remove of a remote server, as a user
runs them: the real command in a process of its own, against the module's stack."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import CANARY
from tests.gateway.conftest import REPO, Stack, subprocess_env
from tests.gateway import test_remote_servers as shared
from tests.support.remote_mcp import RemoteServer

pytestmark = [pytest.mark.docker, pytest.mark.filterwarnings("ignore::mcp.MCPDeprecationWarning")]
stack, remote, everything_written = shared.stack, shared.remote, shared.everything_written


def tbx(stack: Stack, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "console", *args], capture_output=True, text=True, timeout=120,
                          cwd=REPO, env={**subprocess_env(), **(env or {})}, stdin=subprocess.DEVNULL)


def test_tbx_server_add_url_lists_starts_stops_and_removes_a_remote_server(stack: Stack, remote: RemoteServer) -> None:
    added = tbx(stack, "server", "add", "local", "--url", remote.url, "--name", "cli-far",
                "--header", "X-Api-Key=FAR_KEY", env={"FAR_KEY": CANARY})
    assert added.returncode == 0, added.stderr
    assert CANARY not in added.stdout + added.stderr
    assert all(r["headers"].get("x-api-key") == CANARY for r in remote.requests())
    listed = tbx(stack, "server", "list", "local", "--json")
    assert listed.returncode == 0, listed.stderr
    [row] = [r for r in json.loads(listed.stdout) if r["name"] == "cli-far"]
    assert (row["kind"], row["state"], row["health"], row["image"]) == ("remote", "remote", "healthy", None)
    assert row["ping_ms"] > 0 and row["tools"] == 2
    assert tbx(stack, "server", "stop", "local/cli-far").returncode == 0
    [row] = [r for r in json.loads(tbx(stack, "server", "list", "local", "--json").stdout) if r["name"] == "cli-far"]
    assert row["health"] == "stopped"
    assert tbx(stack, "server", "start", "local/cli-far").returncode == 0
    removed = tbx(stack, "server", "remove", "local/cli-far", "--yes")
    assert removed.returncode == 0, removed.stderr
    stack.ws.refresh()
    assert not any(s.name.startswith("local/cli-far/") for s in stack.ws.repos.secrets)
    assert CANARY not in everything_written(stack)


def test_a_header_without_a_value_is_refused_without_asking_when_not_interactive(
        stack: Stack, remote: RemoteServer) -> None:
    env = {k: v for k, v in os.environ.items() if k != "NOT_SET_ANYWHERE"}
    done = tbx(stack, "server", "add", "local", "--url", remote.url, "--name", "nokey",
               "--header", "X-Api-Key=NOT_SET_ANYWHERE", env=env)
    assert done.returncode != 0 and "NOT_SET_ANYWHERE" in done.stderr
    plain = tbx(stack, "server", "add", "local", "--url", "http://example.org/mcp", "--name", "plain")
    assert plain.returncode != 0 and "https" in plain.stderr
    assert not Path(remote.headers_file).exists() or not remote.requests()
