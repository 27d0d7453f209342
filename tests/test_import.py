"""Importing Claude Desktop, Cursor and VS Code MCP configurations."""

from __future__ import annotations

import json
import shlex
import os
import shutil
import subprocess
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from console.catalog import load_catalog
from console.catalog.importer import ImportPlan, plan_import, render_plan, server_name
from console.catalog.jsonc import loads_jsonc
from console.catalog.launchers import Unsupported, parse_launch
from console.catalog.sensitive import is_secret, is_secret_name, looks_like_secret
from console.paths import Paths
from console.services.toolboxes import add_local
from console.workspace import Workspace
from tests.conftest import CANARY

FIXTURES = Path(__file__).parent / "fixtures" / "import"
CLAUDE = FIXTURES / "claude_desktop_config.json"
CURSOR = FIXTURES / "cursor_mcp.json"
VSCODE = FIXTURES / "vscode" / ".vscode" / "mcp.json"
SETTINGS = FIXTURES / "vscode_settings.json"
# Secret values planted in the fixtures besides the canary.
OTHER_SECRETS = ["ghp_R7nWm2kQ9xTz4LbV8cYp3HdJ6sFa1GeN0uKi", "hunter2hunter2"]


def items(plan: ImportPlan) -> dict[str, Any]:
    return {item.name: item for item in plan.items}


def reasons(plan: ImportPlan) -> dict[str, str]:
    return {s.name: s.reason for s in plan.skipped}


def remotes(plan: ImportPlan) -> dict[str, Any]:
    return {item.name: item for item in plan.remotes}


def assert_no_secret(*texts: str) -> None:
    for text in texts:
        assert CANARY not in text
        for value in OTHER_SECRETS:
            assert value not in text


def write_config(path: Path, servers: dict[str, Any]) -> Path:
    path.write_text(json.dumps({"mcpServers": servers}), encoding="utf-8")
    return path


# -- Claude Desktop ----------------------------------------------------------------------


def test_claude_desktop_plan() -> None:
    assert CANARY in CLAUDE.read_text()  # the fixture really plants the canary
    plan = plan_import(CLAUDE)
    assert plan.format.startswith("Claude Desktop")
    planned = items(plan)
    assert list(planned) == ["filesystem", "github", "memory", "time", "fetch"]

    github = planned["github"]
    assert github.key == "GitHub"
    assert github.secrets == {"GITHUB_PERSONAL_ACCESS_TOKEN": CANARY}
    assert github.env == {}
    assert github.entry.origin == "import"
    assert github.entry.id == "github"
    assert github.entry.source.package.model_dump(exclude_defaults=True) == {
        "kind": "npm", "package": "@modelcontextprotocol/server-github", "version": "2025.4.8"}
    assert github.entry.command == ["mcp-server-github"]
    assert [s.name for s in github.entry.secrets] == ["GITHUB_PERSONAL_ACCESS_TOKEN"]
    assert github.entry.network == "egress"  # known from the catalog
    assert github.entry.oauth.provider == "github"
    assert github.resolved is None  # pinned in the file

    memory = planned["memory"]  # /usr/local/bin/npx --yes
    assert memory.entry.command == ["mcp-server-memory"]
    assert memory.env == {"MEMORY_FILE_PATH": "/Users/alice/.mcp/memory.jsonl"}
    time = planned["time"]
    assert time.entry.source.package.kind == "pypi"
    assert time.entry.source.package.version == "2026.10.19"
    assert time.entry.command == ["mcp-server-time", "--local-timezone=Europe/Berlin"]
    fetch = planned["fetch"]  # uvx pkg@version; a token-shaped value under a harmless name
    assert fetch.entry.source.package.version == "2026.10.24"
    assert set(fetch.secrets) == {"UPSTREAM_CONFIG"} and fetch.env == {}

    # Host paths this machine does not have stay as they are, and the plan says so.
    filesystem = planned["filesystem"]
    assert filesystem.mounts == []
    assert any("/Users/alice/Desktop" in n and "does not exist here" in n for n in filesystem.notes)


