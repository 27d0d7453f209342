"""Connections reach servers: two accounts side by side, tokens injected at creation,
refreshed into a new container without losing grants, never in output or audit."""

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
from console.services.connection_upkeep import refresh_and_recreate
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


def container_env(stack: Stack, name: str) -> tuple[dict[str, str], dict[str, str]]:
    ref = servers.resolve(stack.ws, f"local/{name}")
    [container] = docker.from_env().containers.list(filters={"label": f"io.tbx.server={ref.server.id}"})
    env = dict(item.split("=", 1) for item in container.attrs["Config"]["Env"])
    return env, container.labels


async def test_two_accounts_injected_refreshed_and_redacted(stack: Stack, provider: LocalOAuthProvider) -> None:
    work = await asyncio.to_thread(sign_in, stack, provider, "alice-work@example.test")
    home = await asyncio.to_thread(sign_in, stack, provider, "alice-home@example.test")
    assert work != home
    await asyncio.to_thread(add_bound, stack, "gh-work", work)
    await asyncio.to_thread(add_bound, stack, "gh-home", home)
    work_token = token_set(stack.ws, stack.ws.repos.connections.get(work)).access_token
    home_token = token_set(stack.ws, stack.ws.repos.connections.get(home)).access_token

    env, labels = container_env(stack, "gh-work")
    assert env["LEAK_VALUE"] == work_token
    assert container_env(stack, "gh-home")[0]["LEAK_VALUE"] == home_token
    assert work_token not in json.dumps(labels) and home_token not in json.dumps(labels)

    name, token = stack.agent("local", "local/gh-work")
    async with agent(stack.url, token) as client:
        await eventually(lambda: _has(client, "gh-work__leak"), within=10)
        assert "gh-home__leak" not in await tool_names(client)  # the other account is not granted
        leaked = await client.call_tool("gh-work__leak", {})
        assert work_token not in leaked.content[0].text and leaked.content[0].text.startswith("‹secret:oauth/")

    # A refresh gives the server a new container with the new token; grants stay.
    recreated = await asyncio.to_thread(refresh_and_recreate, stack.ws, work)
    assert recreated == ["local/gh-work"]
    fresh = token_set(stack.ws, stack.ws.repos.connections.get(work)).access_token
    assert fresh != work_token and container_env(stack, "gh-work")[0]["LEAK_VALUE"] == fresh
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
    assert len([u for u in uses if u["detail"]["connection"] == work]) == 2  # added, then re-created


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
    assert tokens.access_token not in json.dumps(container.labels)
