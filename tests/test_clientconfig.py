"""Client configs in each client's documented shape, and merging them into the client's file.

The formats are checked against the clients themselves in tests/gateway/test_real_clients.py;
here: where the token goes (and where it never goes), and that a merge keeps the user's file.
"""

from __future__ import annotations

import json
import shlex
import stat
import tomllib
from pathlib import Path

import pytest

from console.errors import TbxError
from console.gateway import clientfile
from console.gateway.clientconfig import CLIENTS, TOKEN_ENV, base_url, build, default_file

URL = "http://127.0.0.1:8765"
TOKEN = "tbx_secret-token-value"


def parsed(client: str, token: str | None = None, url: str = URL) -> dict:
    config = build(client, "bot", url, token)
    if config.fmt == "toml":
        return tomllib.loads(config.text)
    assert config.fmt == "json"
    return json.loads(config.text)


def test_each_client_in_its_documented_shape() -> None:
    assert parsed("claude-desktop")["mcpServers"]["toolbox-bot"]["args"][-4:] == ["connect", "bot", "--url", URL]
    assert parsed("claude-code")["mcpServers"]["toolbox-bot"] == {
        "type": "http", "url": f"{URL}/mcp", "headers": {"Authorization": "Bearer ${TBX_AGENT_TOKEN}"}}
    assert parsed("cursor")["mcpServers"]["toolbox-bot"] == {
        "url": f"{URL}/mcp", "headers": {"Authorization": "Bearer ${env:TBX_AGENT_TOKEN}"}}
    assert parsed("windsurf")["mcpServers"]["toolbox-bot"] == {
        "serverUrl": f"{URL}/mcp", "headers": {"Authorization": "Bearer ${env:TBX_AGENT_TOKEN}"}}
    assert parsed("gemini-cli")["mcpServers"]["toolbox-bot"] == {
        "httpUrl": f"{URL}/mcp", "headers": {"Authorization": "Bearer ${TBX_AGENT_TOKEN}"}}
    assert parsed("codex") == {"mcp_servers": {"toolbox-bot": {"url": f"{URL}/mcp", "bearer_token_env_var": TOKEN_ENV}}}
    vscode = parsed("vscode")
    assert vscode["servers"]["toolbox-bot"]["headers"] == {"Authorization": "Bearer ${input:tbx-token-bot}"}
    assert vscode["inputs"] == [{"type": "promptString", "id": "tbx-token-bot", "password": True,
                                 "description": "Toolbox Console token of agent bot"}]
    generic = build("generic", "bot", URL).text
    assert f"URL: {URL}/mcp" in generic and "Header: Authorization: Bearer PASTE-THE-TOKEN-OF-bot" in generic


def test_the_claude_code_command_is_the_documented_one() -> None:
    config = build("claude-code", "bot", URL, TOKEN)
    assert config.command is not None
    assert shlex.split(config.command) == ["claude", "mcp", "add", "--transport", "http", "--scope", "user",
                                           "toolbox-bot", f"{URL}/mcp", "--header", f"Authorization: Bearer {TOKEN}"]
    # Without a new token the shell puts the variable's value in when the line runs.
    assert '--header "Authorization: Bearer $TBX_AGENT_TOKEN"' in (build("claude-code", "bot", URL).command or "")


@pytest.mark.parametrize("client", CLIENTS)
def test_a_token_is_written_only_where_asked_and_never_in_a_shared_file(client: str) -> None:
    assert TOKEN not in build(client, "bot", URL).text
    rotated = build(client, "bot", URL, TOKEN)
    # VS Code's and Claude Code's files sit in the project (often committed); Codex takes
    # the token from its environment only: the new token is told, not written.
    shared = client in ("vscode", "claude-code", "codex")
    assert (TOKEN in rotated.text) is not shared
    assert (TOKEN in rotated.token_note) is shared


def test_an_ipv6_gateway_host_is_bracketed() -> None:
    assert base_url("::1", 8765) == "http://[::1]:8765"
    assert base_url("127.0.0.1", 8765) == "http://127.0.0.1:8765"
    assert parsed("cursor", url=base_url("::1", 9))["mcpServers"]["toolbox-bot"]["url"] == "http://[::1]:9/mcp"


def test_where_each_client_keeps_its_config(tmp_path: Path) -> None:
    assert default_file("claude-desktop", tmp_path, "linux") == tmp_path / ".config/Claude/claude_desktop_config.json"
    assert default_file("claude-desktop", tmp_path, "darwin") == (
        tmp_path / "Library/Application Support/Claude/claude_desktop_config.json")
    assert default_file("codex", tmp_path) == tmp_path / ".codex/config.toml"
    assert default_file("gemini-cli", tmp_path) == tmp_path / ".gemini/settings.json"
    assert default_file("windsurf", tmp_path) == tmp_path / ".codeium/windsurf/mcp_config.json"
    assert default_file("vscode", tmp_path) == Path(".vscode/mcp.json")
    assert default_file("claude-code", tmp_path) == Path(".mcp.json")
    assert default_file("generic", tmp_path) is None


# -- merging into the client's file -----------------------------------------------------------

CURSOR_FILE = {"mcpServers": {"github": {"url": "https://api.githubcopilot.com/mcp/",
                                         "headers": {"Authorization": "Bearer ${env:GITHUB_PAT}"}},
                              "toolbox-bot": {"url": "http://old:1/mcp"}},
               "somethingElse": [1, 2]}