def test_claude_desktop_skips_with_reasons() -> None:
    why = reasons(plan_import(CLAUDE))
    assert set(why) == {"puppeteer", "my-notes", "weather", "postgres", "context7"}
    assert "docker" in why["puppeteer"]
    assert "local script (node /Users/alice/code/notes-mcp/build/index.js)" in why["my-notes"]
    assert "local script (python" in why["weather"]
    assert "token on its command line" in why["postgres"]
    assert "secret on its command line (--api-key)" in why["context7"]
    assert all("\n" not in reason for reason in why.values())
    assert_no_secret(*why.values())


def test_dry_run_never_shows_secrets(tbx) -> None:  # noqa: ANN001
    text = tbx("import", str(CLAUDE), "--dry-run")
    assert text.exit_code == 0, text.stderr
    assert "GITHUB_PERSONAL_ACCESS_TOKEN=<secret>" in text.stdout
    assert "- skipped puppeteer:" in text.stdout
    as_json = tbx("import", str(CLAUDE), "--dry-run", "--json")
    assert as_json.exit_code == 0, as_json.stderr
    data = json.loads(as_json.stdout)
    github = next(i for i in data["items"] if i["name"] == "github")
    assert github["secrets"] == {"GITHUB_PERSONAL_ACCESS_TOKEN": "<secret>"}
    assert {s["name"] for s in data["skipped"]} >= {"puppeteer", "context7"}
    assert_no_secret(text.stdout, text.stderr, as_json.stdout, as_json.stderr)
    assert_no_secret(repr(plan_import(CLAUDE)))


# -- Cursor ------------------------------------------------------------------------------


def test_cursor_plan() -> None:
    plan = plan_import(CURSOR)
    planned = items(plan)
    assert list(planned) == ["git", "slack-workspace", "slack-workspace-2"]
    git = planned["git"]  # uvx --from pkg==ver cmd
    assert git.entry.command == ["mcp-server-git", "--repository", "/Users/alice/src/shop"]
    assert git.entry.source.package.package == "mcp-server-git"
    slack = planned["slack-workspace"]
    assert slack.env == {"SLACK_TEAM_ID": "T01234567"}
    assert slack.secrets == {"SLACK_BOT_TOKEN": f"xoxb-{CANARY}"}
    # Windows "cmd /c npx ..." with an empty token: created only once a value is given.
    windows = planned["slack-workspace-2"]
    assert windows.key == "slack_workspace"
    assert windows.entry.command == ["mcp-server-slack"]
    assert windows.secrets == {}
    assert [(p.env, p.secret) for p in windows.inputs] == [("SLACK_BOT_TOKEN", True)]
    why = reasons(plan)
    # A key in the URL's query would land outside the vault: listed with the way to fix it.
    assert why["linear"].startswith("a remote server at mcp.linear.app whose URL carries a key (token=...)")
    assert "local executable (/Users/alice/bin/my-mcp-server)" in why["local-tool"]
    assert "'uv run' runs a local project" in why["project-runner"]
    assert_no_secret(render_plan(plan), json.dumps(plan.to_json()), *why.values())


# -- VS Code -----------------------------------------------------------------------------


