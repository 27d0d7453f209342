"""What the conformance suite runs against: each server directly, and the same server
through the gateway's per-server and aggregate endpoints, as an agent granted all of it.

Two servers, each in the container image tbx builds for it (the reference server twice):

- ``everything``: npm ``@modelcontextprotocol/server-everything`` from the catalog;
- ``conformance``: the suite's reference server as the Python SDK runs it in its own CI
  (``tests/fixtures/servers/conformance``), built with the mcp SDK this project uses;
  and again as ``conformance26``, speaking only the 2026-07-28 era on its stdio.

Directly, a server serves Streamable HTTP itself from its container on the host's network
(the engine here has no bridge to publish ports through), bound to loopback where it lets
us choose. Through the gateway it is what every tbx server is: stdio in a container with
network ``none``. The same image on both sides, so a difference is the gateway's.
"""

from __future__ import annotations

import hashlib
import json
import socket
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

import docker
import httpx2
from docker.types import Mount as DockerMount

from console.catalog import load_catalog
from console.catalog.model import CatalogEntry, PackageSource, Source
from console.model import Mount
from console.paths import Paths
from console.runtime.images import ImageBuilder
from console.services import servers
from console.services.tools import approve
from console.workspace import Workspace
from tests.gateway.conftest import Stack, _stack
from tests.support import conformance_suite as suite
from tests.support import npm_tools
from tests.support.auth_proxy import AuthProxy

REFERENCE = Path(__file__).resolve().parents[1] / "fixtures" / "servers" / "conformance"
ENDPOINTS = ("direct", "per-server", "aggregate")


@dataclass(frozen=True)
class Target:
    server: str
    """Its name in the toolbox (and the catalog entry it comes from)."""
    http_env: tuple[tuple[str, str], ...] = ()
    stdio: str = "stdio"
    """How the reference server speaks behind the gateway: ``stdio`` (both eras, the
    gateway keeps the handshake era with it) or ``stdio-2026`` (that era only)."""

    def entry(self, paths: Paths) -> CatalogEntry:
        if self.server == "everything":
            return load_catalog(paths).get("everything")
        return load_catalog(paths).get("time").model_copy(update={
            "id": "conformance", "title": "MCP conformance reference server (test server)",
            # The SDK the tests' agents use, so both ends of a run speak the same release.
            "source": Source(package=PackageSource(kind="pypi", package="mcp", version=version("mcp"))),
            "command": ["python3", "/ref/serve.py", self.stdio], "env": [], "mounts": [], "secrets": [],
        })

    def mounts(self) -> list[Mount]:
        return [] if self.server == "everything" else [Mount(source=str(REFERENCE), target="/ref", read_only=True)]

    def http_command(self, port: int) -> list[str]:
        if self.server == "everything":
            return ["mcp-server-everything", "streamableHttp"]  # its port comes from PORT
        return ["python3", "/ref/serve.py", str(port)]


TARGETS = (
    # server-everything's HTTP transport calls the global crypto of Node >= 19; the image's
    # Node 18 has it behind this flag (its stdio transport, the gateway's, does not use it).
    Target("everything", (("NODE_OPTIONS", "--experimental-global-webcrypto"),)),
    Target("conformance"),
    # The same server speaking only 2026-07-28 behind the gateway; directly, its HTTP
    # endpoint serves both eras as the reference does (and so is measured once, cached).
    Target("conformance26", stdio="stdio-2026"),
)


class Direct:
    """A server reached directly. Its results depend only on the image, the reference
    server's source and the suite, so they are kept under that content key and the
    container starts only when a leg is not known yet."""

    def __init__(self, ws: Workspace, target: Target, exits: ExitStack) -> None:
        self._ws, self._target, self._exits = ws, target, exits
        self._url: str | None = None
        self._client = docker.from_env()
        exits.callback(self._client.close)
        self.image = ImageBuilder(self._client, ws.settings.runtime, ws.paths.cache_dir).ensure(target.entry(ws.paths))
        source = hashlib.sha256()  # the reference server's code is mounted, not in its image
        for part in sorted(REFERENCE.rglob("*.py")) if target.mounts() else []:
            source.update(part.read_bytes())
        self._identity = json.dumps([self._client.images.get(self.image).id, source.hexdigest(),
                                     target.http_command(0), target.http_env])

    def url(self) -> str:
        if self._url is None:
            self._url = self._exits.enter_context(direct(self._client, self.image, self._target))
        return self._url

    def run(self, leg: suite.Leg) -> suite.Run:
        key = hashlib.sha256(f"{self._identity}{npm_tools.toolset_dir(leg.toolset).name}{leg.spec}".encode())
        cached = self._ws.paths.cache_dir / "conformance" / f"{key.hexdigest()[:24]}.json"
        if cached.exists():
            return suite.Run.from_json(cached.read_text(encoding="utf-8"))
        measured = suite.run(leg, self.url())
        cached.parent.mkdir(parents=True, exist_ok=True)
        cached.write_text(measured.to_json(), encoding="utf-8")
        return measured


