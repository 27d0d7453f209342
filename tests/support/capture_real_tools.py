"""Capture the real tool definitions of the catalog's servers into tests/fixtures/real_tools/.

The scanner's false-positive test reads these files: they are what the servers really
say on ``tools/list``, captured by running each server the way tbx does (image built
from the pinned package, hardened container, MCP over the attach stream). Regenerate
them when a catalog version changes:

    .venv/bin/python -m tests.support.capture_real_tools            # every catalog server
    .venv/bin/python -m tests.support.capture_real_tools time git   # some of them

Needs the test Docker engine and base image (scripts/testenv.sh). Servers run with
network ``none`` whatever their entry says: listing tools needs no network, and
nothing here may send traffic anywhere. Account servers get an obviously fake token,
which they accept at start because they only use it on a call.

``--host`` captures the scanner's benign corpus (tests/fixtures/scan/benign/) from
popular servers outside the catalog instead: each package of ``HOST_SERVERS`` is
installed on the host in a scratch folder (npm, or a uv virtualenv for PyPI), started
over stdio with dummy credentials and an empty HOME, and asked for ``tools/list`` in
raw JSON-RPC, so the files hold exactly what the server sent:

    .venv/bin/python -m tests.support.capture_real_tools --host             # all of them
    .venv/bin/python -m tests.support.capture_real_tools --host stripe exa  # some of them

``TBX_CAPTURE_SCRATCH`` names the scratch folder (default /tmp/scan-capture).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import docker
import keyring

from console.catalog import load_catalog
from console.catalog.model import CatalogEntry
from console.model import Mount
from console.paths import resolve_paths
from console.runtime.session import mcp_session
from console.services import server_status, servers, toolboxes
from console.vault import KeySource
from console.workspace import Workspace
from tests.support.keyrings import MemoryKeyring

REPO = Path(__file__).resolve().parents[2]
OUT = REPO / "tests" / "fixtures" / "real_tools"
FAKE_TOKEN = "fake-token-for-tool-discovery-only"
FAKE_ENV = {"SLACK_TEAM_ID": "T00000000"}
FAKE_FILES = {
    "/gdrive-server": {"credentials.json": json.dumps({"access_token": FAKE_TOKEN, "expiry_date": 4102444800000})},
}
"""Mount target -> files a server reads at start (Google Drive's google-auth token file)."""
GIT_REPOS = {"/repo"}
"""Mount targets that must hold a Git repository (mcp-server-git exits on anything else)."""


def _shared_dir(path: Path, target: str) -> Path:
    """A host folder the container's unprivileged user may write (tests run as root)."""
    path.mkdir(parents=True, exist_ok=True)
    for name, content in FAKE_FILES.get(target, {}).items():
        (path / name).write_text(content)
    if target in GIT_REPOS:
        subprocess.run(["git", "init", "-q", str(path)], check=True)
    if os.getuid() == 0:
        subprocess.run(["chown", "-R", "10001:10001", str(path)], check=True)
    return path


def _offline(entry: CatalogEntry) -> CatalogEntry:
    return entry.model_copy(update={"network": "none"})


async def _list_tools(ws: Workspace, label: str) -> list[dict[str, Any]]:
    ref = servers.resolve(ws, label)
    endpoint, state = server_status.container_of(ref)
    async with mcp_session(endpoint, state.id, label=f"server {label}") as session:
        return (await session.discover()).tools


def capture(ws: Workspace, entry: CatalogEntry, scratch: Path) -> dict[str, Any]:
    mounts = [Mount(source=str(_shared_dir(scratch / entry.id / m.target.strip("/"), m.target)), target=m.target,
                    read_only=m.read_only) for m in entry.mounts]
    secrets = {s.name: FAKE_TOKEN for s in entry.secrets if s.required}
    env = {e.name: FAKE_ENV[e.name] for e in entry.env if e.required and e.name in FAKE_ENV}
    servers.add_server(ws, "capture", _offline(entry), env=env, secrets=secrets, mounts=mounts)
    try:
        tools = asyncio.run(_list_tools(ws, f"capture/{entry.id}"))
    finally:
        servers.remove_server(ws, f"capture/{entry.id}")
    assert entry.source.package is not None
    package = entry.source.package
    return {
        "server": entry.id,
        "package": f"{package.kind}:{package.package}@{package.version}",
        "tools": sorted(tools, key=lambda tool: tool["name"]),
    }


def capture_each(ids: list[str], capture_one: Callable[[str], dict[str, Any]], out: Path) -> int:
    """Capture every id into ``out/<id>.json``, report each failure, and fail if any did."""
    out.mkdir(parents=True, exist_ok=True)
    failed = []
    for item in ids:
        print(f"capturing {item} ...", flush=True)
        try:
            captured = capture_one(item)
        except Exception as exc:  # noqa: BLE001 - report every server, then fail
            print(f"  FAILED: {type(exc).__name__}: {str(exc)[:600]}", flush=True)
            failed.append(item)
            continue
        target = out / f"{item}.json"
        target.write_text(json.dumps(captured, indent=2, ensure_ascii=False, sort_keys=True) + "\n")
        print(f"  {captured['package']}: {len(captured['tools'])} tool(s) -> {target.relative_to(REPO)}", flush=True)
    if failed:
        print(f"not captured: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


def main(ids: list[str]) -> int:
    os.environ.setdefault("TBX_BASE_IMAGE", "tbx-base:test")
    os.environ.setdefault("TBX_CACHE_DIR", str(REPO / ".testenv" / "cache"))
    keyring.set_keyring(MemoryKeyring())
    with tempfile.TemporaryDirectory(prefix="tbx-capture-") as tmp:
        os.environ["TBX_HOME"] = str(Path(tmp) / "home")
        paths = resolve_paths()
        ws = Workspace.create(paths, KeySource(passphrase=None))
        box = toolboxes.add_local(ws, "capture")
        catalog = load_catalog(paths)
        try:
            return capture_each(ids or sorted(catalog.by_id),
                                lambda entry_id: capture(ws, catalog.get(entry_id), Path(tmp) / "mounts"), OUT)
        finally:
            client = docker.from_env()
            for container in client.containers.list(all=True, filters={"label": f"io.tbx.toolbox={box.id}"}):
                container.remove(force=True)


# -- host captures: the scanner's benign corpus --------------------------------------------------

BENIGN = REPO / "tests" / "fixtures" / "scan" / "benign"
SCRATCH = Path(os.environ.get("TBX_CAPTURE_SCRATCH", "/tmp/scan-capture"))
FAKE_KEY = "fake-key-for-tool-discovery-only"


@dataclass(frozen=True)
class HostServer:
    """A published MCP server started on the host only to ask it for its tools."""

    kind: Literal["npm", "pypi"]
    package: str
    command: str
    """The executable the package installs (npm ``bin``, PyPI console script)."""
    args: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    python: str = "3.11"
    extra: tuple[str, ...] = ()
    """Further requirements installed with it (pins a server needs to start)."""


def _npm(package: str, command: str, *args: str, **env: str) -> HostServer:
    return HostServer("npm", package, command, args, env)


def _pypi(package: str, command: str, *args: str, python: str = "3.11", extra: tuple[str, ...] = (),
          **env: str) -> HostServer:
    return HostServer("pypi", package, command, args, env, python, extra)


HOST_SERVERS: dict[str, HostServer] = {
    # The catalog's SQLite server: its container needs mcp<2, the host venv gets the same pin.
    "sqlite": _pypi("mcp-server-sqlite", "mcp-server-sqlite", "--db-path", "{scratch}/work/test.db",
                    extra=("mcp<2",)),
    "playwright": _npm("@playwright/mcp", "playwright-mcp"),
    "puppeteer": _npm("@modelcontextprotocol/server-puppeteer", "mcp-server-puppeteer"),
    "brave-search": _npm("@modelcontextprotocol/server-brave-search", "mcp-server-brave-search",
                         BRAVE_API_KEY=FAKE_KEY),
    "postgres": _npm("@modelcontextprotocol/server-postgres", "mcp-server-postgres",
                     "postgresql://capture:capture@127.0.0.1:1/capture"),
    "notion": _npm("@notionhq/notion-mcp-server", "notion-mcp-server", NOTION_TOKEN=FAKE_KEY),
    "context7": _npm("@upstash/context7-mcp", "context7-mcp"),
    "firecrawl": _npm("firecrawl-mcp", "firecrawl-mcp", FIRECRAWL_API_KEY="fc-" + FAKE_KEY),
    "kubernetes": _npm("mcp-server-kubernetes", "mcp-server-kubernetes"),
    "desktop-commander": _npm("@wonderwhy-er/desktop-commander", "desktop-commander"),
    "chrome-devtools": _npm("chrome-devtools-mcp", "chrome-devtools-mcp"),
    "tavily": _npm("tavily-mcp", "tavily-mcp", TAVILY_API_KEY="tvly-" + FAKE_KEY),
    "exa": _npm("exa-mcp-server", "exa-mcp-server", EXA_API_KEY=FAKE_KEY),
    "ea-playwright": _npm("@executeautomation/playwright-mcp-server", "playwright-mcp-server"),
    "google-maps": _npm("@modelcontextprotocol/server-google-maps", "mcp-server-google-maps",
                        GOOGLE_MAPS_API_KEY=FAKE_KEY),
    "gitlab": _npm("@modelcontextprotocol/server-gitlab", "mcp-server-gitlab",
                   GITLAB_PERSONAL_ACCESS_TOKEN=FAKE_KEY),
    "aws-kb-retrieval": _npm("@modelcontextprotocol/server-aws-kb-retrieval", "mcp-server-aws-kb-retrieval",
                             AWS_ACCESS_KEY_ID="AKIAFAKE", AWS_SECRET_ACCESS_KEY=FAKE_KEY, AWS_REGION="us-east-1"),
    "everart": _npm("@modelcontextprotocol/server-everart", "mcp-server-everart", EVERART_API_KEY=FAKE_KEY),
    "browserbase": _npm("@browserbasehq/mcp-server-browserbase", "mcp-server-browserbase",
                        BROWSERBASE_API_KEY=FAKE_KEY, BROWSERBASE_PROJECT_ID="fake-project"),
    "sentry-js": _npm("@sentry/mcp-server", "sentry-mcp", "--access-token=" + FAKE_KEY),
    "circleci": _npm("@circleci/mcp-server-circleci", "mcp-server-circleci", CIRCLECI_TOKEN=FAKE_KEY),
    "figma": _npm("figma-developer-mcp", "figma-developer-mcp", "--stdio", "--figma-api-key=" + FAKE_KEY),
    "mongodb": _npm("mongodb-mcp-server", "mongodb-mcp-server"),
    "elasticsearch": _npm("@elastic/mcp-server-elasticsearch", "mcp-server-elasticsearch",
                          ES_URL="http://127.0.0.1:1", ES_API_KEY=FAKE_KEY),
    "browser-tools": _npm("@agentdeskai/browser-tools-mcp", "browser-tools-mcp"),
    "atlassian": _pypi("mcp-atlassian", "mcp-atlassian", JIRA_URL="https://capture.atlassian.net",
                       JIRA_USERNAME="capture@example.com", JIRA_API_TOKEN=FAKE_KEY,
                       CONFLUENCE_URL="https://capture.atlassian.net/wiki",
                       CONFLUENCE_USERNAME="capture@example.com", CONFLUENCE_API_TOKEN=FAKE_KEY),
    "aws-documentation": _pypi("awslabs.aws-documentation-mcp-server", "awslabs.aws-documentation-mcp-server"),
    "aws-pricing": _pypi("awslabs.aws-pricing-mcp-server", "awslabs.aws-pricing-mcp-server",
                         AWS_REGION="us-east-1"),
    "aws-dynamodb": _pypi("awslabs.dynamodb-mcp-server", "awslabs.dynamodb-mcp-server", AWS_REGION="us-east-1"),
    "docker": _pypi("mcp-server-docker", "mcp-server-docker", python="3.12"),
    "arxiv": _pypi("arxiv-mcp-server", "arxiv-mcp-server", "--storage-path", "{scratch}/work/arxiv"),
    "obsidian": _pypi("mcp-obsidian", "mcp-obsidian", OBSIDIAN_API_KEY=FAKE_KEY),
    "clickhouse": _pypi("mcp-clickhouse", "mcp-clickhouse", CLICKHOUSE_HOST="127.0.0.1",
                        CLICKHOUSE_USER="capture", CLICKHOUSE_PASSWORD="capture"),
    "markitdown": _pypi("markitdown-mcp", "markitdown-mcp"),
    "neo4j-cypher": _pypi("mcp-neo4j-cypher", "mcp-neo4j-cypher", NEO4J_URI="bolt://127.0.0.1:1",
                          NEO4J_USERNAME="capture", NEO4J_PASSWORD="capture"),
    "calculator": _pypi("mcp-server-calculator", "mcp-server-calculator"),
    "blender": _pypi("blender-mcp", "blender-mcp"),
    "excel": _pypi("excel-mcp-server", "excel-mcp-server", "stdio", EXCEL_FILES_PATH="{scratch}/work"),
    "serena": _pypi("serena-agent", "serena", "start-mcp-server", "--context", "agent"),
}
"""Popular servers outside the catalog, as they start with nothing but dummy credentials.
Tried and left out, since they cannot list tools offline here: @stripe/mcp and
@supabase/mcp-server-supabase (fetch their tool lists from the vendor), server-redis,
mcp-server-motherduck, mcp-neo4j-memory, mcp-server-qdrant and mcp-server-sentry (connect,
or download a model, before answering), jupyter-mcp-server (waits for a Jupyter server),
mcp-server-duckdb (breaks on the current mcp SDK), @heroku/mcp-server and @hubspot/mcp-server
(broken installs), @benborla29/mcp-server-mysql (exits without a database)."""


def _slug(package: str) -> str:
    return package.replace("@", "_").replace("/", "_")


def _install(server: HostServer) -> tuple[Path, str]:
    """Install ``server`` in the scratch folder if needed: the executable and the version."""
    if server.kind == "npm":
        prefix = SCRATCH / "npm" / _slug(server.package)
        manifest = prefix / "node_modules" / server.package / "package.json"
        if not manifest.exists():
            prefix.mkdir(parents=True, exist_ok=True)
            (prefix / "package.json").write_text("{}")
            subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--ignore-scripts", server.package],
                           cwd=prefix, check=True, capture_output=True,
                           env={**os.environ, "PUPPETEER_SKIP_DOWNLOAD": "1"})
        return prefix / "node_modules" / ".bin" / server.command, json.loads(manifest.read_text())["version"]
    venv = SCRATCH / "py" / server.package
    python = venv / "bin" / "python"
    if not (venv / "ok").exists():
        uv = SCRATCH / "uvenv" / "bin" / "uv"
        if not uv.exists():
            subprocess.run([sys.executable, "-m", "venv", str(uv.parents[1])], check=True)
            subprocess.run([str(uv.parents[0] / "pip"), "install", "-q", "uv"], check=True)
        subprocess.run([str(uv), "venv", "-q", str(venv), "--python", server.python], check=True)
        subprocess.run([str(uv), "pip", "install", "-q", "--python", str(python), server.package, *server.extra],
                       check=True)
        (venv / "ok").touch()
    version = subprocess.run([str(python), "-c", f"import importlib.metadata as m; print(m.version({server.package!r}))"],
                             check=True, capture_output=True, text=True).stdout.strip()
    return venv / "bin" / server.command, version


async def list_tools_stdio(command: list[str], env: dict[str, str], cwd: Path,
                           timeout: float = 90.0) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """``initialize`` then every page of ``tools/list`` over stdio, the tools as sent."""
    proc = await asyncio.create_subprocess_exec(*command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                                stderr=subprocess.PIPE, env=env, cwd=cwd, limit=2**26)
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    stdin, stdout, stderr = proc.stdin, proc.stdout, proc.stderr

    async def request(ident: int, method: str, params: dict[str, Any]) -> dict[str, Any]:
        stdin.write((json.dumps({"jsonrpc": "2.0", "id": ident, "method": method, "params": params}) + "\n").encode())
        await stdin.drain()
        while line := await stdout.readline():
            try:
                message = json.loads(line)
            except ValueError:
                continue  # a server that logs to stdout
            if isinstance(message, dict) and message.get("id") == ident:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message["result"]
        raise RuntimeError(f"the server exited: {(await stderr.read()).decode(errors='replace')[-600:]}")

    try:
        init = await asyncio.wait_for(request(1, "initialize", {
            "protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": {"name": "tbx-capture", "version": "0"}}), timeout)
        stdin.write(b'{"jsonrpc": "2.0", "method": "notifications/initialized"}\n')
        tools: list[dict[str, Any]] = []
        cursor, ident = None, 2
        while True:
            page = await asyncio.wait_for(request(ident, "tools/list", {"cursor": cursor} if cursor else {}), timeout)
            tools += page.get("tools", [])
            cursor, ident = page.get("nextCursor"), ident + 1
            if not cursor:
                return init.get("serverInfo", {}), tools
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


def capture_host(server_id: str, server: HostServer) -> dict[str, Any]:
    executable, version = _install(server)
    home, work = SCRATCH / "home", SCRATCH / "work"
    home.mkdir(parents=True, exist_ok=True)
    work.mkdir(parents=True, exist_ok=True)
    fill = {"scratch": str(SCRATCH)}
    env = {"PATH": os.environ["PATH"], "HOME": str(home), "LANG": "C.UTF-8",
           **{k: v.format(**fill) for k, v in server.env.items()}}
    info, tools = asyncio.run(list_tools_stdio([str(executable), *(a.format(**fill) for a in server.args)],
                                               env, work))
    return {
        "server": server_id,
        "package": f"{server.kind}:{server.package}@{version}",
        "captured": "host stdio, tools/list as sent",
        "server_info": {k: info[k] for k in ("name", "version") if k in info},
        "tools": sorted(tools, key=lambda tool: str(tool.get("name"))),
    }


def main_host(ids: list[str]) -> int:
    return capture_each(ids or sorted(HOST_SERVERS), lambda server_id: capture_host(server_id, HOST_SERVERS[server_id]),
                        BENIGN)

if __name__ == "__main__":
    if sys.argv[1:2] == ["--host"]:
        sys.exit(main_host(sys.argv[2:]))
    sys.exit(main(sys.argv[1:]))
