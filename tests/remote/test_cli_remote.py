"""``tbx toolbox add --droplet`` and friends as a user types them."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from console.remote.deploy import tls_context
from tests.remote.conftest import TOKEN, Cloud
from tests.support.gateway import agent, tool_names

pytestmark = pytest.mark.docker


async def _names(url: str, token: str, verify) -> list[str]:  # noqa: ANN001
    async with agent(url, token, verify=verify) as client:
        return await tool_names(client)


def test_droplet_lifecycle_from_the_cli(tbx, memory_keyring, cloud: Cloud) -> None:  # noqa: ANN001
    assert tbx("init").exit_code == 0
    refused = tbx("toolbox", "add", "far", "--droplet", "--yes", env={"DIGITALOCEAN_TOKEN": "dop_v1_wrong"})
    assert refused.exit_code == 1 and "DigitalOcean refused the API token" in refused.stderr
    assert "dop_v1_wrong" not in refused.stderr + refused.stdout

    env = {"DIGITALOCEAN_TOKEN": TOKEN}
    options = tbx("toolbox", "options", env=env)
    assert options.exit_code == 0 and "s-1vcpu-1gb" in options.stdout and "6.00" in options.stdout
    both = tbx("toolbox", "add", "far", "--droplet", "--ssh", "root@127.0.0.1")
    assert both.exit_code == 2 and "exactly one of" in both.stderr

    added = tbx("toolbox", "add", "far", "--droplet", "--region", "ams3", "--size", "s-1vcpu-2gb", "--yes", env=env)
    assert added.exit_code == 0, added.stderr
    assert "SSH host key   SHA256:" in added.stdout and "price          $12.00/month" in added.stdout
    assert "waiting for" in added.stderr or "gateway up" in added.stderr
    [box] = [b for b in json.loads(tbx("toolbox", "list", "--json").stdout) if b["name"] == "far"]
    assert box["kind"] == "droplet" and box["region"] == "ams3" and box["size"] == "s-1vcpu-2gb"
    assert TOKEN not in json.dumps(box)

    assert tbx("server", "add", "far", "time").exit_code == 0
    assert tbx("tools", "approve", "far/time").exit_code == 0
    token = json.loads(tbx("agent", "add", "roamer", "--json").stdout)["token"]
    assert tbx("grant", "roamer", "far").exit_code == 0
    started = time.monotonic()
    assert tbx("grant", "roamer", "far/time/get_current_time").exit_code == 0  # pushes before it returns
    verify = tls_context(box["gateway_cert"])
    url = box["gateway_address"]
    while asyncio.run(_names(url, token, verify)) != ["time__get_current_time"]:
        assert time.monotonic() - started < 10, "the grant did not reach the droplet's gateway"
        time.sleep(0.05)

    removed = tbx("toolbox", "remove", "far", "--yes")
    assert removed.exit_code == 0 and len(cloud.sim.deleted) == 1
