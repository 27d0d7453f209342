"""Container start with the secrets handover vs the old env path (issue 20, part 2).

A server with one secret, from ``start`` to its answer to MCP initialize, p50 of 10:

- env: the secret in the container's Env (what tbx did before: readable by ``docker
  inspect``), the server's command as its Cmd;
- handover: the product's path (``handover_step``): the launcher as Cmd with the
  variable's name only, and on start the lock, an attach of its own, the frame, the
  launcher's word and the engine's confirmation that it exec'd the server.

Rounds alternate so drift hits both alike; container creation is outside the timing
(the same for both). Server: mcp-server-time (PyPI) from the catalog.

Needs the test environment (make test brings it up).
Run: .venv/bin/python bench/secret_handover.py [ROUNDS]
"""

from __future__ import annotations

import asyncio
import os
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("TBX_BASE_IMAGE", "tbx-base:test")

import keyring  # noqa: E402

from console.catalog import load_catalog  # noqa: E402
from console.model import Secret, ServerInstance  # noqa: E402
from console.paths import resolve_paths  # noqa: E402
from console.runtime.containers import ContainerSpec, Engine  # noqa: E402
from console.runtime.enginehttp import Endpoint  # noqa: E402
from console.runtime.session import mcp_session  # noqa: E402
from console.services import servers, toolboxes  # noqa: E402
from console.services.token_injection import handover_step  # noqa: E402
from console.vault import KeySource  # noqa: E402
from console.workspace import Workspace  # noqa: E402
from tests.support.keyrings import MemoryKeyring  # noqa: E402

NAME = "BENCH_API_KEY"


def workspace() -> Workspace:
    home = Path(tempfile.mkdtemp(prefix="tbx-bench-"))
    os.environ["TBX_HOME"] = str(home)
    os.environ.setdefault("TBX_CACHE_DIR", str(Path(__file__).resolve().parents[1] / ".testenv/cache"))
    ws = Workspace.create(resolve_paths(), KeySource(None))
    toolboxes.add_local(ws, "local")
    return ws


def server_with_secret(ws: Workspace, engine: Engine) -> servers.ServerRef:
    """A vault record of the time server with one secret (no container of its own)."""
    entry = load_catalog(ws.paths).get("time")
    box = ws.repos.toolboxes.require("local")
    with ws.change() as change:
        secret = change.repos.secrets.put(Secret(name=f"local/time/{NAME}", value=secrets.token_hex(16)))
        server = ServerInstance(toolbox=box.id, name="time", catalog_id=entry.id, spec=entry.model_dump(mode="json"),
                                secret_refs={NAME: secret.id}, network=entry.network, limits=entry.limits)
        server.image = servers.ensure_image(ws, engine, entry, lambda line: None)
        change.repos.servers.put(server)
    return servers.ServerRef(box, server)


async def start_to_initialized(engine: Engine, container_id: str, before: object) -> float:
    started = time.perf_counter()
    async with mcp_session(Endpoint.parse(engine.endpoint), container_id, before_initialize=before):  # type: ignore[arg-type]
        return time.perf_counter() - started


def one(ws: Workspace, engine: Engine, ref: servers.ServerRef, handover: bool, n: int) -> float:
    spec = servers.container_spec(ws, ref, engine)
    spec.name = f"tbx-bench-handover-{'h' if handover else 'e'}-{n}-{os.getpid()}"
    spec.labels = {"io.tbx.bench": "secret-handover"}
    if not handover:
        value = ws.repos.secrets.get(ref.server.secret_refs[NAME]).value
        spec = ContainerSpec(**{**spec.__dict__, "command": list(servers.entry_of(ref.server).command),
                                "env": {**spec.env, NAME: value}})
    container = engine.create(spec)
    try:
        async def start() -> None:
            await asyncio.to_thread(engine.start, container.id)

        endpoint = Endpoint.parse(engine.endpoint)
        before = handover_step(ws, ref.server, endpoint, container.id, start=start) if handover else start
        return asyncio.run(start_to_initialized(engine, container.id, before))
    finally:
        engine.remove(container.id)


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    keyring.set_keyring(MemoryKeyring())
    ws = workspace()
    engine = Engine()
    try:
        ref = server_with_secret(ws, engine)
        one(ws, engine, ref, True, -1)  # warm-up: page cache, image layers
        one(ws, engine, ref, False, -1)
        times: dict[bool, list[float]] = {True: [], False: []}
        for n in range(rounds):
            for handover in (n % 2 == 0, n % 2 == 1):
                times[handover].append(one(ws, engine, ref, handover, n))
    finally:
        engine.close()
    env, handed = statistics.median(times[False]) * 1000, statistics.median(times[True]) * 1000
    print(f"container start to MCP initialized, mcp-server-time, p50 of {rounds}:")
    print(f"  {'env path (secret in Env)':34} {env:8.1f} ms")
    print(f"  {'handover (launcher + attach)':34} {handed:8.1f} ms   ({handed - env:+.1f} ms, {handed / env:.2f}x)")


if __name__ == "__main__":
    main()
