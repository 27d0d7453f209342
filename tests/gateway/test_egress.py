"""A server with egress, end to end: an agent's call makes a server in a real container
fetch from a local "internet" (HTTP and HTTPS origins on 127.0.0.x), through the
forwarder in its container and the allow-list proxy its gateway runs.

The container is on network none: a direct connection from inside has no route, a name
does not resolve, and through the proxy only the allowed hosts answer. Refusals are in
the audit log; a change to the list applies at once, without touching the container.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest

from console.audit import AuditLog
from console.services import server_edit, servers
from console.services.egress import allow_list
from console.workspace import Workspace
from tests.gateway.conftest import REPO, Stack, _stack, subprocess_env, writable
from tests.support.egress_net import Origin, tls_for
from tests.support.gateway import agent
from tests.support.sharedkeys import shared_keyring_home

MB = 1024 * 1024


class Internet:
    """The origins, served from a loop in a thread of their own."""

    def __init__(self, folder: Path) -> None:
        server_tls, _client = tls_for(folder, "127.0.0.2")
        self.certificate = (folder / "127.0.0.2.crt").read_text()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.https = self._run(Origin("127.0.0.2", server_tls).start())
        self.http = self._run(Origin("127.0.0.3").start())

    def _run(self, coroutine: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(10)

    def close(self) -> None:
        for origin in (self.https, self.http):
            self._run(origin.close())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


@pytest.fixture(scope="module")
def internet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Internet]:
    net = Internet(tmp_path_factory.mktemp("internet"))
    yield net
    net.close()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, docker_engine, internet: Internet) -> Iterator[Stack]:  # noqa: ANN001
    root = tmp_path_factory.mktemp("egress")
    with shared_keyring_home(root):
        for stack in _stack(root, catalog_servers=()):
            folder = writable(root / "shapes" / "web")
            (folder / "ca.pem").write_text(internet.certificate)
            stack.add_shapeshifter("web", [{"name": "fetch", "description": "Fetch a URL.",
                                            "inputSchema": {"type": "object"}}],
                                   egress=[f"127.0.0.2:{internet.https.port}"], network="egress")
            yield stack


def fetch(stack: Stack, token: str, **arguments: Any) -> str:
    async def run() -> str:
        async with agent(stack.url, token) as client:
            result = await client.call_tool("web__fetch", {"cafile": "/shape/ca.pem", **arguments})
            return result.content[0].text

    return asyncio.run(run())


def audit_records(stack: Stack, action: str) -> list[dict[str, Any]]:
    stack.gateway.flush_audit()
    log = AuditLog(stack.paths.audit_log, b"")
    return [r for r in log.records() if r["action"] == action]


def container(stack: Stack) -> Any:
    server = servers.resolve(stack.ws, "local/web").server
    found = docker.from_env().containers.list(all=True, filters={"label": f"io.tbx.server={server.id}"})
    assert len(found) == 1
    return found[0]


@pytest.fixture(scope="module")
def token(stack: Stack) -> str:
    return stack.agent("local", "local/web")[1]


def test_an_allowed_host_answers_through_the_proxy(stack: Stack, internet: Internet, token: str) -> None:
    said = fetch(stack, token, url=f"{internet.https.url}/bytes/{MB}")
    assert said.startswith(f"200 {MB} bytes"), said
    seen = internet.https.seen[-1]
    assert seen.target == f"/bytes/{MB}" and not any(h.lower().startswith("proxy-") for h in seen.headers)


def test_a_host_not_on_the_list_is_refused_and_recorded(stack: Stack, internet: Internet, token: str) -> None:
    before = internet.http.connections
    said = fetch(stack, token, url=f"{internet.http.url}/secret-path?key=CANARY-egress-41")
    assert said.startswith("HTTP 403:") and f"127.0.0.3:{internet.http.port}" in said, said
    assert "tbx server egress" in said
    assert internet.http.connections == before  # nothing reached it
    blocked = [r for r in audit_records(stack, "egress.blocked") if r["detail"].get("port") == internet.http.port]
    assert blocked and blocked[-1]["target"] == "server:local/web" and blocked[-1]["decision"] == "deny"
    assert blocked[-1]["detail"]["host"] == "127.0.0.3"
    # The proxy's records never carry a path or query (the agent's own call record has its
    # arguments, as every call's does).
    assert "CANARY-egress-41" not in json.dumps(blocked)


def test_no_route_and_no_names_inside_the_container(stack: Stack, internet: Internet, token: str) -> None:
    before = internet.https.connections
    said = fetch(stack, token, url=f"{internet.https.url}/", direct=True)
    assert said.startswith("error") and "ConnectionRefused" in said or "unreachable" in said.lower(), said
    assert internet.https.connections == before
    said = fetch(stack, token, resolve="example.com")
    assert said.startswith("error gaierror"), said
    attrs = container(stack).attrs
    assert attrs["HostConfig"]["NetworkMode"] == "none"
    assert set(attrs["NetworkSettings"]["Networks"]) <= {"none"}
    assert any(bind.endswith(":/run/tbx-egress:ro") for bind in attrs["HostConfig"]["Binds"])


def test_a_changed_list_applies_without_touching_the_container(stack: Stack, internet: Internet,
                                                               token: str) -> None:
    before = container(stack)
    http_host = f"127.0.0.3:{internet.http.port}"
    out = subprocess.run([sys.executable, "-m", "console", "server", "egress", "local/web", "--allow-host", http_host,
                          "--json"], cwd=REPO, env={**subprocess_env(), "TBX_HOME": str(stack.paths.data_dir)},
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stderr == "", out.stderr
    shown = json.loads(out.stdout)
    assert shown["egress"] and http_host in shown["hosts"] and shown["changed"] == ["egress"]
    stack.ws.refresh()

    async def through() -> bool:
        return (await asyncio.to_thread(fetch, stack, token, url=f"{internet.http.url}/")).startswith("200")

    asyncio.run(_eventually(through, 10))
    after = container(stack)
    assert after.id == before.id and after.attrs["State"]["StartedAt"] == before.attrs["State"]["StartedAt"]
    changes = audit_records(stack, "server.egress")
    assert changes[-1]["detail"]["added"] == [http_host]
    # And taken away again: refused from the next connection on.
    server_edit.edit_server(stack.ws, "local/web", egress=allow_list(shown["hosts"], remove=[http_host]))

    async def refused() -> bool:
        return (await asyncio.to_thread(fetch, stack, token, url=f"{internet.http.url}/")).startswith("HTTP 403")

    asyncio.run(_eventually(refused, 10))


async def _eventually(check: Any, within: float) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, "not within the time"
        await asyncio.sleep(0.2)


def test_egress_turned_off_makes_the_container_again_without_the_proxy(stack: Stack, internet: Internet,
                                                                       token: str) -> None:
    ws = Workspace.open(stack.paths)
    server_edit.edit_server(ws, "local/web", network="none")
    attrs = container(stack).attrs
    assert attrs["Args"][0] != "/opt/tbx-launch/egress" and not attrs["HostConfig"].get("Binds")
    assert not any(e.startswith(("HTTP_PROXY=", "HTTPS_PROXY=")) for e in attrs["Config"]["Env"])
    server_edit.edit_server(ws, "local/web", network="egress")
    attrs = container(stack).attrs
    assert attrs["Args"][0] == "/opt/tbx-launch/egress"

    async def through() -> bool:
        said = await asyncio.to_thread(fetch, stack, token, url=f"{internet.https.url}/bytes/10")
        return said.startswith("200 10 bytes")

    asyncio.run(_eventually(through, 30))
