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
    # The owner calls it directly (no grant needed), audited; its log is not ours to read.
    called = tbx(stack, "call", "local/cli-far/echo", "--args", '{"text": "owner"}')
    assert called.returncode == 0 and "echo: owner" in called.stdout, called.stderr
    logs = tbx(stack, "server", "logs", "local/cli-far")
    assert logs.returncode != 0 and "remote server" in logs.stderr
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


def test_tbx_import_adds_a_url_entry_and_an_mcp_remote_command_as_remote_servers(
        stack: Stack, remote: RemoteServer, tmp_path: Path) -> None:
    config = tmp_path / "claude_desktop_config.json"
    config.write_text(json.dumps({"mcpServers": {
        "far-url": {"type": "http", "url": remote.url, "headers": {"X-Api-Key": CANARY}},
        "far-bridged": {"command": "npx", "args": ["-y", "mcp-remote", remote.url, "--header", "X-Api-Key:${KEY}"],
                        "env": {"KEY": CANARY}},
    }}))
    dry = tbx(stack, "import", str(config), "--dry-run")
    assert dry.returncode == 0 and "2 to add" in dry.stdout and f"+ far-url  remote {remote.url}" in dry.stdout
    assert CANARY not in dry.stdout + dry.stderr
    done = tbx(stack, "import", str(config))
    assert done.returncode == 0, done.stderr
    assert "added far-url" in done.stdout and "added far-bridged" in done.stdout
    assert CANARY not in done.stdout + done.stderr
    stack.ws.refresh()
    box = stack.ws.repos.toolboxes.require("local")
    for name in ("far-url", "far-bridged"):
        server = stack.ws.repos.servers.by_name(box.id, name)
        assert server is not None and (server.kind, server.url) == ("remote", remote.url)
        assert stack.ws.repos.secrets.get(server.secret_refs["X-Api-Key"]).value == CANARY
        assert tbx(stack, "server", "remove", f"local/{name}", "--yes").returncode == 0
    assert all(r["headers"].get("x-api-key") == CANARY for r in remote.requests())
    assert CANARY not in everything_written(stack)
