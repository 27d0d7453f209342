"""Connections reach servers: two accounts side by side, tokens handed over at start (never
in the container's configuration), a refresh handed to the running server without a new
container or lost grants, never in output or audit."""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import Iterator

import docker
import pytest

from console.catalog import load_catalog
from console.model import Mount
from console.services import connections as svc
from console.services import servers
from console.services.connection_tokens import token_set
from console.services.connection_upkeep import refresh_and_renew
from console.services.tools import approve
from tests.gateway.conftest import SHAPESHIFTER, Stack, writable
from tests.oauth.conftest import CLIENT_SECRET, SCOPES
from tests.support.browser import HeadlessChromium, require_chromium
from tests.support.gateway import agent, eventually, tool_names
from tests.support.oauth_provider import LocalOAuthProvider


@pytest.fixture(scope="module")
def provider() -> Iterator[LocalOAuthProvider]:
    with LocalOAuthProvider() as p:
        p.register_client("github-app", CLIENT_SECRET, SCOPES)
        yield p


def sign_in(stack: Stack, provider: LocalOAuthProvider, user: str) -> str:
    require_chromium()
    svc.set_app(stack.ws, "github", "github-app", CLIENT_SECRET,
                hosts={"web": f"{provider.base}/github", "api": f"{provider.base}/github/api"})
    provider.user = user
    with HeadlessChromium() as browser:
        connection, _ = svc.add_connection(stack.ws, "github", None, svc.SignIn(opener=browser, timeout=30))
    return connection.id


def add_bound(stack: Stack, name: str, connection: str, oauth: dict | None = None) -> None:
    """Our test server as a GitHub-signed-in server: the token arrives as LEAK_VALUE."""
    folder = writable(stack.root / "shapes" / name)
    (folder / "tools.json").write_text(json.dumps([
        {"name": "leak", "description": "Returns its configuration.", "inputSchema": {"type": "object"}},
    ]))
    shutil.copy(SHAPESHIFTER, folder / "server.py")
    base = load_catalog(stack.paths).get("time")
    entry = type(base).model_validate({**base.model_dump(mode="json"),
        "id": "gh-shape", "title": "GitHub-shaped test server",
        "command": ["python3", "/shape/server.py", "/shape/tools.json"], "env": [], "mounts": [], "secrets": [],
        "oauth": oauth or {"provider": "github", "scopes": ["repo"], "token_env": "LEAK_VALUE"},
    })
    servers.add_server(stack.ws, "local", entry, name=name, connection=connection,
                       mounts=[Mount(source=str(folder), target="/shape", read_only=True)])
    approve(stack.ws, "local", name)


SERVER_ENVIRON = """
import os, sys
for pid in filter(str.isdigit, os.listdir("/proc")):
    if open(f"/proc/{pid}/cmdline", "rb").read().split(b"\\0")[:2] == [b"python3", b"/shape/server.py"]:
        sys.stdout.write(open(f"/proc/{pid}/environ").read())
        break
"""


def _container(stack: Stack, name: str):  # noqa: ANN202
    ref = servers.resolve(stack.ws, f"local/{name}")
    [container] = docker.from_env().containers.list(filters={"label": f"io.tbx.server={ref.server.id}"})
    return container


def container_id(stack: Stack, name: str) -> str:
    return _container(stack, name).id


def container_env(stack: Stack, name: str) -> tuple[dict[str, str], dict[str, str]]:
    """The container's configuration: its Env and labels, as ``docker inspect`` shows them."""
    container = _container(stack, name)
    env = dict(item.split("=", 1) for item in container.attrs["Config"]["Env"])
    return env, container.labels


def process_env(stack: Stack, name: str) -> dict[str, str]:
    """The environment the server process runs with (what it was handed)."""
    code, out = _container(stack, name).exec_run(["python3", "-c", SERVER_ENVIRON])
    assert code == 0, out
    return dict(item.split("=", 1) for item in out.decode().split("\0") if "=" in item)


