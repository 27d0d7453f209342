"""The server catalog: the built-in data file, the user's catalog.json, ``tbx catalog list``."""

from __future__ import annotations

import json
import shutil
import subprocess
import urllib.request
from importlib import resources
from pathlib import Path

import pytest

from console.egress.allowlist import AllowList
from console.catalog import CatalogError, load_builtin, load_catalog
from console.catalog.model import CatalogEntry
from console.errors import NotFound
from console.paths import Paths

REQUIRED_IDS = {"time", "git", "fetch", "filesystem", "memory", "everything", "sqlite", "github", "slack",
                "slack-zencoder", "google-drive"}
EXECUTABLES = {"slack-zencoder": "slack-mcp"}
"""Packages whose executable is not mcp-server-* (their package.json's bin)."""
BUILTIN = load_builtin()
PACKAGED = [e for e in BUILTIN if e.remote is None]
REMOTE = [e for e in BUILTIN if e.remote is not None]


def write_user_catalog(paths: Paths, data: object) -> Path:
    paths.catalog_file.write_text(json.dumps(data), encoding="utf-8")
    return paths.catalog_file


def test_builtin_file_is_package_data_and_validates() -> None:
    raw = json.loads(resources.files("console.catalog").joinpath("builtin.json").read_text(encoding="utf-8"))
    assert len(raw["servers"]) == len(BUILTIN)
    assert {e.id for e in BUILTIN} >= REQUIRED_IDS
    assert all(e.origin == "builtin" for e in BUILTIN)


@pytest.mark.parametrize("entry", PACKAGED, ids=lambda e: e.id)
def test_builtin_entry_is_complete(entry: CatalogEntry) -> None:
    package = entry.source.package
    assert package is not None and entry.source.image is None, "built-ins are package builds, never invented digests"
    assert entry.command[0] == EXECUTABLES.get(entry.id, entry.command[0]) and (
        entry.id in EXECUTABLES or entry.command[0].startswith("mcp-server-")), "the executable the package installs"
    targets = {m.target for m in entry.mounts}
    # Every container path the command or env points at is a declared mount, or the
    # file a bound connection writes into the container's /tmp.
    token_file = entry.oauth.token_file if entry.oauth else None
    for value in entry.command[1:] + [v.default or "" for v in entry.env]:
        if value.startswith("/") and value != token_file:
            assert any(value == t or value.startswith(t + "/") for t in targets), value
    if token_file:
        assert token_file.startswith("/tmp/"), "the root is read-only; only /tmp is writable"
    calls_internet = entry.id in {"fetch", "github", "slack", "slack-zencoder", "google-drive"}
    assert entry.network == ("egress" if calls_internet else "none")
    # The hosts an account server needs are in its entry, as its allow-list to start with;
    # fetch's are the user's to give (it fetches whatever URL it is asked for).
    assert bool(entry.egress) == (calls_internet and entry.id != "fetch")
    assert len(AllowList.parse(entry.egress).entries) == len(entry.egress)  # each valid (else EgressError), no repeats
    if package.kind == "npm":
        assert entry.limits.memory_mb >= 384
    secret_names = {s.name for s in entry.secrets}
    if entry.oauth is not None and entry.oauth.token_env is not None:
        assert entry.oauth.token_env in secret_names


def test_archived_reference_servers_say_so_and_name_what_replaced_them() -> None:
    """modelcontextprotocol/servers lists github, gdrive and slack as archived, slack as
    "now maintained by Zencoder"; GitHub's own server is a Go binary and a ghcr.io image."""
    by_id = {e.id: e for e in BUILTIN}
    for archived in ("github", "slack", "google-drive"):
        assert "Archived upstream in 2025" in by_id[archived].description
    assert "ghcr.io/github/github-mcp-server" in by_id["github"].description
    assert "'github-hosted'" in by_id["github"].description
    assert "'slack-zencoder'" in by_id["slack"].description and "'slack-hosted'" in by_id["slack"].description
    successor, archived = by_id["slack-zencoder"], by_id["slack"]
    assert successor.source.package.package == "@zencoderai/slack-mcp-server"
    assert (successor.env, successor.secrets, successor.oauth) == (archived.env, archived.secrets, archived.oauth)


