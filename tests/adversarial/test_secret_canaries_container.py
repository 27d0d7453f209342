"""Secrets never sit in a server container's configuration (issue 20, part 2).

A unique canary secret and a canary OAuth token for a real server (server-everything, in
its real container behind a real gateway) must reach the server process on every start —
the gateway's own, a crash the engine restarts, ``tbx server restart``, a re-created
container — while nobody who can read the toolbox's engine finds them: not ``docker
inspect``, ``docker history --no-trunc``, ``docker logs``, the engine's files for the
container under its data root, the audit log or tbx's own logs. A container started by
hand, without tbx to hand the secrets over, stops saying why instead of running without.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from console.catalog import load_catalog
from console.model import Connection, Secret
from console.oauth.tokens import TokenSet
from console.runtime.containers import LABEL_SERVER, ContainerSpec, Engine
from console.runtime.handover import PROTOCOL
from console.services import server_status, servers
from console.services.tools import approve
from tests.gateway.conftest import Stack, _stack
from tests.support.gateway import agent
from tests.support.sharedkeys import shared_keyring_home

pytestmark = [pytest.mark.docker, pytest.mark.slow]

TOKEN_ENV = "GITHUB_PERSONAL_ACCESS_TOKEN"
NODE = """for p in /proc/[0-9]*; do
  case "$(tr '\\0' ' ' < "$p/cmdline" 2>/dev/null)" in node*) %s; break;; esac
