"""What 'tbx client-config' prints, checked by the real clients (issue 19).

The clients come from the npm registry (tests/support/npm/mcp-clients: Claude Code,
Gemini CLI, Codex, MCP Inspector 2.x on Node 22) and run with a HOME of their own, a
PATH and TBX_AGENT_TOKEN: nothing of ours, no model account. Those that can check a
connection without an account do (Claude Code, Gemini CLI, the Inspector); Codex has no
such check, so its own parser reads the file. One gateway for the module, with the time
server only.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from console.cli import cli
from tests.gateway.conftest import Stack, _stack
from tests.support.npm_tools import require
from tests.support.sharedkeys import shared_keyring_home

pytestmark = pytest.mark.docker

TOOL = "time__get_current_time"
QUIET = {"DISABLE_TELEMETRY": "1", "DISABLE_AUTOUPDATER": "1", "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
         "NO_COLOR": "1"}


@pytest.fixture(scope="module")
def clients() -> Path:
    return require("mcp-clients") / "node_modules" / ".bin"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, docker_engine) -> Iterator[Stack]:  # noqa: ANN001
    root = tmp_path_factory.mktemp("clients")
    with shared_keyring_home(root):
        yield from _stack(root, ("time",))


def tbx(stack: Stack, *args: str) -> str:
    result = CliRunner().invoke(cli, list(args), env={**os.environ, "TBX_HOME": str(stack.paths.data_dir)})
    assert result.exit_code == 0, result.stderr
    return result.stdout


def run(clients: Path, home: Path, *argv: str, token: str | None, cwd: Path | None = None,
        timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """A client as a user starts it."""
    return subprocess.run([str(clients / argv[0]), *argv[1:]], env=client_env(clients, home, token), cwd=cwd or home,
                          capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)


def client_env(clients: Path, home: Path, token: str | None) -> dict[str, str]:
    """Its own HOME, a PATH, the agent's token (when given): nothing of ours."""
    env = {"PATH": f"{clients}:/usr/bin:/bin", "HOME": str(home), **QUIET}
    if token is not None:
        env["TBX_AGENT_TOKEN"] = token
    return env


def home_of(tmp_path: Path, name: str) -> Path:
    home = tmp_path / name
    home.mkdir()
    return home


def line_of(listing: str, name: str) -> str:
    return next((line for line in listing.splitlines() if line.startswith(name)), "")


def test_claude_code_connects_with_the_project_file_and_with_the_add_line(stack: Stack, clients: Path,
                                                                          tmp_path: Path) -> None:
    name, token = stack.agent("local", "local/time/get_current_time")
    key = f"toolbox-{name}"
    home, project = home_of(tmp_path, "home"), home_of(tmp_path, "project")
    tbx(stack, "client-config", name, "--client", "claude-code", "--write", "--file", str(project / ".mcp.json"))
    # What a person approving the project's servers in 'claude' leaves in ~/.claude.json.
    (home / ".claude.json").write_text(json.dumps({"projects": {str(project): {
        "enabledMcpjsonServers": [key], "hasTrustDialogAccepted": True}}}))
    listed = run(clients, home, "claude", "mcp", "list", token=token, cwd=project)
    assert "✔ Connected" in line_of(listed.stdout, key), listed.stdout + listed.stderr
    refused = run(clients, home, "claude", "mcp", "list", token="not-the-token", cwd=project)
    assert "Failed to connect" in line_of(refused.stdout, key) and "401" in refused.stdout
    # The 'claude mcp add' line, run by a shell that has the token (no project file here).
    other = home_of(tmp_path, "other")
    printed = CliRunner().invoke(cli, ["client-config", name, "--client", "claude-code"],
                                 env={**os.environ, "TBX_HOME": str(stack.paths.data_dir)})
    command = printed.stderr.split("or add it for you alone: ", 1)[1].strip()
    added = subprocess.run(["sh", "-c", command], env=client_env(clients, other, token), cwd=other,
                           capture_output=True, text=True, timeout=120)
    assert added.returncode == 0, added.stderr
    assert token in (other / ".claude.json").read_text()
    listed = run(clients, other, "claude", "mcp", "list", token=None)
    assert "✔ Connected" in line_of(listed.stdout, key), listed.stdout + listed.stderr