def test_account_servers_declare_their_real_token_variables() -> None:
    by_id = {e.id: e for e in BUILTIN}
    assert by_id["github"].oauth.token_env == "GITHUB_PERSONAL_ACCESS_TOKEN"
    assert by_id["github"].oauth.provider == "github"
    assert by_id["slack"].oauth.token_env == "SLACK_BOT_TOKEN"
    assert "SLACK_TEAM_ID" in {e.name for e in by_id["slack"].env}
    assert "chat:write" in by_id["slack"].oauth.scopes
    drive = by_id["google-drive"]
    # The Drive server reads a credentials file, not an env token: modelled as such.
    assert drive.oauth.token_env is None
    assert drive.oauth.token_file == "/tmp/gdrive/credentials.json"
    assert drive.env[0].name == "GDRIVE_CREDENTIALS_PATH" and drive.env[0].default == drive.oauth.token_file
    assert drive.oauth.scopes == ["https://www.googleapis.com/auth/drive.readonly"]
    assert "env variable" in drive.description
    assert by_id["memory"].env[0].name == "MEMORY_FILE_PATH"
    assert by_id["git"].command == ["mcp-server-git", "--repository", "/repo"]


@pytest.mark.slow
@pytest.mark.parametrize("entry", [e for e in PACKAGED if e.source.package.kind == "npm"], ids=lambda e: e.id)
def test_npm_package_version_and_executable_exist(entry: CatalogEntry) -> None:
    npm = shutil.which("npm")
    if npm is None:
        pytest.skip("npm is not installed")
    package = entry.source.package
    done = subprocess.run([npm, "view", f"{package.package}@{package.version}", "version", "bin", "--json"],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    info = json.loads(done.stdout)
    assert info["version"] == package.version
    assert entry.command[0] in info["bin"]


@pytest.mark.slow
@pytest.mark.parametrize("entry", [e for e in PACKAGED if e.source.package.kind == "pypi"], ids=lambda e: e.id)
def test_pypi_package_version_exists(entry: CatalogEntry) -> None:
    package = entry.source.package
    with urllib.request.urlopen(f"https://pypi.org/pypi/{package.package}/json", timeout=30) as response:
        project = json.loads(response.read())
    assert project["info"]["name"].replace("_", "-").lower() == package.package
    files = project["releases"].get(package.version)
    assert files, f"PyPI has no files for {package.package}=={package.version}"
    assert any(f["filename"].endswith(".whl") for f in files), "the host build downloads a wheel"


def test_the_official_remote_servers_are_entries_by_their_documented_urls() -> None:
    """Never contacted by the tests: the addresses as each vendor documents them."""
    urls = {e.id: e.remote.url for e in REMOTE if e.remote is not None}
    assert urls == {
        "github-hosted": "https://api.githubcopilot.com/mcp/", "linear": "https://mcp.linear.app/mcp",
        "notion": "https://mcp.notion.com/mcp", "sentry": "https://mcp.sentry.dev/mcp",
        "atlassian": "https://mcp.atlassian.com/v1/mcp/authv2", "stripe": "https://mcp.stripe.com",
        "slack-hosted": "https://mcp.slack.com/mcp",
    }
    for entry in REMOTE:
        assert entry.remote is not None and entry.remote.docs.startswith("https://")
        assert entry.command == [] and entry.source.package is None and not entry.secrets and not entry.mounts


@pytest.mark.parametrize(("source", "command", "says"), [
    ({"remote": {"url": "https://mcp.example.com/mcp"}}, ["x"], "a remote server has none"),
    ({"package": {"kind": "npm", "package": "x", "version": "1.0.0"}}, [], "needs one"),
    ({"remote": {"url": "ftp://mcp.example.com/mcp"}}, [], "url"),
    ({"remote": {"url": "https://mcp.example.com"}, "package": {"kind": "npm", "package": "x", "version": "1.0.0"}},
     [], "nothing runs here"),
])
def test_a_remote_entry_runs_nothing_here(source: dict, command: list[str], says: str) -> None:
    with pytest.raises(ValueError, match=says):
        CatalogEntry.model_validate({"id": "far", "title": "t", "description": "d", "source": source,
                                     "command": command})


def test_user_file_overrides_and_extends(tbx_home: Paths) -> None:
    time = next(e for e in BUILTIN if e.id == "time")
    override = time.model_dump(mode="json") | {"title": "Time (mine)", "command": ["mcp-server-time",
                                                                                   "--local-timezone", "Europe/Rome"]}
    extra = {
        "id": "postgres",
        "title": "PostgreSQL (read-only)",
        "description": "Read-only SQL against one database.",
        "source": {"package": {"kind": "npm", "package": "@modelcontextprotocol/server-postgres", "version": "0.6.2"}},
        "command": ["mcp-server-postgres", "postgresql://db.internal/app"],
        "network": "egress",
    }
    write_user_catalog(tbx_home, {"servers": [override, extra]})
    catalog = load_catalog(tbx_home)
    assert catalog.get("time").title == "Time (mine)"
    assert catalog.get("time").origin == "user"
    assert catalog.get("postgres").origin == "user"
    assert catalog.get("git").origin == "builtin"
    assert len(catalog) == len(BUILTIN) + 1
    assert [e.id for e in catalog.entries()] == sorted(e.id for e in catalog.entries())


def test_user_file_may_be_a_plain_list(tbx_home: Paths) -> None:
    fetch = next(e for e in BUILTIN if e.id == "fetch").model_dump(mode="json") | {"network": "none"}
    write_user_catalog(tbx_home, [fetch])
    assert load_catalog(tbx_home).get("fetch").network == "none"


def test_unknown_id_says_where_to_look(tbx_home: Paths) -> None:
    with pytest.raises(NotFound, match="tbx catalog list"):
        load_catalog(tbx_home).get("nope")


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ('{"servers": [', "is not valid JSON (line 1"),
        ('{"entries": []}', 'expected a list of entries or {"servers": [...]}'),
        ('[42]', "entry #1 is not a JSON object"),
        ('[{"id": "bad", "title": "t", "description": "d", "command": ["x"], '
         '"source": {"package": {"kind": "npm", "package": "x", "version": "^1.0"}}}]',
         "entry 'bad': field source.package.version"),
        ('[{"id": "img", "title": "t", "description": "d", "command": ["x"], '
         '"source": {"image": "mcp/time:latest"}}]', "entry 'img': field source.image"),
        ('[{"id": "Bad Id", "title": "t"}]', "entry 'Bad Id': field id"),
    ],
)
def test_malformed_user_file_is_one_clear_line(tbx_home: Paths, content: str, expected: str) -> None:
    tbx_home.catalog_file.write_text(content, encoding="utf-8")
    with pytest.raises(CatalogError) as caught:
        load_catalog(tbx_home)
    message = str(caught.value)
    assert expected in message
    assert str(tbx_home.catalog_file) in message
    assert "\n" not in message


