"""One real stack for the gateway tests: a vault, real servers in containers, a gateway.

Module-scoped because starting servers costs seconds; tests create their own agents so
they never share grants.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from pathlib import Path

import docker
import pytest

from console.catalog import load_catalog
from console.model import Mount
from console.paths import Paths, resolve_paths
from console.services import agents, grants, servers, toolboxes
from console.services.grants import Target
from console.services.tools import approve
from console.vault import KeySource
from console.workspace import Workspace
from tests.support.gateway import RunningGateway
from tests.support.sharedkeys import shared_keyring_home

SHAPESHIFTER = Path(__file__).resolve().parents[1] / "fixtures" / "servers" / "shapeshifter.py"
CALL_TIMEOUT = 3.0
RESULT_CAP = 64 * 1024


def writable(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    if os.getuid() == 0:
        os.chown(path, 10001, 10001)
    return path


REPO = Path(__file__).resolve().parents[2]


def subprocess_env() -> dict[str, str]:
    """What a `tbx` subprocess needs to open the stack's vault."""
    return {**os.environ, "PYTHONPATH": str(REPO), "PYTHON_KEYRING_BACKEND": "tests.support.keyrings.FileKeyring"}


@dataclass
class Stack:
    ws: Workspace
    paths: Paths
    gateway: RunningGateway
    root: Path
    counter: list[int] = field(default_factory=lambda: [0])

    @property
    def url(self) -> str:
        return self.gateway.url

    def agent(self, *targets: str) -> tuple[str, str]:
        """A fresh agent with these grants (TOOLBOX, TOOLBOX/SERVER[/TOOL]); (name, token)."""
        self.counter[0] += 1
        name = f"agent-{self.counter[0]}"
        _agent, token = agents.add_agent(self.ws, name)
        for target in targets:
            grants.grant(self.ws, name, Target.parse(target))
        return name, token

    def tools_file(self, name: str) -> Path:
        return self.root / "shapes" / name / "tools.json"

    def add_shapeshifter(self, name: str, tools: list[dict] | dict, *, secrets: dict[str, str] | None = None,
                         approve_all: bool = True, **add: Any) -> None:
        """Our own test server, its tool list in a file we can rewrite."""
        folder = writable(self.root / "shapes" / name)
        (folder / "tools.json").write_text(json.dumps(tools))
        shutil.copy(SHAPESHIFTER, folder / "server.py")
        base = load_catalog(self.paths).get("time")
        entry = base.model_copy(update={
            "id": "shapeshifter", "title": "Shapeshifter (test server)",
            "command": ["python3", "/shape/server.py", "/shape/tools.json"],
            "env": [], "mounts": [], "secrets": [],
        })
        servers.add_server(self.ws, "local", entry, name=name, env={"LABEL": name}, secrets=secrets,
                           mounts=[Mount(source=str(folder), target="/shape", read_only=True)], **add)
        if approve_all:
            approve(self.ws, "local", name)


def sample_repository(path: Path) -> Path:
    git = ["git", "-C", str(path), "-c", "user.name=Ada", "-c", "user.email=ada@example.org"]
    subprocess.run(["git", "init", "-q", str(path)], check=True)
    (path / "notes.md").write_text("first line\n")
    subprocess.run([*git, "add", "notes.md"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "Add notes"], check=True)
    if os.getuid() == 0:
        subprocess.run(["chown", "-R", "10001:10001", str(path)], check=True)
    return path


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, docker_engine) -> Iterator[Stack]:  # noqa: ANN001
    root = tmp_path_factory.mktemp("gateway")
    with shared_keyring_home(root):
        yield from _stack(root)


ALL_SERVERS = ("time", "everything", "filesystem", "git")


def _stack(root: Path, catalog_servers: tuple[str, ...] = ALL_SERVERS, settings: str = "",
           control_socket: str | None = None) -> Iterator[Stack]:
    """The stack with these catalog servers; ``settings`` adds lines to the [gateway] settings;
    ``control_socket``: the gateway's owner's door is that Unix socket (as on a remote toolbox)."""
    paths = resolve_paths()
    paths.ensure()
    paths.config_file.write_text(
        f"[runtime]\ncall_timeout = {CALL_TIMEOUT}\n[gateway]\nmax_result_bytes = {RESULT_CAP}\n{settings}"
    )
    ws = Workspace.create(paths, KeySource(None))
    toolbox = toolboxes.add_local(ws, "local")
    catalog = load_catalog(paths)
    for name in catalog_servers:
        mounts = []
        if name == "filesystem":
            mounts = [Mount(source=str(writable(root / "data")), target="/data")]
        elif name == "git":
            mounts = [Mount(source=str(sample_repository(root / "repo")), target="/repo")]
        servers.add_server(ws, "local", catalog.get(name), mounts=mounts)
        approve(ws, "local", name)
    gateway = RunningGateway(paths, control_socket=control_socket).start()
    stack = Stack(ws, paths, gateway, root)
    try:
        yield stack
    finally:
        gateway.stop()
        for container in docker.from_env().containers.list(all=True, filters={"label": f"io.tbx.toolbox={toolbox.id}"}):
            container.remove(force=True)