@dataclass
class Setup:
    stack: Stack
    gateway: dict[tuple[str, str], str]
    """(server, endpoint) -> the gateway URL the suite is given, through the agent's proxy."""
    direct: dict[str, Direct]


@contextmanager
def conformance_setup(root: Path) -> Iterator[Setup]:
    """Both servers directly and behind a gateway, an agent (and its proxy) per server."""
    with ExitStack() as exits:
        proxies = {target.server: AuthProxy() for target in TARGETS}  # bound now: the gateway must know them
        for proxy in proxies.values():
            exits.callback(proxy.stop)
        ports = [proxy.port for proxy in proxies.values()]
        hosts = [f"{name}:{port}" for port in ports for name in ("127.0.0.1", "localhost")]
        settings = f"allowed_hosts = {json.dumps(hosts)}\nallowed_origins = {json.dumps([f'http://{h}' for h in hosts])}\n"
        stack = exits.enter_context(contextmanager(_stack)(root, ("everything",), settings))
        setup = Setup(stack, {}, {})
        for target in TARGETS:
            if target.server != "everything":
                servers.add_server(stack.ws, "local", target.entry(stack.paths), name=target.server,
                                   mounts=target.mounts())
            allow_asks(stack.ws, f"local/{target.server}")
            approve(stack.ws, "local", target.server)  # after: what it offers depends on what it may ask
            _name, token = stack.agent("local", f"local/{target.server}")
            proxy = proxies[target.server]
            proxy.start(stack.url, token)
            setup.gateway[target.server, "per-server"] = f"{proxy.url}/servers/{target.server}/mcp"
            setup.gateway[target.server, "aggregate"] = f"{proxy.url}/mcp"
            setup.direct[target.server] = Direct(stack.ws, target, exits)
        yield setup


def allow_asks(ws: Workspace, server: str) -> None:
    """The owner lets the server ask agents for sampling, elicitation and roots, as a client
    connected directly would be asked. A gateway from before that switch (issue 17, part 2;
    ``bench/conformance.py --baseline``) has none, and its servers never ask."""
    try:
        from console.model import AGENT_ASKS
        from console.services.server_asks import set_may_ask
    except ImportError:
        return
    for kind in AGENT_ASKS:
        set_may_ask(ws, server, kind, True)


def measure(setup: Setup, legs: tuple[suite.Leg, ...] = suite.LEGS) -> suite.Results:
    """Every leg against every server, directly and at each gateway endpoint."""
    results: suite.Results = {}
    for server, reached in setup.direct.items():
        for leg in legs:
            results[server, "direct", leg] = reached.run(leg)
            for endpoint in ENDPOINTS[1:]:
                results[server, endpoint, leg] = suite.run(leg, setup.gateway[server, endpoint])
    return results


@contextmanager
def direct(client: docker.DockerClient, image: str, target: Target) -> Iterator[str]:
    """The server's own Streamable HTTP endpoint, from its tbx image; yields its URL."""
    port = _free_port()
    container = client.containers.run(
        image, target.http_command(port), detach=True, network_mode="host", user="10001:10001",
        environment={"PORT": str(port), **dict(target.http_env)}, read_only=True, cap_drop=["ALL"],
        security_opt=["no-new-privileges"], tmpfs={"/tmp": "rw,size=64m"},
        mounts=[DockerMount(m.target, m.source, type="bind", read_only=m.read_only) for m in target.mounts()],
        labels={"io.tbx.test": "conformance-direct"},
    )
    try:
        url = f"http://127.0.0.1:{port}/mcp"
        _wait_listening(url, container)
        yield url
    finally:
        container.remove(force=True)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_listening(url: str, container: docker.models.containers.Container, within: float = 60.0) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            httpx2.get(url, timeout=2.0)  # any HTTP answer: it is listening
            return
        except httpx2.HTTPError:
            container.reload()
            if container.status == "exited":
                break
            time.sleep(0.2)
    logs = container.logs(tail=20).decode(errors="replace")
    raise RuntimeError(f"{url} did not answer within {within}s; the server said:\n{logs}")