def test_duplicate_user_entries_are_refused(tbx_home: Paths) -> None:
    time = next(e for e in BUILTIN if e.id == "time").model_dump(mode="json")
    write_user_catalog(tbx_home, [time, time])
    with pytest.raises(CatalogError, match="entry 'time' appears more than once"):
        load_catalog(tbx_home)


def test_catalog_list_json(tbx) -> None:  # noqa: ANN001
    result = tbx("catalog", "list", "--json")
    assert result.exit_code == 0, result.stderr
    listed = json.loads(result.stdout)
    assert {e["id"] for e in listed} == {e.id for e in BUILTIN}
    github = next(e for e in listed if e["id"] == "github")
    assert github["source"]["package"]["package"] == "@modelcontextprotocol/server-github"
    assert github["oauth"]["token_env"] == "GITHUB_PERSONAL_ACCESS_TOKEN"


def test_catalog_list_table(tbx) -> None:  # noqa: ANN001
    result = tbx("catalog", "list")
    assert result.exit_code == 0, result.stderr
    header, *rows = result.stdout.splitlines()
    assert header.split() == ["ID", "TITLE", "SOURCE", "NETWORK", "NEEDS", "ORIGIN"]
    git = next(r for r in rows if r.startswith("git "))
    assert "pypi:mcp-server-git==" in git and "mount:/repo" in git and git.endswith("builtin")
    slack = next(r for r in rows if r.startswith("slack "))
    assert "npm:@modelcontextprotocol/server-slack@" in slack and "oauth:slack" in slack
    linear = next(r for r in rows if r.startswith("linear "))
    assert "remote:https://mcp.linear.app/mcp" in linear


def test_catalog_list_reports_a_broken_user_file(tbx, tbx_home: Paths) -> None:  # noqa: ANN001
    tbx_home.catalog_file.write_text("{oops", encoding="utf-8")
    result = tbx("catalog", "list")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: catalog file ")
    assert len(result.stderr.strip().splitlines()) == 1