def test_vscode_mcp_json_with_comments_and_inputs() -> None:
    plan = plan_import(VSCODE)
    assert plan.format == "VS Code mcp.json"
    planned = items(plan)
    assert list(planned) == ["git", "github", "slack"]
    # ${workspaceFolder} is the folder holding .vscode, and it exists: it becomes a mount.
    git = planned["git"]
    workspace_folder = VSCODE.parent.parent.absolute()
    assert [(m.source, m.target, m.read_only) for m in git.mounts] == [(str(workspace_folder), "/mnt/vscode", False)]
    assert git.entry.command == ["mcp-server-git", "--repository", "/mnt/vscode"]
    assert [m.target for m in git.entry.mounts] == ["/mnt/vscode"]
    github = planned["github"]
    assert github.secrets == {}
    [pending] = github.inputs
    assert pending.env == "GITHUB_PERSONAL_ACCESS_TOKEN" and pending.secret
    assert "github_token" in pending.label and "GitHub Personal Access Token" in pending.label
    slack = planned["slack"]
    assert slack.secrets == {"SLACK_BOT_TOKEN": CANARY}
    assert [(p.env, p.secret) for p in slack.inputs] == [("SLACK_TEAM_ID", False)]
    why = reasons(plan)
    # A remote server whose header takes a VS Code input: asked for when applied, as a secret.
    docs = remotes(plan)["docs-api"]
    assert (docs.url, docs.transport, docs.headers) == ("https://api.example.com/mcp", "streamable-http", {})
    [asked] = docs.inputs
    assert asked.header == "Authorization" and "github_token" in asked.label and asked.value("t") == "Bearer t"
    assert "input 'context7_key' on its command line" in why["context7"]
    assert_no_secret(render_plan(plan), json.dumps(plan.to_json()))


def test_vscode_user_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TBX_TEST_UNSET_VARIABLE", raising=False)
    plan = plan_import(SETTINGS)
    assert plan.format.startswith("VS Code settings.json")
    planned = items(plan)
    assert list(planned) == ["time-berlin", "everything"]
    assert planned["time-berlin"].entry.command == ["mcp-server-time", "--local-timezone", "Europe/Berlin"]
    assert planned["everything"].entry.command == ["mcp-server-everything", "stdio"]
    [pending] = planned["everything"].inputs
    assert pending.env == "OPENAI_API_KEY" and pending.secret and "TBX_TEST_UNSET_VARIABLE" in pending.label
    assert (remotes(plan)["remote-sse"].url, remotes(plan)["remote-sse"].transport) == (
        "https://mcp.example.org/sse", "sse")
    # With the variable set, ${env:...} is filled in, as a secret.
    monkeypatch.setenv("TBX_TEST_UNSET_VARIABLE", CANARY)
    everything = items(plan_import(SETTINGS))["everything"]
    assert everything.secrets == {"OPENAI_API_KEY": CANARY} and everything.inputs == []
    assert_no_secret(render_plan(plan_import(SETTINGS)))


# -- host paths --------------------------------------------------------------------------


def test_host_paths_become_mounts(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    data = tmp_path / "data"
    data.mkdir()
    (data / "app.db").write_bytes(b"")
    config = write_config(tmp_path / "claude.json", {
        "files": {"command": "npx", "args": ["-y", "@modelcontextprotocol/server-filesystem@2026.8.31",
                                              str(docs), str(docs / "sub" / ".."), "/nonexistent-tbx/x"]},
        "db": {"command": "uvx", "args": ["mcp-server-sqlite==2025.4.25", f"--db-path={data / 'app.db'}"]},
        "mem": {"command": "npx", "args": ["-y", "@modelcontextprotocol/server-memory@2026.8.31"],
                "env": {"MEMORY_FILE_PATH": str(data / "new.jsonl")}},
    })
    planned = items(plan_import(config))
    files = planned["files"]
    assert files.entry.command == ["mcp-server-filesystem", "/mnt/docs", "/mnt/docs", "/nonexistent-tbx/x"]
    assert [(m.source, m.target) for m in files.mounts] == [(str(docs), "/mnt/docs")]
    # A file is mounted through its directory (SQLite writes journals next to it).
    db = planned["db"]
    assert db.entry.command == ["mcp-server-sqlite", "--db-path=/mnt/data/app.db"]
    assert [(m.source, m.target) for m in db.mounts] == [(str(data), "/mnt/data")]
    mem = planned["mem"]
    assert mem.env == {"MEMORY_FILE_PATH": "/mnt/data/new.jsonl"}
    assert any("does not exist yet" in n for n in mem.notes)


def test_read_only_when_the_catalog_knows_the_server_is(tmp_path: Path, tbx_home: Paths) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    builtin = load_catalog(tbx_home).get("filesystem").model_dump(mode="json")
    builtin["mounts"] = [{"target": "/data", "description": "read only", "read_only": True}]
    tbx_home.catalog_file.write_text(json.dumps([builtin]), encoding="utf-8")
    config = write_config(tmp_path / "claude.json", {"docs": {
        "command": "npx", "args": ["-y", "@modelcontextprotocol/server-filesystem@2026.8.31", str(docs)]}})
    [item] = plan_import(config, catalog=load_catalog(tbx_home)).items
    assert [(m.target, m.read_only) for m in item.mounts] == [("/mnt/docs", True)]
    assert item.entry.mounts[0].read_only
    assert "(read-only)" in render_plan(plan_import(config, catalog=load_catalog(tbx_home)))
    [writable] = plan_import(config).items
    assert not writable.mounts[0].read_only


# -- bad files ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("broken.json", "is not valid JSON (line 4, column 5"),
        ("not_mcp.json", 'has no MCP servers; expected "mcpServers"'),
        ("servers_not_object.json", '"mcpServers" must be an object of servers by name'),
        ("missing.json", "no file"),
    ],
)
def test_bad_files_are_one_line_errors(tbx, name: str, expected: str) -> None:  # noqa: ANN001
    result = tbx("import", str(FIXTURES / name), "--dry-run")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: ") and expected in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr


