"""Egress on a remote toolbox: the droplet's own gateway runs the server's allow-list proxy
in the toolbox's folder on the droplet, and the server's container there (network none)
reaches the allowed origin through it and nothing else. A change of the list is pushed
with the policy and applies without touching the container."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import docker
import pytest

from console.audit import AuditLog
from console.catalog import load_catalog
from console.model import Mount
from console.remote.deploy import remote_home, tls_context
from console.runtime.containers import LABEL_SERVER
from console.services import agents, grants, server_edit, servers
from console.services import remote_toolboxes as remote
from console.services.egress import allow_list
from console.services.grants import Target
from console.services.tools import approve
from console.workspace import Workspace
from tests.remote.conftest import Cloud
from tests.support.egress_net import Origin, tls_for
from tests.support.gateway import agent

pytestmark = [pytest.mark.docker, pytest.mark.passphrase_ways("unset")]

SHAPESHIFTER = Path(__file__).resolve().parents[1] / "fixtures" / "servers" / "shapeshifter.py"


async def _fetch(gateway: str, token: str, verify: Any, **arguments: Any) -> str:
    deadline = time.monotonic() + 40
    while True:
        try:
            async with agent(gateway, token, verify=verify) as client:
                result = await client.call_tool("web__fetch", {"cafile": "/shape/ca.pem", **arguments})
            if not result.is_error:
                return result.content[0].text
        except Exception:  # noqa: BLE001 - the droplet's gateway is still reaching the server
            pass
        assert time.monotonic() < deadline, "the droplet's gateway never reached the server"
        await asyncio.sleep(0.5)


async def _until(check: Any, within: float = 30) -> str:
    deadline = time.monotonic() + within
    while True:
        said = await check()
        if said is not None:
            return said
        assert time.monotonic() < deadline, "not within the time"
        await asyncio.sleep(0.5)


def test_a_droplet_server_reaches_only_its_allowed_hosts(cloud_ws: Workspace, cloud: Cloud) -> None:
    ws = cloud_ws
    folder = Path(tempfile.mkdtemp(prefix="tbx-egress-shape-"))
    folder.chmod(0o755)
    server_tls, _client = tls_for(folder, "127.0.0.2")
    (folder / "ca.pem").write_text((folder / "127.0.0.2.crt").read_text())
    shutil.copy(SHAPESHIFTER, folder / "server.py")
    (folder / "tools.json").write_text('[{"name": "fetch", "description": "Fetch a URL.", '
                                       '"inputSchema": {"type": "object"}}]')
    loop = asyncio.new_event_loop()
    allowed = loop.run_until_complete(Origin("127.0.0.2", server_tls).start())
    other = loop.run_until_complete(Origin("127.0.0.3").start())
    threading.Thread(target=loop.run_forever, daemon=True).start()
    try:
        added = remote.add_droplet(ws, "cloud", region="fra1", size="s-1vcpu-1gb")
        base = load_catalog(ws.paths).get("time")
        entry = base.model_copy(update={"id": "shapeshifter", "command": ["python3", "/shape/server.py",
                                                                         "/shape/tools.json"]})
        servers.add_server(ws, "cloud", entry, name="web", network="egress", egress=[f"127.0.0.2:{allowed.port}"],
                           mounts=[Mount(source=str(folder), target="/shape", read_only=True)])
        approve(ws, "cloud", "web")
        _agent, token = agents.add_agent(ws, "far-agent")
        grants.grant(ws, "far-agent", Target.parse("cloud"))
        grants.grant(ws, "far-agent", Target.parse("cloud/web"))
        box = ws.repos.toolboxes.require("cloud")
        assert remote.sync(ws, box).pushed
        verify = tls_context(added.toolbox.gateway_cert)
        server = servers.resolve(ws, "cloud/web").server
        [container] = docker.from_env().containers.list(all=True, filters={"label": f"{LABEL_SERVER}={server.id}"})
        assert container.attrs["HostConfig"]["NetworkMode"] == "none"
        assert container.attrs["HostConfig"]["Binds"] == [
            f"{remote_home(box)}/egress/{server.id}:/run/tbx-egress:ro"]

        said = asyncio.run(_fetch(added.gateway_url, token, verify, url=f"{allowed.url}/bytes/4096"))
        assert said.startswith("200 4096 bytes"), said
        said = asyncio.run(_fetch(added.gateway_url, token, verify, url=f"{other.url}/"))
        assert said.startswith("HTTP 403"), said
        assert other.connections == 0

        # The list changes here, is pushed, and the droplet's proxy lets the other host through.
        server_edit.edit_server(ws, "cloud/web", egress=allow_list(server.egress, add=[f"127.0.0.3:{other.port}"]))
        assert remote.sync(ws, ws.repos.toolboxes.require("cloud")).pushed

        async def through() -> str | None:
            said = await _fetch(added.gateway_url, token, verify, url=f"{other.url}/")
            return said if said.startswith("200") else None

        asyncio.run(_until(through))
        [after] = docker.from_env().containers.list(all=True, filters={"label": f"{LABEL_SERVER}={server.id}"})
        assert after.id == container.id

        # The droplet's gateway recorded the refusal in its own audit log.
        log = Path(remote_home(box)) / "audit.jsonl"

        async def recorded() -> str | None:
            records = [r for r in AuditLog(log, b"").records() if r["action"] == "egress.blocked"]
            return "yes" if any(r["detail"].get("host") == "127.0.0.3" for r in records) else None

        asyncio.run(_until(recorded, 10))
        remote.remove_remote(ws, "cloud")
    finally:
        for origin in (allowed, other):
            asyncio.run_coroutine_threadsafe(origin.close(), loop).result(5)
        loop.call_soon_threadsafe(loop.stop)
        shutil.rmtree(folder, ignore_errors=True)


def test_a_host_off_the_list_counts_as_access_taken_away() -> None:
    """What makes a change that did not reach a droplet fail the command (and be retried):
    a host taken off the list, or egress turned off, is like a revoke."""
    from console.remote.push import access_of

    def tables(network: str, hosts: list[str]) -> dict[str, Any]:
        return {"servers": {"srv_1": {"id": "srv_1", "toolbox": "tb_1", "name": "web", "network": network,
                                      "egress": hosts}}}

    before = set(access_of(tables("egress", ["a.example", "b.example:8443"])))
    assert before - set(access_of(tables("egress", ["a.example"])))
    assert before - set(access_of(tables("none", ["a.example", "b.example:8443"])))
    assert not before - set(access_of(tables("egress", ["a.example", "b.example:8443", "c.example"])))
