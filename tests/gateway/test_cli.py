"""The gateway from the command line: serve, status, connect, client-config, call --as."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner
from mcp import Client
from mcp.client.stdio import StdioServerParameters, stdio_client

from console.cli import cli
from tests.gateway.conftest import Stack, subprocess_env
from tests.support.gateway import agent, tool_names

pytestmark = pytest.mark.docker

def tbx(stack: Stack, *args: str, env: dict[str, str] | None = None):  # noqa: ANN201
    result = CliRunner().invoke(cli, list(args), env={**os.environ, "TBX_HOME": str(stack.paths.data_dir), **(env or {})})
    return result


async def test_tbx_connect_bridges_a_stdio_client_to_the_gateway(stack: Stack) -> None:
    name, token = stack.agent("local", "local/time/get_current_time")
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "console", "connect", name, "--url", stack.url],
        env={**subprocess_env(), "TBX_AGENT_TOKEN": token},
    )
    async with Client(stdio_client(params), mode="legacy") as client:
        assert await tool_names(client) == ["time__get_current_time"]
        result = await client.call_tool("time__get_current_time", {"timezone": "Asia/Kolkata"})
        assert not result.is_error and "Asia/Kolkata" in result.content[0].text
        with pytest.raises(Exception, match="not granted"):
            await client.call_tool("time__convert_time", {})


def test_tbx_connect_without_a_token_says_what_to_set(stack: Stack) -> None:
    result = tbx(stack, "connect", "someone", "--url", stack.url, env={"TBX_AGENT_TOKEN": ""})
    assert result.exit_code == 2 and "set TBX_AGENT_TOKEN" in result.stderr
    assert "'tbx client-config someone --client claude-desktop --rotate'" in result.stderr


def bare_home(tmp_path: Path) -> dict[str, str]:
    """What a desktop app hands the process it launches: a PATH and a HOME, nothing of ours."""
    home = tmp_path / "home"
    home.mkdir()
    return {"PATH": os.environ["PATH"], "HOME": str(home)}


async def test_the_claude_desktop_config_runs_with_nothing_but_its_token(stack: Stack, tmp_path: Path) -> None:
    """No vault, no TBX_HOME, no passphrase where Claude Desktop runs: the URL is in the config."""
    name, _old = stack.agent("local", "local/time/get_current_time")
    printed = tbx(stack, "client-config", name, "--client", "claude-desktop", "--rotate")
    assert printed.exit_code == 0, printed.stderr
    entry = json.loads(printed.stdout)["mcpServers"][f"toolbox-{name}"]
    assert entry["args"][entry["args"].index("--url") + 1] == stack.url
    params = StdioServerParameters(command=entry["command"], args=entry["args"],
                                   env={**bare_home(tmp_path), **entry["env"]}, cwd=str(tmp_path))
    async with Client(stdio_client(params), mode="legacy") as client:
        assert await tool_names(client) == ["time__get_current_time"]
        result = await client.call_tool("time__get_current_time", {"timezone": "UTC"})
        assert not result.is_error


async def test_tbx_connect_finds_the_running_gateway_without_opening_the_vault(stack: Stack,
                                                                             tmp_path: Path) -> None:
    name, token = stack.agent("local", "local/time/get_current_time")
    env = {**bare_home(tmp_path), "TBX_HOME": str(stack.paths.data_dir), "TBX_AGENT_TOKEN": token}
    params = StdioServerParameters(command=sys.executable, args=["-m", "console", "connect", name], env=env,
                                   cwd=str(tmp_path))
    async with Client(stdio_client(params), mode="legacy") as client:
        assert await tool_names(client) == ["time__get_current_time"]


def test_tbx_connect_without_a_url_or_a_gateway_names_the_option(tmp_path: Path) -> None:
    env = {**bare_home(tmp_path), "TBX_AGENT_TOKEN": "not-asked-for", "TBX_HOME": str(tmp_path / "tbx")}
    result = subprocess.run([sys.executable, "-m", "console", "connect", "bot"], env=env, cwd=tmp_path,
                            capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=60)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr == ("error: no gateway is serving toolbox local here: pass --url with the gateway's "
                             "address, or start one with 'tbx gateway serve'\n")
    assert "not-asked-for" not in result.stderr


def test_the_old_client_name_claude_still_means_claude_desktop(stack: Stack) -> None:
    name, _token = stack.agent("local")
    old, new = (tbx(stack, "client-config", name, "--client", client) for client in ("claude", "claude-desktop"))
    assert old.exit_code == 0 and old.stdout == new.stdout


HTTP_URL_KEYS = {"claude-code": "url", "cursor": "url", "windsurf": "serverUrl", "gemini-cli": "httpUrl"}
REFERENCES = ("${TBX_AGENT_TOKEN}", "${env:TBX_AGENT_TOKEN}")


async def test_client_configs_reach_the_gateway_as_printed(stack: Stack) -> None:
    """Each printed config, its token reference filled as the client fills it, lists the
    agent's tools at the gateway; a rotated token is in the config where it may be."""
    name, token = stack.agent("local", "local/time")
    for client, url_key in HTTP_URL_KEYS.items():
        printed = tbx(stack, "client-config", name, "--client", client)
        assert printed.exit_code == 0 and token not in printed.output
        entry = json.loads(printed.stdout)["mcpServers"][f"toolbox-{name}"]
        assert entry[url_key] == f"{stack.url}/mcp"
        reference = entry["headers"]["Authorization"].removeprefix("Bearer ")
        assert reference in REFERENCES, (client, reference)
        async with agent(entry[url_key].removesuffix("/mcp"), token) as client_session:
            assert "time__get_current_time" in await tool_names(client_session)
    rotated = tbx(stack, "client-config", name, "--client", "cursor", "--rotate")
    new = json.loads(rotated.stdout)["mcpServers"][f"toolbox-{name}"]["headers"]["Authorization"].removeprefix(
        "Bearer ")
    assert new != token and rotated.stderr == "note: the new token is in the config, shown once\n"
    async with agent(stack.url, new) as client_session:
        assert "time__get_current_time" in await tool_names(client_session)
    vscode = tbx(stack, "client-config", name, "--client", "vscode", "--rotate")
    newer = vscode.stderr.rsplit(" ", 1)[-1].strip()
    assert newer not in vscode.stdout and json.loads(vscode.stdout)["inputs"][0]["password"] is True
    async with agent(stack.url, newer) as client_session:
        assert "time__get_current_time" in await tool_names(client_session)
    codex = tbx(stack, "client-config", name, "--client", "codex")
    assert tomllib.loads(codex.stdout)["mcp_servers"][f"toolbox-{name}"] == {
        "url": f"{stack.url}/mcp", "bearer_token_env_var": "TBX_AGENT_TOKEN"}