def test_jsonc_keeps_strings_and_positions() -> None:
    text = '{\n  // a comment\n  "url": "http://x//y /* no */",\n  "list": [1, 2,],\n}'
    assert loads_jsonc(text) == {"url": "http://x//y /* no */", "list": [1, 2]}
    with pytest.raises(json.JSONDecodeError) as caught:
        loads_jsonc('{\n  /* c */ "a": 1\n  "b": 2\n}')
    assert caught.value.lineno == 3


# -- names, secrets, launchers -----------------------------------------------------------


def test_server_names_are_valid_and_unique() -> None:
    taken: set[str] = set()
    assert server_name("GitHub Enterprise!", taken) == "github-enterprise"
    assert server_name("github_enterprise", taken) == "github-enterprise-2"
    assert server_name("___", taken) == "server"
    long = server_name("x" * 60, taken)
    assert long == "x" * 40
    assert server_name("X" * 60, taken) == "x" * 38 + "-2"


@pytest.mark.parametrize("name", ["GITHUB_PERSONAL_ACCESS_TOKEN", "OPENAI_API_KEY", "DB_PASSWORD", "CLIENT_SECRET",
                                  "GITLAB_PAT", "slack-bot-token", "APIKEY"])
def test_secret_names(name: str) -> None:
    assert is_secret_name(name)


@pytest.mark.parametrize("name", ["MEMORY_FILE_PATH", "PATH", "SLACK_TEAM_ID", "KEYBOARD_LAYOUT", "LOG_LEVEL"])
def test_plain_names(name: str) -> None:
    assert not is_secret(name, "info")


@pytest.mark.parametrize("value", ["ghp_R7nWm2kQ9xTz4LbV8cYp3HdJ6sFa1GeN0uKi", "github_pat_11ABCDEFG0123456789_abcdefghij",
                                   "xoxb-1234567890-abcdefghij", "sk-ant-api03-abcdefghijklmnop", "AKIAIOSFODNN7EXAMPLE",
                                   "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl",
                                   "postgresql://app:hunter2hunter2@localhost/app"])
def test_token_formats(value: str) -> None:
    assert looks_like_secret(value)


@pytest.mark.parametrize("value", ["/Users/alice/Desktop", "Europe/Berlin", "T01234567", "https://example.com/x"])
def test_plain_values(value: str) -> None:
    assert not looks_like_secret(value)


