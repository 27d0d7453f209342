"""A console home with everything live, for the README screenshots (scripts/export_screenshots.py).

Real servers from the catalog run in the local Docker engine (time, a folder of notes, a
git repository, a memory store, the MCP test server); their items are approved, left
pending or blocked; three agents hold grants; calls go through the gateway, allowed and
refused, so the audit log holds what a user would see. OAuth connections are the one
part recorded as if signed in (no provider is reachable here): their tokens are the
canary, and so are the agents' tokens, which no screenshot may show.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from console.catalog import load_catalog
from console.errors import TbxError
from console.model import Connection, ConnectionStatus, Mount, OAuthApp, Secret, utcnow
from console.oauth.tokens import TokenSet
from console.services import agents, grants, servers, tools
from console.services.grants import Target, parse_duration
from console.services.toolboxes import add_local
from console.tui.backend import Backend
from console.workspace import Workspace

NOWHERE = "http://127.0.0.1:9"
"""Where the recorded OAuth apps point: the closed discard port, so nothing leaves this machine."""


@dataclass
class LiveHome:
    backend: Backend
    secrets: list[str] = field(default_factory=list)
    """What must appear in no screenshot: the canary and every agent token."""
    notes: list[str] = field(default_factory=list)
    """What did not go as planned (a call refused that should pass...), said by the script."""

    @property
    def ws(self) -> Workspace:
        return self.backend.workspace


def demo_folders(root: Path) -> dict[str, Path]:
    """A folder of notes, a git repository with two commits and an empty memory store."""
    notes, repo, memory = root / "notes", root / "repo", root / "memory"
    for folder in (notes, repo, memory):
        folder.mkdir(parents=True)
    (notes / "welcome.md").write_text("# Welcome\n\nNotes the filesystem server reads, read-only.\n")
    (notes / "todo.md").write_text("- approve the new tools\n- rotate the nightly token\n")
    git = ["git", "-C", str(repo), "-c", "user.name=Ada", "-c", "user.email=ada@example.org"]
    subprocess.run([*git, "init", "-q", "-b", "main"], check=True)
    for name, text, message in (("README.md", "# demo\n", "Start the demo"), ("notes.txt", "ideas\n", "Add notes")):
        (repo / name).write_text(text)
        subprocess.run([*git, "add", name], check=True)
        subprocess.run([*git, "commit", "-q", "-m", message], check=True)
    if os.geteuid() == 0:  # servers run as 10001 then (runtime.container_user "auto"): git wants its own repo
        for path in (repo, *repo.rglob("*")):
            os.chown(path, 10001, 10001, follow_symlinks=False)
    memory.chmod(0o777)  # the server writes its store here
    return {"notes": notes, "repo": repo, "memory": memory}


def build(backend: Backend, root: Path, canary: str) -> LiveHome:
    home = LiveHome(backend, [canary])
    ws = home.ws
    folders = demo_folders(root)
    catalog = load_catalog(ws.paths)
    add_local(ws, "local")
    for name, entry, mounts in (
        ("time", "time", []),
        ("files", "filesystem", [Mount(source=str(folders["notes"]), target="/data", read_only=True)]),
        ("git", "git", [Mount(source=str(folders["repo"]), target="/repo", read_only=True)]),
        ("notes", "memory", [Mount(source=str(folders["memory"]), target="/data")]),
        ("everything", "everything", []),
    ):
        print(f"  server {name}: starting")
        servers.add_server(ws, "local", catalog.get(entry), name=name, mounts=mounts)
    for name in ("time", "files", "git", "notes"):
        tools.approve(ws, "local", name)
    items = {t.ref: t for s in ws.repos.servers if s.name == "everything" for t in ws.repos.tools.of_server(s.id)}
    for ref in ("echo", "prompt:simple-prompt"):
        if ref in items:
            tools.approve(ws, "local", "everything", ref)
    risky = next((ref for ref in sorted(items) if "env" in ref.lower()), None)
    if risky is not None:
        tools.block(ws, "local", "everything", risky)
    _agents(home)
    _connections(ws, canary)
    return home


def _agents(home: LiveHome) -> None:
    ws = home.ws
    for name in ("claude-desktop", "cursor", "nightly-batch"):
        home.secrets.append(agents.add_agent(ws, name)[1])
    for agent, target, duration in (
        ("claude-desktop", "local", None), ("claude-desktop", "local/time", None),
        ("claude-desktop", "local/files/read_text_file", None), ("claude-desktop", "local/notes", None),
        ("cursor", "local", None), ("cursor", "local/git", "8h"), ("cursor", "local/everything/echo", None),
        ("nightly-batch", "local", None), ("nightly-batch", "local/time/get_current_time", None),
    ):
        with contextlib.suppress(TbxError):  # an item a server version does not offer
            grants.grant(ws, agent, Target.parse(target), parse_duration(duration) if duration else None)
    agents.set_enabled(ws, "nightly-batch", False)


def calls(home: LiveHome, url: str) -> None:
    """Agents call through the gateway; some calls are allowed, some refused."""
    from console.gateway.agentcall import call_as

    for agent, target, arguments, allowed in (
        ("claude-desktop", "local/time/get_current_time", {"timezone": "Europe/Paris"}, True),
        ("claude-desktop", "local/files/read_text_file", {"path": "/data/welcome.md"}, True),
        ("cursor", "local/git/git_log", {"repo_path": "/repo"}, True),
        ("cursor", "local/everything/echo", {"message": "hello"}, True),
        ("cursor", "local/files/read_text_file", {"path": "/data/todo.md"}, False),
        ("claude-desktop", "local/time/convert_time",
         {"source_timezone": "Europe/Paris", "time": "09:30", "target_timezone": "Asia/Tokyo"}, True),
    ):
        try:
            result = asyncio.run(call_as(home.ws, url, agent, target, arguments))
            ok, said = not result.is_error, str(result.content)[:200]
        except Exception as exc:  # noqa: BLE001 - a refusal is what some of these calls are for
            ok, said = False, str(exc)
        if ok != allowed:
            home.notes.append(f"{agent} -> {target}: {'allowed' if ok else 'refused'}, expected otherwise: {said}")


def _connections(ws: Workspace, canary: str) -> None:
    """Accounts as they are recorded after signing in, their tokens being the canary."""
    now = utcnow().replace(microsecond=0)
    with ws.change() as change:
        r = change.repos
        client_secret = r.secrets.put(Secret(name="oauth-app/github/client-secret", value=canary))
        github = r.oauth_apps.put(OAuthApp(provider="github", client_id="Iv1.8a61f9b3a7aba766",
                                           client_secret=client_secret.id, hosts={"web": NOWHERE, "api": NOWHERE}))
        google = r.oauth_apps.put(OAuthApp(provider="google", client_id="4711-desktop.apps.googleusercontent.com",
                                           hosts={"accounts": NOWHERE, "oauth2": NOWHERE, "oidc": NOWHERE}))
        for connection in (
            Connection(provider="github", account="ada", scopes=["repo", "read:user"], app=github.id,
                       expires=now + timedelta(hours=7, minutes=42), refreshed=now - timedelta(minutes=18)),
            Connection(provider="google", account="ada@example.org", app=google.id,
                       scopes=["https://www.googleapis.com/auth/drive.readonly", "openid", "email"],
                       expires=now + timedelta(minutes=38), refreshed=now - timedelta(minutes=22)),
            Connection(provider="slack", account="ada@acme", scopes=["channels:read", "chat:write"],
                       status=ConnectionStatus.NEEDS_CONSENT, expires=now - timedelta(days=2),
                       last_error="Slack: the provider refused the refresh token (expired or revoked): reconnect "
                                  "to sign in again", refreshed=now - timedelta(days=3)),
        ):
            tokens = TokenSet(access_token=canary, refresh_token=canary,
                              expires_at=connection.expires.timestamp() if connection.expires else None,
                              scopes=connection.scopes)
            secret = r.secrets.put(Secret(name=f"oauth/{connection.id}", value=tokens.to_secret_value()))
            connection.token_secret = secret.id
            r.connections.put(connection)