done"""
KILL_NODE = NODE % 'kill -9 "${p#/proc/}" && echo killed'
NODE_ENVIRON = NODE % 'cat "$p/environ"'



@pytest.fixture(scope="module")
def canaries() -> dict[str, str]:
    return {"secret": f"canary-secret-{secrets.token_hex(12)}", "token": f"canary-token-{secrets.token_hex(12)}"}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, docker_engine, canaries: dict[str, str]) -> Iterator[Stack]:  # noqa: ANN001
    root = tmp_path_factory.mktemp("canaries")
    with shared_keyring_home(root):
        for stack in _stack(root, ()):
            _add_everything(stack, canaries)
            yield stack


def _add_everything(stack: Stack, canaries: dict[str, str]) -> None:
    """server-everything with a secret of its own and bound to a GitHub connection whose
    token (good for a day, so nothing refreshes it) is the token canary."""
    with stack.ws.change() as change:
        value = TokenSet(access_token=canaries["token"], expires_at=time.time() + 86400, scopes=["repo"])
        token = change.repos.secrets.put(Secret(name="oauth/canary", value=value.to_secret_value()))
        change.repos.connections.put(Connection(id="cn_0000000cana", provider="github", account="canary",
                                                scopes=["repo"], token_secret=token.id))
    base = load_catalog(stack.paths).get("everything")
    entry = base.model_copy(update={"oauth": type(base).model_validate({
        **base.model_dump(mode="json"), "oauth": {"provider": "github", "scopes": ["repo"], "token_env": TOKEN_ENV},
    }).oauth})
    servers.add_server(stack.ws, "local", entry, secrets={"CANARY_SECRET": canaries["secret"]},
                       connection="cn_0000000cana")
    approve(stack.ws, "local", "everything")


def _container(stack: Stack) -> docker.models.containers.Container:
    ref = servers.resolve(stack.ws, "local/everything")
    [found] = docker.from_env().containers.list(all=True, filters={"label": f"{LABEL_SERVER}={ref.server.id}"})
    return found


def _engine_files(container_id: str) -> list[Path]:
    """The engine's own files for the container under its data root (config.v2.json,
    hostconfig.json, its json log, ...)."""
    root = Path(docker.from_env().info()["DockerRootDir"]) / "containers" / container_id
    return [path for path in root.rglob("*") if path.is_file()]


def _places(stack: Stack) -> dict[str, str]:
    """Everything someone who can read the engine (or tbx's files) can read, by name."""
    client = docker.from_env()
    container = _container(stack)
    places = {
        "docker inspect": json.dumps(client.api.inspect_container(container.id)),
        "docker history --no-trunc": json.dumps(client.api.history(container.attrs["Image"])),
        "docker image inspect": json.dumps(client.api.inspect_image(container.attrs["Image"])),
        "docker logs": client.api.logs(container.id, stdout=True, stderr=True).decode("utf-8", "replace"),
        "audit log": stack.paths.audit_log.read_text(),
    }
    for path in _engine_files(container.id):
        places[str(path)] = path.read_bytes().decode("utf-8", "replace")
    for path in stack.paths.log_dir.rglob("*") if stack.paths.log_dir.exists() else []:
        if path.is_file():
            places[str(path)] = path.read_text("utf-8", "replace")
    return places


def _assert_nowhere(stack: Stack, canaries: dict[str, str]) -> None:
    places = _places(stack)
    assert any("config.v2.json" in name for name in places)  # the engine's files were read
    leaks = [(name, which) for name, text in places.items() for which, canary in canaries.items() if canary in text]
    assert leaks == []  # names only: the values stay out of the test output
    assert not [name for name, text in places.items() if PROTOCOL in text]


def _received(stack: Stack, canaries: dict[str, str]) -> None:
    """The server process runs with both values in its environment (read from /proc by
    an exec, whose output the engine does not log)."""
    code, out = _container(stack).exec_run(["sh", "-c", NODE_ENVIRON])
    assert code == 0
    environ = dict(item.split("=", 1) for item in out.decode().split("\0") if "=" in item)
    assert environ.get("CANARY_SECRET") == canaries["secret"] and environ.get(TOKEN_ENV) == canaries["token"]


async def _through_gateway(stack: Stack, tool: str, arguments: dict[str, str]) -> str:
    """An agent's call through the gateway, retried while the gateway's session with a
    restarted server comes back; the result's text."""
    _name, token = stack.agent("local", f"local/everything/{tool}")
    deadline = time.monotonic() + 30
    while True:
        try:
            async with agent(stack.url, token) as client:
                result = await client.call_tool(f"everything__{tool}", arguments)
            if not result.is_error:
                return result.content[0].text
        except Exception:  # noqa: BLE001 - the gateway's session with the server is coming back
            pass
        assert time.monotonic() < deadline, "the gateway never reached the server"
        await asyncio.sleep(0.5)


async def _served_and_nowhere(stack: Stack, canaries: dict[str, str], word: str) -> None:
    """An agent's call through the gateway reaches the server (waiting for it to be back
    after a restart), the server runs with the canaries, and nothing anyone can read
    holds them."""
    assert word in await _through_gateway(stack, "echo", {"message": word})
    _received(stack, canaries)
    stack.gateway.flush_audit()
    _assert_nowhere(stack, canaries)


async def test_the_canaries_reach_the_server_and_nothing_else(stack: Stack, canaries: dict[str, str]) -> None:
    container = _container(stack)
    config = container.attrs["Config"]
    assert "CANARY_SECRET" not in json.dumps(config["Env"]) and TOKEN_ENV not in json.dumps(config["Env"])
    assert "CANARY_SECRET" in config["Cmd"][2] and TOKEN_ENV in config["Cmd"][2]  # names only
    await _served_and_nowhere(stack, canaries, "hello")


async def test_a_crash_restarted_by_the_engine_is_handed_the_secrets_again(stack: Stack,
                                                                           canaries: dict[str, str]) -> None:
    """The server dies inside its container; the engine's restart policy starts the
    container again and the gateway's supervisor feeds the waiting launcher."""
    container = _container(stack)
    restarts = container.attrs["RestartCount"]
    code, out = container.exec_run(["sh", "-c", KILL_NODE])
    assert code == 0 and out.strip() == b"killed", out
    deadline = time.monotonic() + 30
    while (container := _container(stack)).attrs["RestartCount"] == restarts:
        assert time.monotonic() < deadline, "the engine did not restart the container"
        await asyncio.sleep(0.2)
    await _served_and_nowhere(stack, canaries, "again")


async def test_restart_and_recreate_hand_the_secrets_over(stack: Stack, canaries: dict[str, str]) -> None:
    before = _container(stack).id
    await asyncio.to_thread(servers.restart_server, stack.ws, "local/everything")
    assert _container(stack).id == before
    _received(stack, canaries)
    await asyncio.to_thread(servers.recreate_server, stack.ws, "local/everything")
    assert _container(stack).id != before
    await _served_and_nowhere(stack, canaries, "anew")


def test_a_container_started_by_hand_says_why_it_does_not_run(stack: Stack, canaries: dict[str, str]) -> None:
    """The server's own container spec, started with ``docker start`` and nobody to hand
    the secrets over (a copy no tbx watches, waiting 2 s instead of the start timeout)."""
    ref = servers.resolve(stack.ws, "local/everything")
    engine = Engine()
    spec = servers.container_spec(stack.ws, ref, engine)
    spec.name += "-by-hand"
    spec.labels = {}
    spec.command[3] = "2"  # the launcher's wait
    container = engine.create(spec)
    try:
        engine.client.api.update_container(container.id, restart_policy={"Name": "no"})
        engine.client.api.start(container.id)
        status = engine.client.api.wait(container.id, timeout=30)["StatusCode"]
        logs = engine.client.api.logs(container.id, stdout=True, stderr=True).decode()
    finally:
        engine.remove(container.id)
        engine.close()
    assert status != 0
    assert "no secrets were handed over within 2s" in logs and "CANARY_SECRET" in logs
    assert "tbx server start" in logs
    assert canaries["secret"] not in logs and canaries["token"] not in logs


async def test_a_container_an_older_tbx_made_is_replaced_at_start(stack: Stack, canaries: dict[str, str]) -> None:
    """A container made before the handover (the values in its Env, the server's command
    as its Cmd, as tbx made them) is re-created when the server is started."""
    ref = servers.resolve(stack.ws, "local/everything")
    engine = Engine()
    try:
        spec = servers.container_spec(stack.ws, ref, engine)
        old = ContainerSpec(**{**spec.__dict__, "command": list(servers.entry_of(ref.server).command),
                               "env": {**spec.env, "CANARY_SECRET": canaries["secret"], TOKEN_ENV: canaries["token"]}})
        engine.remove(_container(stack).id)
        engine.create(old)
    finally:
        engine.close()
    assert canaries["secret"] in json.dumps(_container(stack).attrs["Config"]["Env"])
    await asyncio.to_thread(servers.start_server, stack.ws, "local/everything")
    await _served_and_nowhere(stack, canaries, "anew")


async def test_the_servers_own_tool_echoes_them_and_only_its_answer_is_kept(stack: Stack,
                                                                           canaries: dict[str, str]) -> None:
    """server-everything's get-env shows both values (called as the owner, unmasked), and
    to an agent through the gateway only as masked names. Its answer travels on the
    container's stdout, the MCP channel, which the engine's json-file log driver keeps:
    after this call the values are in the engine's log as the server's stdout records,
    and still nowhere else (run last: it is the server itself that prints them)."""
    result = await asyncio.to_thread(server_status.call_tool, stack.ws, "local/everything/get-env", {})
    echoed = json.loads(result.result.content[0].text)
    assert echoed["CANARY_SECRET"] == canaries["secret"] and echoed[TOKEN_ENV] == canaries["token"]
    masked = await _through_gateway(stack, "get-env", {})
    assert canaries["secret"] not in masked and canaries["token"] not in masked
    assert "CANARY_SECRET" in masked and TOKEN_ENV in masked  # the names are there, the values masked
    stack.gateway.flush_audit()
    container = _container(stack)
    client = docker.from_env()
    places = _places(stack)
    places["docker logs"] = client.api.logs(container.id, stdout=False, stderr=True).decode("utf-8", "replace")
    for path in _engine_files(container.id):
        if path.name.endswith("-json.log"):
            records = [json.loads(line) for line in path.read_text().splitlines()]
            places[str(path)] = json.dumps([r for r in records if r["stream"] != "stdout"])
            assert any(canaries["secret"] in r["log"] for r in records if r["stream"] == "stdout")
    leaks = [(name, which) for name, text in places.items() for which, canary in canaries.items() if canary in text]
    assert leaks == []