def test_launcher_forms() -> None:
    npx = parse_launch("npx", ["-y", "--package=@scope/tool@1.2.3", "tool-cli", "--flag"])
    assert (npx.package, npx.spec, npx.exact, npx.executable, npx.args) == ("@scope/tool", "1.2.3", True, "tool-cli",
                                                                             ["--flag"])
    assert parse_launch("C:\\Program Files\\nodejs\\npx.cmd", ["some-server"]).spec is None
    latest = parse_launch("uvx", ["mcp-server-time@latest"])
    assert (latest.kind, latest.spec, latest.exact) == ("pypi", None, False)
    python = parse_launch("uv", ["tool", "run", "--python", "3.12", "mcp-server-fetch==2026.10.24"])
    assert python.exact and python.notes == ["Python 3.12 requested; the image's Python is used"]
    pipx = parse_launch("pipx", ["run", "--spec", "mcp-server-git==2026.10.19", "mcp-server-git"])
    assert (pipx.package, pipx.spec, pipx.executable) == ("mcp-server-git", "2026.10.19", "mcp-server-git")
    for command, args, reason in [
        ("uvx", ["--with", "pandas", "mcp-server-sqlite"], "--with"),
        ("uvx", ["mcp-server-time>=2025"], "version range"),
        ("npx", ["-y", "github:alice/server"], "not a package on the npm registry"),
        ("python", ["-m", "mcp_server_time"], "python -m"),
        ("bunx", ["some-server"], "unknown launcher"),
    ]:
        with pytest.raises(Unsupported, match=reason):
            parse_launch(command, args)


# -- applying a plan ---------------------------------------------------------------------


def test_import_into_a_missing_toolbox(tbx, workspace: Workspace) -> None:  # noqa: ANN001
    result = tbx("import", str(CLAUDE), "--toolbox", "nope")
    assert result.exit_code == 1
    assert result.stderr.strip() == ("error: no toolbox named 'nope'; add it with 'tbx toolbox add nope --local' "
                                     "or pass --toolbox NAME")


@pytest.mark.docker
def test_import_builds_and_starts_each_server_for_real(tbx, workspace: Workspace, docker_engine,  # noqa: ANN001
                                                       tmp_path: Path) -> None:
    import docker

    notes = tmp_path / "notes"
    notes.mkdir()
    if os.getuid() == 0:
        os.chown(notes, 10001, 10001)
    config = tmp_path / "claude_desktop_config.json"
    config.write_text(json.dumps({"mcpServers": {
        "clock": {"command": "uvx", "args": ["mcp-server-time==2026.10.19"], "env": {"API_KEY": CANARY}},
        "memory": {"command": "npx", "args": ["-y", "@modelcontextprotocol/server-memory@2026.8.31"],
                   "env": {"MEMORY_FILE_PATH": str(notes / "memory.jsonl")}},
        "time": {"command": "uvx", "args": ["mcp-server-time==2026.10.19"]},
        "puppeteer": {"command": "docker", "args": ["run", "-i", "--rm", "mcp/puppeteer"]},
    }}))
    toolbox = add_local(workspace, "local")
    try:
        first = tbx("server", "add", "local", "time")
        assert first.exit_code == 0, first.stderr
        dry = tbx("import", str(config), "--dry-run")
        assert "2 to add, 2 skipped" in dry.stdout
        result = tbx("import", str(config))
        assert result.exit_code == 0, "the clashing 'time' entry is skipped as the dry run said; the others are added"
        assert "added clock" in result.stdout and "added memory" in result.stdout
        assert "skipped time: toolbox local already has a server named 'time'; pass --name time=NEW-NAME" in (
            result.stdout)
        assert "skipped puppeteer:" in result.stdout
        assert result.stdout.strip().endswith("2 added to toolbox local, 2 skipped, 0 failed")
        assert_no_secret(result.stdout, result.stderr)
        listing = json.loads(tbx("server", "list", "--json").stdout)
        assert {s["name"]: s["health"] for s in listing} == {"clock": "healthy", "memory": "healthy", "time": "healthy"}
        workspace.refresh()
        clock = workspace.repos.servers.by_name(toolbox.id, "clock")
        assert clock is not None and list(clock.secret_refs) == ["API_KEY"] and "API_KEY" not in clock.env
        memory = workspace.repos.servers.by_name(toolbox.id, "memory")
        assert memory is not None and memory.mounts[0].source == str(notes)
    finally:
        for container in docker.from_env().containers.list(all=True, filters={"label": f"io.tbx.toolbox={toolbox.id}"}):
            container.remove(force=True)


