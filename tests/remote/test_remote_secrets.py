"""Secrets on a remote toolbox (issue 20, part 2): handed over through the SSH-forwarded
engine socket when tbx starts the server, and by the droplet's own gateway (from its
mirror of the vault, which knows no connections: the access token goes there as one of
the server's secrets) when the droplet's engine restarts a crashed server; never in the
container's configuration on the droplet."""

from __future__ import annotations

import asyncio
import json
import secrets
import threading
import time

import docker
import pytest

from console.catalog import load_catalog
from console.catalog.model import OAuthNeed
from console.model import Connection, Secret
from console.oauth.tokens import TokenSet
from console.remote.deploy import tls_context
from console.runtime.containers import LABEL_SERVER
from console.services import agents, grants, servers
from console.services import connections as connection_svc
from console.services.connection_tokens import token_set
from console.services import remote_toolboxes as remote
from console.services.grants import Target
from console.services.tools import approve
from console.workspace import Workspace
from tests.remote.conftest import Cloud
from tests.support.gateway import agent
from tests.support.oauth_provider import LocalOAuthProvider

pytestmark = [pytest.mark.docker, pytest.mark.passphrase_ways("set")]

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


def _crash(ws: Workspace) -> None:
    """Kill the server inside its container and wait for the engine to restart it."""
    container = _container(ws)
    restarts = container.attrs["RestartCount"]
    code, _out = container.exec_run(["python3", "-c", ENVIRON.replace(
        "sys.stdout.write(open(f\"/proc/{pid}/environ\").read())", "os.kill(int(pid), 9)")])
    assert code == 0
    deadline = time.monotonic() + 30
    while _container(ws).attrs["RestartCount"] == restarts:
        assert time.monotonic() < deadline, "the engine did not restart the server"
        time.sleep(0.2)


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
    canary, oauth = f"canary-remote-{secrets.token_hex(12)}", f"canary-oauth-{secrets.token_hex(12)}"
    added = remote.add_droplet(ws, "cloud", region="fra1", size="s-1vcpu-1gb")
    with ws.change() as change:  # a GitHub connection whose token lasts the test (nothing refreshes it)
        tokens = TokenSet(access_token=oauth, expires_at=time.time() + 86400, scopes=["repo"])
        stored = change.repos.secrets.put(Secret(name="oauth/cn_00000000re70", value=tokens.to_secret_value()))
        change.repos.connections.put(Connection(id="cn_00000000re70", provider="github", account="far",
                                                scopes=["repo"], token_secret=stored.id))
    base = load_catalog(ws.paths).get("time")
    entry = base.model_copy(update={"oauth": OAuthNeed(provider="github", scopes=["repo"], token_env="REMOTE_TOKEN")})
    servers.add_server(ws, "cloud", entry, secrets={"REMOTE_CANARY": canary}, connection="cn_00000000re70")
    approve(ws, "cloud", "time")
    _agent, token = agents.add_agent(ws, "far-agent")
    grants.grant(ws, "far-agent", Target.parse("cloud"))
    grants.grant(ws, "far-agent", Target.parse("cloud/time"))
    assert remote.sync(ws, ws.repos.toolboxes.require("cloud")).pushed
    verify = tls_context(added.toolbox.gateway_cert)

    container = _container(ws)
    assert canary not in json.dumps(container.attrs) and oauth not in json.dumps(container.attrs)
    assert container.attrs["Config"]["Cmd"][2] == "REMOTE_CANARY,REMOTE_TOKEN"
    env = _server_env(ws)  # handed over through the forwarded socket
    assert env["REMOTE_CANARY"] == canary and env["REMOTE_TOKEN"] == oauth
    asyncio.run(_call(added.gateway_url, token, verify))

    # The server dies; the droplet's engine restarts it and the droplet's gateway feeds it.
    _crash(ws)
    asyncio.run(_call(added.gateway_url, token, verify))
    env = _server_env(ws)  # handed over by the droplet's gateway, from its mirror
    assert env["REMOTE_CANARY"] == canary and env["REMOTE_TOKEN"] == oauth
    container = _container(ws)
    assert canary not in json.dumps(container.attrs) and oauth not in json.dumps(container.attrs)
    stderr = container.logs(stdout=False, stderr=True).decode()
    assert canary not in stderr and oauth not in stderr
    remote.remove_remote(ws, "cloud")


def test_a_token_refreshed_at_sync_reaches_the_droplets_gateway_in_that_sync(cloud_ws: Workspace,
                                                                              cloud: Cloud) -> None:
    """``sync`` refreshes a token about to expire, hands it to the running server through
    the forwarded socket, and pushes it in the same sync: a restart by the droplet's
    engine then gets the fresh token from the droplet's gateway, not the old one."""
    ws = cloud_ws
    with LocalOAuthProvider() as provider:
        provider.register_client("github-app", "app-secret", ["repo"])
        connection_svc.set_app(ws, "github", "github-app", "app-secret",
                               hosts={"web": f"{provider.base}/github", "api": f"{provider.base}/github/api"})
        shown: list = []

        def approve_then_wait(seconds: float) -> None:
            provider.approve_device(shown[0].user_code)
            threading.Event().wait(min(seconds, 1.0))

        connection, _ = connection_svc.add_connection(ws, "github", None, connection_svc.SignIn(
            device=True, show_code=shown.append, sleep=approve_then_wait))
        added = remote.add_droplet(ws, "cloud", region="fra1", size="s-1vcpu-1gb")
        base = load_catalog(ws.paths).get("time")
        entry = base.model_copy(update={"oauth": OAuthNeed(provider="github", scopes=["repo"],
                                                           token_env="REMOTE_TOKEN")})
        servers.add_server(ws, "cloud", entry, connection=connection.id)
        approve(ws, "cloud", "time")
        _agent, token = agents.add_agent(ws, "far-agent")
        grants.grant(ws, "far-agent", Target.parse("cloud"))
        grants.grant(ws, "far-agent", Target.parse("cloud/time"))
        assert remote.sync(ws, ws.repos.toolboxes.require("cloud")).pushed
        old = token_set(ws, connection).access_token
        assert _server_env(ws)["REMOTE_TOKEN"] == old

        with ws.change() as change:  # the token is about to expire
            stored = change.repos.secrets.get(connection.token_secret)
            tokens = TokenSet.model_validate_json(stored.value)
            stored.value = tokens.model_copy(update={"expires_at": time.time() + 20,
                                                     "issued_at": time.time() - 3600}).to_secret_value()
            change.repos.secrets.put(stored)
        synced = remote.sync(ws, ws.repos.toolboxes.require("cloud"))
        fresh = token_set(ws, ws.repos.connections.get(connection.id)).access_token
        assert fresh != old and synced.renewed == ("cloud/time",) and synced.pushed
        assert _server_env(ws)["REMOTE_TOKEN"] == fresh  # handed through the forwarded socket

        _crash(ws)  # no sync after the refresh's: the droplet's gateway has what that one pushed
        asyncio.run(_call(added.gateway_url, token, tls_context(added.toolbox.gateway_cert)))
        assert _server_env(ws)["REMOTE_TOKEN"] == fresh  # the droplet's gateway had the fresh one
        remote.remove_remote(ws, "cloud")
