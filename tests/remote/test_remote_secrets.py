"""Secrets on a remote toolbox (issue 20, part 2): handed over through the SSH-forwarded
engine socket when tbx starts the server, and by the droplet's own gateway (from its
mirror of the vault) when the droplet's engine restarts a crashed server; never in the
container's configuration on the droplet."""

from __future__ import annotations

import asyncio
import json
import secrets
import time

import docker
import pytest

from console.catalog import load_catalog
from console.remote.deploy import tls_context
from console.runtime.containers import LABEL_SERVER
from console.services import agents, grants, servers
from console.services import remote_toolboxes as remote
from console.services.grants import Target
from console.services.tools import approve
from console.workspace import Workspace
from tests.remote.conftest import Cloud
from tests.support.gateway import agent

pytestmark = pytest.mark.docker

ENVIRON = """import os, sys
for pid in filter(str.isdigit, os.listdir("/proc")):
    argv = open(f"/proc/{pid}/cmdline", "rb").read().split(b"\\0")
    if any(arg.endswith(b"mcp-server-time") for arg in argv[:2]):
        sys.stdout.write(open(f"/proc/{pid}/environ").read())
        break
"""


def _container(ws: Workspace):  # noqa: ANN202
    ref = servers.resolve(ws, "cloud/time")
    [found] = docker.from_env().containers.list(all=True, filters={"label": f"{LABEL_SERVER}={ref.server.id}"})
    return found


def _server_env(ws: Workspace) -> dict[str, str]:
    code, out = _container(ws).exec_run(["python3", "-c", ENVIRON])
    assert code == 0
    return dict(item.split("=", 1) for item in out.decode().split("\0") if "=" in item)


async def _call(url: str, token: str, verify) -> None:  # noqa: ANN001
    deadline = time.monotonic() + 30
    while True:
        try:
            async with agent(url, token, verify=verify) as client:
                result = await client.call_tool("time__get_current_time", {"timezone": "UTC"})
            if not result.is_error:
                return
        except Exception:  # noqa: BLE001 - the droplet's gateway is reconnecting to the server
            pass
        assert time.monotonic() < deadline, "the droplet's gateway never reached the server"
        await asyncio.sleep(0.5)


def test_a_droplet_server_gets_its_secret_on_every_start(cloud_ws: Workspace, cloud: Cloud) -> None:
    ws = cloud_ws
    canary = f"canary-remote-{secrets.token_hex(12)}"
    added = remote.add_droplet(ws, "cloud", region="fra1", size="s-1vcpu-1gb")
    servers.add_server(ws, "cloud", load_catalog(ws.paths).get("time"), secrets={"REMOTE_CANARY": canary})
    approve(ws, "cloud", "time")
    _agent, token = agents.add_agent(ws, "far-agent")
    grants.grant(ws, "far-agent", Target.parse("cloud"))
    grants.grant(ws, "far-agent", Target.parse("cloud/time"))
    assert remote.sync(ws, ws.repos.toolboxes.require("cloud")).pushed
    verify = tls_context(added.toolbox.gateway_cert)

    container = _container(ws)
    assert canary not in json.dumps(container.attrs) and "REMOTE_CANARY" in container.attrs["Config"]["Cmd"][2]
    assert _server_env(ws)["REMOTE_CANARY"] == canary  # handed over through the forwarded socket
    asyncio.run(_call(added.gateway_url, token, verify))

    # The server dies; the droplet's engine restarts it and the droplet's gateway feeds it.
    restarts = container.attrs["RestartCount"]
    code, _out = container.exec_run(["python3", "-c", ENVIRON.replace(
        "sys.stdout.write(open(f\"/proc/{pid}/environ\").read())", "os.kill(int(pid), 9)")])
    assert code == 0
    deadline = time.monotonic() + 30
    while _container(ws).attrs["RestartCount"] == restarts:
        assert time.monotonic() < deadline, "the engine did not restart the server"
        time.sleep(0.2)
    asyncio.run(_call(added.gateway_url, token, verify))
    assert _server_env(ws)["REMOTE_CANARY"] == canary
    container = _container(ws)
    assert canary not in json.dumps(container.attrs)
    assert canary not in container.logs(stdout=False, stderr=True).decode()
    remote.remove_remote(ws, "cloud")