# -- version resolution against the real registries ---------------------------------------


def npm_current(package: str) -> str:
    npm = shutil.which("npm")
    if npm is None:
        pytest.skip("npm is not installed")
    done = subprocess.run([npm, "view", package, "version"], capture_output=True, text=True, timeout=60, check=True)
    return done.stdout.strip()


@pytest.mark.slow
def test_unpinned_packages_are_resolved(tmp_path: Path) -> None:
    config = write_config(tmp_path / "claude.json", {
        "memory": {"command": "npx", "args": ["-y", "@modelcontextprotocol/server-memory"]},
        "time": {"command": "uvx", "args": ["mcp-server-time"]},
        "older": {"command": "npx", "args": ["@modelcontextprotocol/server-memory@^2025.0.0"]},
        "remote": {"command": "npx", "args": ["-y", "mcp-remote@0.15.1", "https://mcp.example.com/sse"]},
        "ghost": {"command": "npx", "args": ["-y", "@modelcontextprotocol/server-does-not-exist-tbx"]},
    })
    plan = plan_import(config)
    planned = items(plan)
    memory = planned["memory"]
    assert memory.entry.source.package.version == npm_current("@modelcontextprotocol/server-memory")
    assert memory.resolved.startswith("unpinned, resolved to ") and memory.resolved.endswith(" on npm")
    assert memory.entry.command == ["mcp-server-memory"]
    with urllib.request.urlopen("https://pypi.org/pypi/mcp-server-time/json", timeout=30) as response:
        pypi_current = json.loads(response.read())["info"]["version"]
    assert planned["time"].entry.source.package.version == pypi_current
    assert planned["time"].resolved.endswith(" on PyPI")
    older = planned["older"]  # a range: the highest match, its executable asked from npm
    assert older.entry.source.package.version.startswith("2025.")
    assert older.resolved.startswith("'^2025.0.0', resolved to")
    assert older.entry.command == ["mcp-server-memory"]
    # mcp-remote only relays a remote server: planned as one, never as a container.
    assert "remote" not in planned and remotes(plan)["remote"].url == "https://mcp.example.com/sse"
    assert "npm cannot find @modelcontextprotocol/server-does-not-exist-tbx" in reasons(plan)["ghost"]
    assert "resolved to" in render_plan(plan)


# -- Claude Code, remote servers, names the toolbox has (issue 19) --------------------------

CLAUDE_CODE = FIXTURES / "claude-code" / ".mcp.json"
CLAUDE_JSON = FIXTURES / "claude-code" / "claude.json"
EVERY_FORMAT = [CLAUDE, CURSOR, VSCODE, SETTINGS, CLAUDE_CODE, CLAUDE_JSON]