async def test_two_accounts_injected_refreshed_and_redacted(stack: Stack, provider: LocalOAuthProvider) -> None:
    work = await asyncio.to_thread(sign_in, stack, provider, "alice-work@example.test")
    home = await asyncio.to_thread(sign_in, stack, provider, "alice-home@example.test")
    assert work != home
    await asyncio.to_thread(add_bound, stack, "gh-work", work)
    await asyncio.to_thread(add_bound, stack, "gh-home", home)
    work_token = token_set(stack.ws, stack.ws.repos.connections.get(work)).access_token
    home_token = token_set(stack.ws, stack.ws.repos.connections.get(home)).access_token

    for name in ("gh-work", "gh-home"):
        env, labels = container_env(stack, name)
        assert "LEAK_VALUE" not in env
        assert work_token not in json.dumps([env, labels]) and home_token not in json.dumps([env, labels])
    assert process_env(stack, "gh-work")["LEAK_VALUE"] == work_token
    assert process_env(stack, "gh-home")["LEAK_VALUE"] == home_token
    before = container_id(stack, "gh-work")

    name, token = stack.agent("local", "local/gh-work")
    async with agent(stack.url, token) as client:
        await eventually(lambda: _has(client, "gh-work__leak"), within=10)
        assert "gh-home__leak" not in await tool_names(client)  # the other account is not granted
        leaked = await client.call_tool("gh-work__leak", {})
        assert work_token not in leaked.content[0].text and leaked.content[0].text.startswith("‹secret:oauth/")

    # A refresh restarts the server's process with the new token, same container; grants stay.
    renewed = await asyncio.to_thread(refresh_and_renew, stack.ws, work)
    assert renewed == ["local/gh-work"]
    fresh = token_set(stack.ws, stack.ws.repos.connections.get(work)).access_token
    assert fresh != work_token and process_env(stack, "gh-work")["LEAK_VALUE"] == fresh
    assert container_id(stack, "gh-work") == before and fresh not in json.dumps(container_env(stack, "gh-work"))
    async with agent(stack.url, token) as client:
        await eventually(lambda: _calls(client, "gh-work__leak"), within=15)
        again = await client.call_tool("gh-work__leak", {})
        assert fresh not in again.content[0].text and not again.is_error

    audit = stack.paths.audit_log.read_text()
    for secret in (work_token, home_token, fresh, CLIENT_SECRET):
        assert secret not in audit
    uses = [json.loads(line) for line in audit.splitlines() if '"connection.use"' in line]
    assert {(u["target"], u["detail"]["account"]) for u in uses} == {
        ("server:local/gh-work", "alice-work"), ("server:local/gh-home", "alice-home")}
    assert len([u for u in uses if u["detail"]["connection"] == work]) == 2  # added, then renewed


async def _has(client, name: str) -> bool:  # noqa: ANN001
    return name in await tool_names(client)


async def _calls(client, name: str) -> bool:  # noqa: ANN001
    try:
        result = await client.call_tool(name, {})
    except Exception:
        return False
    return not result.is_error


async def test_a_token_file_is_written_inside_the_container(stack: Stack, provider: LocalOAuthProvider) -> None:
    """Servers that read credentials from a file (Google Drive's) get it in their /tmp."""
    connection = await asyncio.to_thread(sign_in, stack, provider, "filer@example.test")
    await asyncio.to_thread(add_bound, stack, "gh-file", connection,
                            {"provider": "github", "scopes": ["repo"], "token_file": "/tmp/creds/credentials.json"})
    ref = servers.resolve(stack.ws, "local/gh-file")
    [container] = docker.from_env().containers.list(filters={"label": f"io.tbx.server={ref.server.id}"})
    code, output = container.exec_run(["sh", "-c", "stat -c %a /tmp/creds/credentials.json; cat /tmp/creds/credentials.json"])
    mode, body = output.decode().split("\n", 1)
    assert code == 0 and mode == "600"
    written = json.loads(body)
    tokens = token_set(stack.ws, stack.ws.repos.connections.get(connection))
    assert written["access_token"] == tokens.access_token and written["expiry_date"] > 0
    assert tokens.access_token not in json.dumps([container.attrs["Config"], container.labels])

    # A refresh replaces the file in the running server's tmpfs: same container, same process.
    started = container.attrs["State"]["StartedAt"]
    assert await asyncio.to_thread(refresh_and_renew, stack.ws, connection) == ["local/gh-file"]
    fresh = token_set(stack.ws, stack.ws.repos.connections.get(connection)).access_token
    assert fresh != tokens.access_token
    container.reload()
    code, output = container.exec_run(["sh", "-c", "stat -c %a /tmp/creds/credentials.json; cat /tmp/creds/credentials.json"])
    mode, body = output.decode().split("\n", 1)
    assert code == 0 and mode == "600" and json.loads(body)["access_token"] == fresh
    assert container.attrs["State"]["StartedAt"] == started and container.attrs["RestartCount"] == 0
    assert fresh not in json.dumps([container.attrs["Config"], container.labels])
