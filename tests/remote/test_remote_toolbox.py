"""Remote toolboxes end to end: a droplet from the (simulated) DigitalOcean API that is a
real sshd with a real Docker engine behind it, its own gateway over TLS, agents calling
through it, grants following within seconds, audit coming home, and the faults."""

from __future__ import annotations

import asyncio
import json
import time

import docker
import pytest

from console.catalog import load_catalog
from console.errors import TbxError
from console.remote.deploy import LABEL_GATEWAY_OF, container_name, tls_context
from console.remote.ssh import HostKeyChanged
from console.services import agents, grants, servers
from console.services import remote_toolboxes as remote
from console.services.grants import Target
from console.services.tools import approve
from console.workspace import Workspace
from tests.remote.conftest import TOKEN, Cloud
from tests.support.gateway import agent, eventually, tool_names

pytestmark = pytest.mark.docker


def gateway_container(toolbox_id: str):  # noqa: ANN201
    [found] = docker.from_env().containers.list(all=True, filters={"label": f"{LABEL_GATEWAY_OF}={toolbox_id}"})
    return found


async def _names(url: str, token: str, verify) -> list[str]:  # noqa: ANN001
    async with agent(url, token, verify=verify) as client:
        return await tool_names(client)


def test_droplet_toolbox_end_to_end(cloud_ws: Workspace, cloud: Cloud) -> None:
    ws = cloud_ws
    lines: list[str] = []
    added = remote.add_droplet(ws, "cloud", region="fra1", size="s-1vcpu-1gb", progress=lines.append)
    box = added.toolbox
    [droplet] = cloud.sim.droplets.values()
    assert "tbx" in droplet["tags"] and f"tbx-toolbox-{box.id}" in droplet["tags"]
    assert "docker.io" in droplet["user_data"] and added.price_monthly == 6.0
    assert box.ssh_host_key and cloud.sshd_of(droplet["id"]).host_key_line.startswith(box.ssh_host_key)
    assert added.gateway_url == f"https://{droplet['networks']['v4'][0]['ip_address']}:8443"
    assert any("gateway up" in line for line in lines)

    # A server on the droplet, through the forwarded engine socket.
    servers.add_server(ws, "cloud", load_catalog(ws.paths).get("time"))
    approve(ws, "cloud", "time")
    name = "far-agent"
    _agent, token = agents.add_agent(ws, name)
    grants.grant(ws, name, Target.parse("cloud"))
    grants.grant(ws, name, Target.parse("cloud/time"))
    assert remote.sync(ws, ws.repos.toolboxes.require("cloud")).pushed

    verify = tls_context(box.gateway_cert)

    async def call() -> str:
        async with agent(added.gateway_url, token, verify=verify) as client:
            await eventually(lambda: _has(client, "time__get_current_time"), within=10)
            result = await client.call_tool("time__get_current_time", {"timezone": "UTC"})
            assert not result.is_error
            return result.content[0].text

    assert "UTC" in asyncio.run(call())

    # Revoke: the gateway on the droplet stops offering the tool once the policy is pushed.
    grants.revoke(ws, name, Target.parse("cloud/time"))
    started = time.monotonic()
    remote.sync(ws, ws.repos.toolboxes.require("cloud"))
    while asyncio.run(_names(added.gateway_url, token, verify)) and time.monotonic() - started < 10:
        time.sleep(0.1)
    assert asyncio.run(_names(added.gateway_url, token, verify)) == []  # bench/remote.py times this

    # The gateway's decisions come home into the local chain.
    remote.sync(ws, ws.repos.toolboxes.require("cloud"))
    ws.refresh()
    records = list(ws.audit.records())
    calls = [r for r in records if r["action"] == "tool.call" and r["actor"].endswith("@cloud")]
    assert calls and calls[0]["decision"] == "allow" and calls[0]["agent"] == "far-agent"
    assert ws.audit.verify(ws.audit_checkpoint).ok
    text = ws.paths.audit_log.read_text()
    assert TOKEN not in text and token not in text

    # Nothing of the vault's other secrets went to the droplet: the policy it holds,
    # decrypted, has no API token, no SSH key, no other toolbox.
    from console.remote.deploy import mirror_for

    shipped = json.dumps(mirror_for(ws, box).open().tables())
    private_key = ws.repos.secrets.get(box.ssh_key).value
    assert TOKEN not in shipped and private_key not in shipped and "local" not in json.loads(shipped)["toolboxes"]

    remote.remove_remote(ws, "cloud")
    assert [d["id"] for d in cloud.sim.deleted] == [droplet["id"]] and cloud.sim.droplets == {}
    assert not docker.from_env().containers.list(all=True, filters={"label": f"{LABEL_GATEWAY_OF}={box.id}"})
    assert ws.repos.toolboxes.by_name("cloud") is None