def test_claude_code_variables_are_filled_as_claude_code_fills_them(tmp_path: Path) -> None:
    environ = {"TBX_TEST_GITHUB_TOKEN": CANARY, "TBX_TEST_TZ": "Asia/Kolkata"}
    plan = plan_import(CLAUDE_CODE, environ=environ)
    planned = items(plan)
    assert plan.format == "Claude Desktop / Cursor / Claude Code (mcpServers)"
    assert planned["github"].secrets == {"GITHUB_PERSONAL_ACCESS_TOKEN": CANARY}
    assert planned["time"].entry.command == ["mcp-server-time", "--local-timezone=Asia/Kolkata"]
    # ${VAR:-default} with VAR unset: the default.
    assert planned["memory"].mounts[0].source == "/tmp"
    assert reasons(plan)["git"] == ("${TBX_TEST_REPO_DIR} is not set in this environment and has no default "
                                    "(${TBX_TEST_REPO_DIR:-...}); set it and import again")
    repo = tmp_path / "repo"
    repo.mkdir()
    with_repo = items(plan_import(CLAUDE_CODE, environ={**environ, "TBX_TEST_REPO_DIR": str(repo)}))
    assert with_repo["git"].entry.command == ["mcp-server-git", "--repository", "/mnt/repo"]
    # An unset variable in an env value is asked for when the plan is applied.
    [pending] = items(plan_import(CLAUDE_CODE, environ={}))["github"].inputs
    assert pending.env == "GITHUB_PERSONAL_ACCESS_TOKEN" and "${TBX_TEST_GITHUB_TOKEN} is not set" in pending.label
    assert_no_secret(render_plan(plan), json.dumps(plan.to_json()))


def test_claude_json_brings_the_user_and_every_project_servers() -> None:
    plan = plan_import(CLAUDE_JSON, environ={"HOME": "/home/alice"})
    assert plan.format == "Claude Code ~/.claude.json (user and project servers)"
    planned = items(plan)
    # 'time' sits in the user scope and, alike, in a project: planned once.
    assert list(planned) == ["time", "memory", "memory-2"]
    assert planned["memory"].env == {"MEMORY_FILE_PATH": "/home/alice/.shop-memory.jsonl"}
    assert "from project /home/alice/src/shop" in planned["memory"].notes
    assert planned["memory-2"].key == "memory" and "from project /home/alice/src/blog" in planned["memory-2"].notes
    [linear] = plan.remotes
    assert (linear.name, linear.url, linear.transport) == ("linear", "https://mcp.linear.app/sse", "sse")
    assert "from project /home/alice/src/shop" in linear.notes
    assert "+ linear  remote https://mcp.linear.app/sse" in render_plan(plan)


@pytest.mark.parametrize("path", EVERY_FORMAT, ids=lambda p: p.name)
def test_remote_servers_are_planned_as_remote_in_every_format(path: Path, tmp_path: Path) -> None:
    planned = {s.key for s in plan_import(path, environ={}).remotes}
    expected = {CLAUDE: set(), CURSOR: set(), VSCODE: {"docs-api"}, SETTINGS: {"remote-sse"},
                CLAUDE_CODE: {"sentry", "atlassian"}, CLAUDE_JSON: {"linear"}}
    assert planned == expected[path]
    if path in (CLAUDE, CURSOR, CLAUDE_CODE, CLAUDE_JSON):  # the mcpServers files (plain JSON)
        data = json.loads(path.read_text())
        data["mcpServers"]["bridged"] = {"command": "npx", "args": [
            "-y", "mcp-remote", "https://mcp.example.com/mcp", "--header", "X-Api-Key:${KEY}", "--transport",
            "sse-only"], "env": {"KEY": CANARY}}
        data["mcpServers"]["socket"] = {"type": "ws", "url": "wss://mcp.example.com/ws"}
        copy = tmp_path / path.name
        copy.write_text(json.dumps(data))
        plan = plan_import(copy, environ={})
        bridged = remotes(plan)["bridged"]
        assert (bridged.url, bridged.transport, bridged.headers) == (
            "https://mcp.example.com/mcp", "sse", {"X-Api-Key": CANARY})
        socket = next(s for s in plan.skipped if s.name == "socket")
        assert socket.remote and socket.reason == "a WebSocket server at mcp.example.com: tbx reaches remote " \
                                                  "servers over HTTP only"
        assert_no_secret(render_plan(plan), json.dumps(plan.to_json()), repr(plan))