async def test_client_config_write_merges_once_and_refuses_what_it_cannot_parse(stack: Stack,
                                                                                tmp_path: Path) -> None:
    name, token = stack.agent("local")
    path = tmp_path / "settings.json"
    path.write_text('{"theme": "Dracula", "mcpServers": {"git": {"command": "uvx", "args": ["mcp-server-git"]}}}')
    first = tbx(stack, "client-config", name, "--client", "gemini-cli", "--write", "--file", str(path))
    assert first.exit_code == 0, first.stderr
    assert f'+    "toolbox-{name}": {{' in first.stdout and first.stdout.endswith(
        f"wrote {path} (the previous one is in {path}.tbx-backup)\n")
    doc = json.loads(path.read_text())
    assert doc["theme"] == "Dracula" and set(doc["mcpServers"]) == {"git", f"toolbox-{name}"}
    again = tbx(stack, "client-config", name, "--client", "gemini-cli", "--write", "--file", str(path))
    assert again.stdout == f"{path} already has toolbox-{name} as it should be; nothing written\n"
    path.write_text('{"mcpServers": {}, // a comment\n}')
    refused = tbx(stack, "client-config", name, "--client", "cursor", "--write", "--file", str(path), "--rotate")
    assert refused.exit_code == 1 and refused.stdout == "" and refused.stderr.count("\n") == 1
    assert refused.stderr.startswith(f"error: cannot parse {path} as JSON")
    async with agent(stack.url, token) as client_session:  # not rotated: the refusal came first
        await tool_names(client_session)
    generic = tbx(stack, "client-config", name, "--client", "generic", "--write")
    assert generic.exit_code == 2 and "generic has no config file to write" in generic.stderr


def test_status_sees_the_running_gateway(stack: Stack) -> None:
    status = tbx(stack, "gateway", "status", "--json")
    info = json.loads(status.stdout)
    assert info["running"] and info["url"] == stack.url and info["pid"] == os.getpid()
    stack.ws.refresh()
    assert stack.ws.repos.toolboxes.require("local").gateway_address == stack.url
    again = tbx(stack, "gateway", "serve", "--port", "0")
    assert again.exit_code == 1 and "already serves toolbox local" in again.stderr


def test_call_as_an_agent_goes_through_the_gateway(stack: Stack) -> None:
    name, _token = stack.agent("local", "local/time/get_current_time")
    allowed = tbx(stack, "call", "local/time/get_current_time", "--args", '{"timezone": "UTC"}', "--as", name)
    assert allowed.exit_code == 0, allowed.stderr
    assert json.loads(allowed.stdout)["timezone"] == "UTC"
    refused = tbx(stack, "call", "local/time/convert_time", "--args", "{}", "--as", name)
    assert refused.exit_code == 1
    assert refused.stderr == f"error: as {name}: tool 'time__convert_time' is not granted to this agent\n"
    stack.gateway.flush_audit()
    stack.ws.refresh()
    mine = [r for r in stack.ws.audit.records() if r.get("agent") == name and r["action"] == "tool.call"]
    assert [(r["actor"], r["decision"], r["detail"].get("on_behalf")) for r in mine] == [
        ("owner", "allow", True), ("owner", "deny", True)]


def test_gateway_serve_runs_as_its_own_process(stack: Stack) -> None:
    """A second toolbox on the same engine, served by a real `tbx gateway serve` process."""
    from console.services import toolboxes

    toolboxes.add_local(stack.ws, "second")
    proc = subprocess.Popen([sys.executable, "-m", "console", "gateway", "serve", "--toolbox", "second",
                             "--port", "0"], env=subprocess_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        assert proc.stdout is not None and proc.stderr is not None
        line = proc.stdout.readline()  # a gateway that serves says so on stdout, and nothing on stderr
        assert "gateway for toolbox second at http://127.0.0.1:" in line, line
        status = tbx(stack, "gateway", "status", "--toolbox", "second")
        assert status.exit_code == 0 and f"pid {proc.pid}" in status.stdout
        proc.send_signal(signal.SIGINT)
        assert proc.wait(15) == 0
        assert proc.stdout.read() == "gateway for toolbox second stopped\n" and proc.stderr.read() == ""
        gone = tbx(stack, "gateway", "status", "--toolbox", "second")
        assert gone.exit_code == 1 and "no gateway is serving toolbox second" in gone.stdout
        stack.ws.refresh()
        assert stack.ws.repos.toolboxes.require("second").gateway_address is None
    finally:
        if proc.poll() is None:
            proc.kill()