async def _has(client, name: str) -> bool:  # noqa: ANN001
    return name in await tool_names(client)


def test_creation_failing_halfway_destroys_the_droplet(cloud_ws: Workspace, cloud: Cloud) -> None:
    cloud.sim.fail_provision = True
    with pytest.raises(TbxError):
        remote.add_droplet(cloud_ws, "broken", api_timeout=5)
    assert cloud_ws.repos.toolboxes.by_name("broken") is None
    assert cloud.sim.droplets == {} and len(cloud.sim.deleted) == 1
    assert cloud.sim.keys == {}


def test_no_ssh_after_creation_destroys_the_droplet(cloud_ws: Workspace, cloud: Cloud) -> None:
    """The droplet becomes active but nothing ever answers on port 22."""
    original = cloud.sim.provision
    cloud.sim.provision = lambda droplet: "127.0.0.1"  # nobody listens on 127.0.0.1:22 here
    try:
        with pytest.raises(TbxError, match="127.0.0.1"):
            remote.add_droplet(cloud_ws, "mute", ssh_timeout=3)
    finally:
        cloud.sim.provision = original
    assert cloud_ws.repos.toolboxes.by_name("mute") is None
    assert cloud.sim.droplets == {} and len(cloud.sim.deleted) == 1 and cloud.sim.keys == {}


def test_changed_host_key_is_refused_and_ssh_drop_loses_no_grant(cloud_ws: Workspace, cloud: Cloud) -> None:
    ws = cloud_ws
    added = remote.add_droplet(ws, "edge")
    box = added.toolbox
    sshd = cloud.sshd_of(box.droplet_id)
    name = "edge-agent"
    _agent, token = agents.add_agent(ws, name)
    servers.add_server(ws, "edge", load_catalog(ws.paths).get("time"))
    approve(ws, "edge", "time")
    grants.grant(ws, name, Target.parse("edge"))

    # A link dropped in the middle of a session comes back, and the grant made while it
    # was down still reaches the gateway.
    from console.remote.links import open_tunnel

    with open_tunnel(ws, ws.repos.toolboxes.require("edge")) as tunnel:
        remote.sync(ws, ws.repos.toolboxes.require("edge"), tunnel)
        sshd.drop_connections()
        grants.grant(ws, name, Target.parse("edge/time"))
        assert remote.sync(ws, ws.repos.toolboxes.require("edge"), tunnel).pushed
    verify = tls_context(box.gateway_cert)
    deadline = time.monotonic() + 5
    while "time__get_current_time" not in asyncio.run(_names(added.gateway_url, token, verify)):
        assert time.monotonic() < deadline, "the grant made across the dropped link never arrived"
        time.sleep(0.1)

    # The droplet is "rebuilt" with a new host key: we refuse to talk to it.
    sshd.rotate_host_key()
    with pytest.raises(HostKeyChanged, match="SHA256:"):
        servers.start_server(ws, "edge/time")
    remote.set_api_token(ws, TOKEN)


def test_policy_pushed_while_the_gateway_restarts_arrives(cloud_ws: Workspace, cloud: Cloud) -> None:
    ws = cloud_ws
    added = remote.add_droplet(ws, "bumpy")
    box = added.toolbox
    servers.add_server(ws, "bumpy", load_catalog(ws.paths).get("time"))
    approve(ws, "bumpy", "time")
    name = "bumpy-agent"
    _agent, token = agents.add_agent(ws, name)
    grants.grant(ws, name, Target.parse("bumpy"))
    remote.sync(ws, box)
    gateway = gateway_container(box.id)
    assert gateway.name == container_name(box)
    gateway.stop(timeout=5)
    grants.grant(ws, name, Target.parse("bumpy/time"))
    assert remote.sync(ws, ws.repos.toolboxes.require("bumpy")).pushed
    gateway.start()
    verify = tls_context(box.gateway_cert)
    deadline = time.monotonic() + 30
    while True:
        try:
            if "time__get_current_time" in asyncio.run(_names(added.gateway_url, token, verify)):
                break
        except Exception:  # still starting
            pass
        assert time.monotonic() < deadline, "the policy pushed during the restart was not in force after it"
        time.sleep(0.3)