def test_claude_code_headers_take_the_environment_or_are_asked_for() -> None:
    plan = plan_import(CLAUDE_CODE, environ={"SENTRY_TOKEN": CANARY, "ATLASSIAN_AUTH": f"Bearer {CANARY}"})
    sentry, atlassian = remotes(plan)["sentry"], remotes(plan)["atlassian"]
    assert sentry.headers == {"Authorization": f"Bearer {CANARY}"} and not sentry.inputs
    assert (atlassian.url, atlassian.headers) == ("https://mcp.atlassian.com/v1/sse", {"Authorization": f"Bearer {CANARY}"})
    unset = remotes(plan_import(CLAUDE_CODE, environ={}))["sentry"]
    [asked] = unset.inputs
    assert asked.header == "Authorization" and "${SENTRY_TOKEN} is not set" in asked.label and not unset.headers
    assert_no_secret(render_plan(plan), json.dumps(plan.to_json()), repr(plan))


@pytest.mark.parametrize("path", EVERY_FORMAT, ids=lambda p: p.name)
def test_a_name_the_toolbox_has_is_skipped_with_the_way_to_rename_it(path: Path) -> None:
    from console.catalog.importer import Naming

    first = plan_import(path, environ={}).items[0]
    clash = plan_import(path, environ={}, naming=Naming(existing=frozenset({first.name})))
    assert first.name not in items(clash)
    assert reasons(clash)[first.key] == (f"toolbox local already has a server named '{first.name}'; "
                                         f"pass --name {shlex.quote(first.key)}=NEW-NAME or --prefix PREFIX")
    renamed = plan_import(path, environ={}, naming=Naming(existing=frozenset({first.name}),
                                                          rename={first.key: "renamed"}))
    assert items(renamed)["renamed"].key == first.key
    prefixed = plan_import(path, environ={}, naming=Naming(existing=frozenset({first.name}), prefix="desk-"))
    assert all(name.startswith("desk-") for name in items(prefixed))
    assert len(prefixed.items) == len(plan_import(path, environ={}).items)


def test_dry_run_and_import_agree_on_a_name_the_toolbox_has(tbx, workspace: Workspace, tmp_path: Path) -> None:  # noqa: ANN001
    from console.model import ServerInstance

    toolbox = add_local(workspace, "local")
    with workspace.change() as change:
        change.repos.servers.put(ServerInstance(toolbox=toolbox.id, name="time", desired_state="stopped"))
    config = write_config(tmp_path / "claude.json", {
        "time": {"command": "uvx", "args": ["mcp-server-time==2026.10.19"]},
        "socket": {"type": "ws", "url": "wss://mcp.example.com/ws"},
    })
    said = ("skipped time: toolbox local already has a server named 'time'; "
            "pass --name time=NEW-NAME or --prefix PREFIX")
    dry = tbx("import", str(config), "--dry-run")
    assert dry.exit_code == 0 and "0 to add, 2 skipped" in dry.stdout and f"- {said}" in dry.stdout
    real = tbx("import", str(config))
    assert real.exit_code == 0 and real.stderr == "note: nothing to add\n"
    assert f"- {said}" in real.stdout
    renamed = tbx("import", str(config), "--dry-run", "--name", "time=clock")
    assert renamed.exit_code == 0 and "+ clock  pypi:mcp-server-time==2026.10.19  (was 'time')" in renamed.stdout
    prefixed = tbx("import", str(config), "--dry-run", "--prefix", "desktop-")
    assert "+ desktop-time  pypi:mcp-server-time==2026.10.19" in prefixed.stdout
    for args, error in [(("--name", "time"), "--name takes KEY=NAME"),
                        (("--name", "time=Bad Name"), "--name time=Bad Name: bad server name"),
                        (("--name", "nope=x"), f"--name nope=...: {config} has no server by that name"),
                        (("--prefix", "-"), "--prefix '-' cannot start a server name")]:
        refused = tbx("import", str(config), "--dry-run", *args)
        assert refused.exit_code == 2 and error in refused.stderr and refused.stderr.count("\n") == 1, refused.stderr