def test_a_json_merge_keeps_the_users_entries_and_replaces_ours(tmp_path: Path) -> None:
    path = tmp_path / "mcp.json"
    path.write_text(json.dumps(CURSOR_FILE, indent=4))
    change = clientfile.merge(build("cursor", "bot", URL), path)
    merged = json.loads(change.new)
    assert merged["mcpServers"]["github"] == CURSOR_FILE["mcpServers"]["github"]
    assert merged["somethingElse"] == [1, 2]
    assert merged["mcpServers"]["toolbox-bot"]["url"] == f"{URL}/mcp"
    assert '\n    "mcpServers"' in change.new  # the file's own indent
    assert '-            "url": "http://old:1/mcp"' in change.diff()
    backup = clientfile.write(change)
    assert backup is not None and json.loads(backup.read_text()) == CURSOR_FILE
    again = clientfile.merge(build("cursor", "bot", URL), path)
    assert not again.changed and again.diff() == ""


def test_vscode_inputs_are_merged_by_id(tmp_path: Path) -> None:
    path = tmp_path / "mcp.json"
    theirs = {"type": "promptString", "id": "gh", "password": True, "description": "GitHub"}
    path.write_text(json.dumps({"inputs": [theirs], "servers": {"gh": {"type": "stdio", "command": "gh"}}}))
    for _ in range(2):
        clientfile.write(clientfile.merge(build("vscode", "bot", URL), path))
    doc = json.loads(path.read_text())
    assert [i["id"] for i in doc["inputs"]] == ["gh", "tbx-token-bot"]
    assert set(doc["servers"]) == {"gh", "toolbox-bot"}


CODEX_FILE = """\
model = "gpt-5-codex"

[mcp_servers.toolbox-bot]
url = "http://stale:1/mcp"

[mcp_servers.toolbox-bot.env_http_headers]
X-Team = "TEAM"

[mcp_servers.docs]
command = "npx"
args = ["-y", "docs-mcp"]
"""


def test_a_toml_merge_rewrites_only_our_table(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(CODEX_FILE)
    change = clientfile.merge(build("codex", "bot", URL), path)
    doc = tomllib.loads(change.new)
    assert doc["model"] == "gpt-5-codex" and doc["mcp_servers"]["docs"]["args"] == ["-y", "docs-mcp"]
    assert doc["mcp_servers"]["toolbox-bot"] == {"url": f"{URL}/mcp", "bearer_token_env_var": TOKEN_ENV,
                                                 "env_http_headers": {"X-Team": "TEAM"}}
    clientfile.write(change)
    assert not clientfile.merge(build("codex", "bot", URL), path).changed


def test_a_toml_merge_appends_to_a_file_without_our_table(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('model = "o3"')
    change = clientfile.merge(build("codex", "bot", URL), path)
    assert change.new.startswith('model = "o3"\n\n[mcp_servers.toolbox-bot]\n')
    assert tomllib.loads(change.new)["mcp_servers"]["toolbox-bot"]["bearer_token_env_var"] == TOKEN_ENV


@pytest.mark.parametrize(("client", "name", "text", "says"), [
    ("cursor", "mcp.json", '{"mcpServers": {}, // mine\n}', "cannot parse"),
    ("cursor", "mcp.json", "[1, 2]", "is not a JSON object"),
    ("cursor", "mcp.json", '{"mcpServers": []}', "'mcpServers' in"),
    ("codex", "config.toml", "[mcp_servers\nurl = 1", "cannot parse"),
    ("codex", "config.toml", 'mcp_servers = { toolbox-bot = { url = "x" } }', "in a form tbx does not rewrite"),
])
def test_a_file_it_cannot_read_is_refused_untouched(tmp_path: Path, client: str, name: str, text: str,
                                                    says: str) -> None:
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(TbxError, match=says) as caught:
        clientfile.merge(build(client, "bot", URL), path)
    assert "\n" not in str(caught.value) and str(path) in str(caught.value)
    assert path.read_text() == text and list(tmp_path.iterdir()) == [path]


def test_a_new_file_is_made_private(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "claude_desktop_config.json"
    change = clientfile.merge(build("claude-desktop", "bot", URL, TOKEN), path)
    assert change.old is None and change.diff().startswith("--- /dev/null")
    assert clientfile.write(change) is None
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(path.read_text())["mcpServers"]["toolbox-bot"]["env"] == {TOKEN_ENV: TOKEN}


def test_the_vscode_config_and_a_merged_file_pass_vscodes_own_schema(tmp_path: Path) -> None:
    """VS Code cannot check a connection without an account: its published schema can."""
    import jsonschema

    schema = json.loads((Path(__file__).parent / "fixtures" / "clients" / "vscode-mcp.schema.json").read_text())
    validator = jsonschema.Draft7Validator(schema)
    assert not list(validator.iter_errors(parsed("vscode")))
    path = tmp_path / "mcp.json"
    path.write_text(json.dumps({"servers": {"git": {"type": "stdio", "command": "uvx", "args": ["mcp-server-git"]}},
                                "inputs": [{"type": "promptString", "id": "gh", "description": "GitHub"}]}))
    merged = json.loads(clientfile.merge(build("vscode", "bot", URL, TOKEN), path).new)
    assert not list(validator.iter_errors(merged))
    # The schema does tell formats apart: the Cursor config is no VS Code config.
    assert list(validator.iter_errors(parsed("cursor")))


def test_the_bridge_command_survives_a_space_in_its_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("shutil.which", lambda _name: None)
    monkeypatch.setattr("sys.executable", "/Users/Ada Lovelace/venv/bin/python")
    entry = parsed("claude-desktop")["mcpServers"]["toolbox-bot"]
    assert entry["command"] == "/Users/Ada Lovelace/venv/bin/python"
    assert entry["args"] == ["-m", "console", "connect", "bot", "--url", URL]
