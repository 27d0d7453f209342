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
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

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


def main(ids: list[str]) -> int:
    os.environ.setdefault("TBX_BASE_IMAGE", "tbx-base:test")
    os.environ.setdefault("TBX_CACHE_DIR", str(REPO / ".testenv" / "cache"))
    keyring.set_keyring(MemoryKeyring())
    failed = []
    with tempfile.TemporaryDirectory(prefix="tbx-capture-") as tmp:
        os.environ["TBX_HOME"] = str(Path(tmp) / "home")
        paths = resolve_paths()
        ws = Workspace.create(paths, KeySource(passphrase=None))
        box = toolboxes.add_local(ws, "capture")
        catalog = load_catalog(paths)
        OUT.mkdir(parents=True, exist_ok=True)
        try:
            for entry_id in ids or sorted(catalog.by_id):
                print(f"capturing {entry_id} ...", flush=True)
                try:
                    captured = capture(ws, catalog.get(entry_id), Path(tmp) / "mounts")
                except Exception as exc:  # noqa: BLE001 - report every server, then fail
                    print(f"  FAILED: {type(exc).__name__}: {exc}", flush=True)
                    failed.append(entry_id)
                    continue
                target = OUT / f"{entry_id}.json"
                target.write_text(json.dumps(captured, indent=2, ensure_ascii=False, sort_keys=True) + "\n")
                print(f"  {len(captured['tools'])} tool(s) -> {target.relative_to(REPO)}", flush=True)
        finally:
            client = docker.from_env()
            for container in client.containers.list(all=True, filters={"label": f"io.tbx.toolbox={box.id}"}):
                container.remove(force=True)
    if failed:
        print(f"not captured: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
