"""The two in-container forwarders (Python for images with python3, Node for the others,
such as node:22-slim), run as the egress wrapper runs them, each between a real HTTP
client and the real allow-list proxy: a 1 MB HTTPS download, a refusal passed through
word for word, and, with no proxy listening, the reason the gateway gives."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx2
import pytest

from console.egress import AllowList, EgressProxy
from console.runtime import egress_forward
from tests.support import npm_tools
from tests.support.egress_net import Origin, tls_for

RUNTIME = Path(egress_forward.__file__).parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@asynccontextmanager
async def forwarder(kind: str, socket_path: Path, folder: Path) -> AsyncIterator[int]:
    port = free_port()
    if kind == "python":
        # As egress.sh: it forks once it listens, and the parent's exit says so.
        done = subprocess.run([sys.executable, "-I", "-S", str(RUNTIME / "egress_forward.py"), str(port),
                               str(socket_path)], stdin=subprocess.DEVNULL, timeout=10)
        assert done.returncode == 0
        child = None
    else:
        node = npm_tools.node(npm_tools.require("mcp-clients"))
        ready = folder / "ready"
        child = subprocess.Popen([str(node), str(RUNTIME / "egress_forward.js"), str(port), str(socket_path),
                                  str(ready)], stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while not ready.exists():
            assert child.poll() is None and time.monotonic() < deadline, "the Node forwarder did not listen"
            await asyncio.sleep(0.02)
    try:
        yield port
    finally:
        if child is not None:
            child.kill()
            child.wait()
        else:
            subprocess.run(["pkill", "-f", f"egress_forward.py {port} "], check=False)


@pytest.mark.parametrize("kind", ["python", "node"])
async def test_a_forwarder_carries_what_the_proxy_allows(kind: str, tmp_path: Path) -> None:
    server_tls, client_tls = tls_for(tmp_path, "127.0.0.2")
    allowed = await Origin("127.0.0.2", server_tls).start()
    other = await Origin("127.0.0.3").start()
    socket_path = tmp_path / "proxy.sock"
    proxy = EgressProxy("local/web", socket_path, AllowList.parse([f"127.0.0.2:{allowed.port}"]), lambda e: None)
    await proxy.start()
    try:
        async with forwarder(kind, socket_path, tmp_path) as port:
            async with httpx2.AsyncClient(proxy=f"http://127.0.0.1:{port}", verify=client_tls, trust_env=False, timeout=20) as client:
                body = (await client.get(f"{allowed.url}/bytes/{1 << 20}")).content
                assert len(body) == 1 << 20
                refused = await client.get(f"{other.url}/")
                assert refused.status_code == 403 and "127.0.0.3" in refused.text
            assert other.connections == 0
    finally:
        await proxy.close()
        await allowed.close()
        await other.close()


@pytest.mark.parametrize("kind", ["python", "node"])
async def test_without_a_gateway_the_server_is_told_why(kind: str, tmp_path: Path) -> None:
    async with (forwarder(kind, tmp_path / "proxy.sock", tmp_path) as port,
                httpx2.AsyncClient(proxy=f"http://127.0.0.1:{port}", trust_env=False, timeout=10) as client):
        answer = await client.get("http://127.0.0.2:9/")
    assert answer.status_code == 502 and "gateway is not running" in answer.text


def test_the_wrapper_names_what_it_lacks(tmp_path: Path) -> None:
    """An image with neither python3 nor node: the container exits 78 saying why."""
    empty = tmp_path / "bin"
    empty.mkdir()
    for tool in ("rm", "sleep", "kill", "printf"):
        found = next((Path(d) / tool for d in os.environ["PATH"].split(":") if (Path(d) / tool).exists()), None)
        if found:
            (empty / tool).symlink_to(found)
    done = subprocess.run(["/bin/sh", str(RUNTIME / "egress.sh"), "3128", "--", "true"],
                          env={"PATH": str(empty)}, capture_output=True, text=True, timeout=10)
    assert done.returncode == 78 and "neither python3 nor node" in done.stderr