def test_claude_code_runs_the_claude_desktop_bridge_with_only_the_token(stack: Stack, clients: Path,
                                                                        tmp_path: Path) -> None:
    """Claude Desktop itself cannot run here; Claude Code launches stdio servers the same
    way (command, args, env), so it starts the bridge exactly as the snippet says."""
    name, _token = stack.agent("local", "local/time/get_current_time")
    entry = json.loads(tbx(stack, "client-config", name, "--client", "claude-desktop", "--rotate"))["mcpServers"][
        f"toolbox-{name}"]
    home = home_of(tmp_path, "home")
    added = run(clients, home, "claude", "mcp", "add-json", "--scope", "user", f"toolbox-{name}", json.dumps(entry),
                token=None)
    assert added.returncode == 0, added.stderr
    listed = run(clients, home, "claude", "mcp", "list", token=None)
    assert "✔ Connected" in line_of(listed.stdout, f"toolbox-{name}"), listed.stdout + listed.stderr


def test_gemini_cli_connects_with_its_settings(stack: Stack, clients: Path, tmp_path: Path) -> None:
    name, token = stack.agent("local", "local/time/get_current_time")
    home, project = home_of(tmp_path, "home"), home_of(tmp_path, "project")
    tbx(stack, "client-config", name, "--client", "gemini-cli", "--write", "--file",
        str(home / ".gemini" / "settings.json"))
    # Gemini CLI suppresses every server in a folder the user has not trusted.
    (home / ".gemini" / "trustedFolders.json").write_text(json.dumps({str(project): "TRUST_FOLDER"}))
    listed = run(clients, home, "gemini", "mcp", "list", token=token, cwd=project)
    said = listed.stdout + listed.stderr  # Gemini CLI lists on stderr
    assert line_of(said, f"✓ toolbox-{name}: {stack.url}/mcp (http)").endswith("- Connected"), said
    refused = run(clients, home, "gemini", "mcp", "list", token="not-the-token", cwd=project)
    assert line_of(refused.stdout + refused.stderr, f"✗ toolbox-{name}").endswith("- Disconnected")


def test_codex_reads_its_config_toml(stack: Stack, clients: Path, tmp_path: Path) -> None:
    name, _token = stack.agent("local")
    home = home_of(tmp_path, "home")
    config = home / ".codex" / "config.toml"
    config.parent.mkdir()
    config.write_text('model = "gpt-5-codex"\n\n[mcp_servers.docs]\ncommand = "npx"\nargs = ["-y", "docs-mcp"]\n')
    tbx(stack, "client-config", name, "--client", "codex", "--write", "--file", str(config))
    shown = run(clients, home, "codex", "mcp", "get", f"toolbox-{name}", "--json", token=None)
    assert shown.returncode == 0, shown.stderr
    transport = json.loads(shown.stdout)["transport"]
    assert transport["type"] == "streamable_http" and transport["url"] == f"{stack.url}/mcp"
    assert transport["bearer_token_env_var"] == "TBX_AGENT_TOKEN"
    listed = run(clients, home, "codex", "mcp", "list", token=None)
    assert "docs" in listed.stdout and f"toolbox-{name}" in listed.stdout


def inspector_tools(result: subprocess.CompletedProcess[str]) -> list[str]:
    assert result.returncode == 0, result.stdout + result.stderr
    return [tool["name"] for tool in json.loads(result.stdout[result.stdout.index("{"):])["tools"]]


def test_the_inspector_over_http_and_through_tbx_connect(stack: Stack, clients: Path, tmp_path: Path) -> None:
    name, _token = stack.agent("local", "local/time/get_current_time")
    home = home_of(tmp_path, "home")
    generic = tbx(stack, "client-config", name, "--client", "generic", "--rotate")
    url = generic.split("URL: ", 1)[1].split("\n", 1)[0]
    header = generic.split("Header: ", 1)[1].split("\n", 1)[0]
    over_http = run(clients, home, "mcp-inspector", "--cli", url, "--transport", "http", "--header", header,
                    "--method", "tools/list", token=None)
    assert inspector_tools(over_http) == [TOOL]
    config = tmp_path / "claude_desktop_config.json"
    tbx(stack, "client-config", name, "--client", "claude-desktop", "--rotate", "--write", "--file", str(config))
    bridged = run(clients, home, "mcp-inspector", "--cli", "--config", str(config), "--server", f"toolbox-{name}",
                  "--method", "tools/list", token=None)
    assert inspector_tools(bridged) == [TOOL]
    called = run(clients, home, "mcp-inspector", "--cli", "--config", str(config), "--server", f"toolbox-{name}",
                 "--method", "tools/call", "--tool-name", TOOL, "--tool-arg", "timezone=UTC", token=None)
    assert called.returncode == 0 and '"timezone": "UTC"' in called.stdout.replace('\\"', '"'), called.stdout
