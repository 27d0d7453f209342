"""A remote MCP server in a droplet's toolbox (issue 21, part A): the mirror of the vault
carries the server and its header secrets, and the droplet's own gateway calls out to it.

The simulated droplet's gateway runs on this machine's network, so the remote server is
an SDK server on 127.0.0.1 that writes down the headers of every request it gets."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pytest

from console.remote.deploy import tls_context
from console.remote.policy import policy_tables
from console.services import agents, grants
from console.services import remote_toolboxes as remote
from console.services.grants import Target
from console.services.remote_servers import add_remote_server
from console.services.tools import approve
from console.workspace import Workspace
from tests.conftest import CANARY
from tests.remote.conftest import Cloud
from tests.support.gateway import agent
from tests.support.remote_mcp import RemoteServer

pytestmark = [pytest.mark.docker, pytest.mark.filterwarnings("ignore::mcp.MCPDeprecationWarning")]


def test_the_mirror_carries_a_remote_server_and_its_header_secret() -> None:
    tables: dict[str, Any] = {
        "toolboxes": {"tb_1": {"id": "tb_1", "name": "cloud", "kind": "droplet"}},
        "servers": {"srv_1": {"id": "srv_1", "toolbox": "tb_1", "name": "far", "kind": "remote",
                              "url": "https://mcp.example.com/mcp", "transport": "streamable-http",
                              "secret_refs": {"X-Api-Key": "sec_1"}}},
        "secrets": {"sec_1": {"id": "sec_1", "name": "cloud/far/header/X-Api-Key", "value": CANARY},
                    "sec_2": {"id": "sec_2", "name": "other", "value": "not for this toolbox"}},
    }
    mirrored = policy_tables(tables, "tb_1")
    server = mirrored["servers"]["srv_1"]
    assert (server["kind"], server["url"], server["secret_refs"]) == (
        "remote", "https://mcp.example.com/mcp", {"X-Api-Key": "sec_1"})
    assert list(mirrored["secrets"]) == ["sec_1"] and mirrored["secrets"]["sec_1"]["value"] == CANARY


async def _echo(gateway: str, token: str, verify: Any) -> str:
    deadline = time.monotonic() + 40
    while True:
        try:
            async with agent(gateway, token, verify=verify) as client:
                result = await client.call_tool("far__echo", {"text": "from the droplet"})
            if not result.is_error:
                return result.content[0].text
        except Exception:  # noqa: BLE001 - the droplet's gateway is still reaching the server
            pass
        assert time.monotonic() < deadline, "the droplet's gateway never reached the remote server"
        await asyncio.sleep(0.5)


def test_a_droplet_gateway_calls_out_to_a_remote_server(cloud_ws: Workspace, cloud: Cloud, tmp_path: Path) -> None:
    ws = cloud_ws
    with RemoteServer(tmp_path / "far") as far:
        added = remote.add_droplet(ws, "cloud", region="fra1", size="s-1vcpu-1gb")
        add_remote_server(ws, "cloud", far.url, name="far", headers={"X-Api-Key": CANARY})
        approve(ws, "cloud", "far")
        _agent, token = agents.add_agent(ws, "far-agent")
        grants.grant(ws, "far-agent", Target.parse("cloud"))
        grants.grant(ws, "far-agent", Target.parse("cloud/far"))
        assert remote.sync(ws, ws.repos.toolboxes.require("cloud")).pushed
        said = asyncio.run(_echo(added.gateway_url, token, tls_context(added.toolbox.gateway_cert)))
        assert said == "echo: from the droplet"
        seen = far.requests()
        assert seen and all(r["headers"].get("x-api-key") == CANARY for r in seen)
        assert not any(token in json.dumps(r) for r in seen), "the agent's token reached the upstream"
        remote.remove_remote(ws, "cloud")
