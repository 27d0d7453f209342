"""Real servers from PyPI and npm in hardened containers on the real engine."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from console.catalog import load_catalog
from console.model import Mount
from console.paths import Paths
from console.services import server_status, servers, toolboxes
from console.services.tools import approve
from console.workspace import Workspace
from tests.conftest import CANARY

pytestmark = pytest.mark.docker


@pytest.fixture
def local(workspace: Workspace, docker_engine) -> Iterator[Workspace]:  # noqa: ANN001
    toolbox = toolboxes.add_local(workspace, "local")
    yield workspace
    client = docker.from_env()
    for container in client.containers.list(all=True, filters={"label": f"io.tbx.toolbox={toolbox.id}"}):
        container.remove(force=True)


def shared_dir(path: Path) -> Path:
    """A host folder the container's unprivileged user may write (tests run as root)."""
    path.mkdir(parents=True, exist_ok=True)
    if os.getuid() == 0:
        os.chown(path, 10001, 10001)
    return path


def add(ws: Workspace, catalog_id: str, **kwargs) -> None:  # noqa: ANN003
    servers.add_server(ws, "local", load_catalog(ws.paths).get(catalog_id), **kwargs)
    approve(ws, "local", kwargs.get("name") or catalog_id)


def call(ws: Workspace, target: str, **arguments) -> str:  # noqa: ANN003
    outcome = server_status.call_tool(ws, target, arguments)
    assert not outcome.result.is_error, outcome.result
    return "\n".join(block.text for block in outcome.result.content if block.type == "text")


def container_of(ws: Workspace, name: str) -> docker.models.containers.Container:
    ws.refresh()  # the CLI may have changed the vault from its own handle
    ref = servers.resolve(ws, f"local/{name}")
    [found] = docker.from_env().containers.list(all=True, filters={"label": f"io.tbx.server={ref.server.id}"})
    return found


def test_time_server_through_the_cli(tbx, local: Workspace) -> None:  # noqa: ANN001
    added = tbx("server", "add", "local", "time")
    assert added.exit_code == 0, added.stderr
    assert "running with 2 tool(s), pending approval" in added.stdout
    [status] = json.loads(tbx("server", "list", "--json").stdout)
    assert status["health"] == "healthy" and status["tools"] == 2 and status["pending"] == 2
    assert status["ping_ms"] is not None
    assert "pending" in tbx("tools", "list", "local/time").stdout
    assert tbx("tools", "approve", "local/time").stdout.startswith("approved 2 tool(s)")
    result = tbx("call", "local/time/get_current_time", "--args", '{"timezone": "Asia/Tokyo"}')
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["timezone"] == "Asia/Tokyo"
    bad = tbx("call", "local/time/get_current_time", "--args", '{"timezone": "Mars/Olympus"}')
    assert bad.exit_code == 1 and "returned an error" in bad.stderr

    assert tbx("server", "stop", "local/time").exit_code == 0
    [status] = json.loads(tbx("server", "list", "--json").stdout)
    assert status["state"] == "exited" and status["health"] == "stopped"
    assert tbx("server", "start", "local/time").stdout.startswith("local/time started; 2 item(s) unchanged")
    removed = tbx("server", "remove", "local/time", "--yes")
    assert removed.exit_code == 0 and "2 items" in removed.stdout
    assert json.loads(tbx("server", "list", "--json").stdout) == []
    actions = [r["action"] for r in local.audit.records()]
    assert actions.count("tool.call") == 2 and "server.remove" in actions


def test_git_server_on_a_mounted_repository(local: Workspace, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    git = ["git", "-C", str(repo), "-c", "user.name=T", "-c", "user.email=t@example.org"]
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    (repo / "README.md").write_text("hello\n")
    subprocess.run([*git, "add", "README.md"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "first commit from the test"], check=True)
    subprocess.run(["chown", "-R", "10001:10001", str(repo)], check=True)
    add(local, "git", mounts=[Mount(source=str(repo), target="/repo")])
    assert "first commit from the test" in call(local, "local/git/git_log", repo_path="/repo")
    (repo / "new.txt").write_text("x")
    assert "new.txt" in call(local, "local/git/git_status", repo_path="/repo")


def test_filesystem_server_writes_into_the_mounted_folder(local: Workspace, tmp_path: Path) -> None:
    data = shared_dir(tmp_path / "data")
    add(local, "filesystem", mounts=[Mount(source=str(data), target="/data")])
    call(local, "local/filesystem/write_file", path="/data/hello.txt", content="written by an agent")
    assert (data / "hello.txt").read_text() == "written by an agent"
    assert "hello.txt" in call(local, "local/filesystem/list_directory", path="/data")
    outside = server_status.call_tool(local, "local/filesystem/read_text_file", {"path": "/etc/passwd"})
    assert outside.result.is_error  # confined to /data


def test_everything_server(local: Workspace) -> None:
    add(local, "everything")
    names = {t.name for t in local.repos.tools}
    assert {"echo", "get-sum"} <= names
    assert "Echo: hello from a test" in call(local, "local/everything/echo", message="hello from a test")
    assert "42" in call(local, "local/everything/get-sum", a=40, b=2)


def test_memory_server_keeps_its_graph_across_a_restart(local: Workspace, tmp_path: Path) -> None:
    data = shared_dir(tmp_path / "memory")
    add(local, "memory", mounts=[Mount(source=str(data), target="/data")])
    call(local, "local/memory/create_entities",
         entities=[{"name": "Ada", "entityType": "person", "observations": ["wrote the first program"]}])
    servers.restart_server(local, "local/memory")
    assert "wrote the first program" in call(local, "local/memory/read_graph")
    assert (data / "memory.jsonl").exists()


def test_sqlite_server_held_to_an_older_sdk(local: Workspace, tmp_path: Path) -> None:
    """mcp-server-sqlite predates mcp 2: its catalog entry holds the SDK back (mcp<2)."""
    data = shared_dir(tmp_path / "db")
    add(local, "sqlite", mounts=[Mount(source=str(data), target="/data")])
    call(local, "local/sqlite/create_table", query="CREATE TABLE notes (body TEXT)")
    call(local, "local/sqlite/write_query", query="INSERT INTO notes VALUES ('kept in a mounted file')")
    assert "kept in a mounted file" in call(local, "local/sqlite/read_query", query="SELECT body FROM notes")
    assert (data / "sqlite.db").exists()
    ref = servers.resolve(local, "local/sqlite")
    image = docker.from_env().images.get(ref.server.image)
    assert image.labels["io.tbx.source"] == "pypi:mcp-server-sqlite==2025.4.25;mcp<2"


def test_hardening_is_visible_in_docker_inspect(local: Workspace) -> None:
    add(local, "time")
    attrs = container_of(local, "time").attrs
    host, config = attrs["HostConfig"], attrs["Config"]
    assert config["User"] not in ("", "0", "root", "0:0")
    assert host["CapDrop"] == ["ALL"] and not host.get("CapAdd")
    assert "no-new-privileges:true" in host["SecurityOpt"]
    assert host["ReadonlyRootfs"] is True
    assert host["Tmpfs"] == {"/tmp": "rw,nosuid,nodev,size=64m,mode=1777"}
    assert host["NetworkMode"] == "none"
    limits = load_catalog(local.paths).get("time").limits
    assert host["Memory"] == host["MemorySwap"] == limits.memory_mb * 1024 * 1024
    assert host["NanoCpus"] == int(limits.cpus * 1e9) and host["PidsLimit"] == limits.pids
    assert host["Init"] is True and host["Privileged"] is False
    assert host["RestartPolicy"]["Name"] == "unless-stopped"
    assert config["OpenStdin"] is True and config["StdinOnce"] is False
    assert config["Labels"]["io.tbx.managed"] == "true" and config["Labels"]["io.tbx.name"] == "local/time"


@pytest.fixture
def user_catalog(local: Workspace) -> Paths:
    """Entries built from the same mcp-server-time package, with scripted misbehaviour."""
    time_entry = load_catalog(local.paths).get("time").model_dump(mode="json")

    def variant(entry_id: str, script: str, **extra) -> dict:  # noqa: ANN003
        return {**time_entry, "id": entry_id, "command": ["sh", "-c", script], **extra}

    entries = [
        variant("chatty", 'echo "starting with token $API_TOKEN" >&2; exec mcp-server-time',
                secrets=[{"name": "API_TOKEN", "required": True}]),
        variant("crashes", 'echo "boom: config missing" >&2; exit 3'),
        {**time_entry, "id": "no-such-version",
         "source": {"package": {"kind": "pypi", "package": "mcp-server-time", "version": "1999.1.1"}}},
    ]
    local.paths.catalog_file.parent.mkdir(parents=True, exist_ok=True)
    local.paths.catalog_file.write_text(json.dumps({"servers": entries}))
    return local.paths


def _containers(ws: Workspace) -> list:
    toolbox = ws.repos.toolboxes.require("local")
    return docker.from_env().containers.list(all=True, filters={"label": f"io.tbx.toolbox={toolbox.id}"})


def test_canary_secret_stays_out_of_labels_logs_output_and_audit(tbx, local: Workspace, user_catalog: Paths) -> None:  # noqa: ANN001
    added = tbx("server", "add", "local", "chatty", "--secret", "API_TOKEN", env={"API_TOKEN": CANARY})
    assert added.exit_code == 0, added.stderr
    container = container_of(local, "chatty")
    # Handed over at start (the logs below show the server has it), never in the container's config.
    assert CANARY not in json.dumps(container.attrs["Config"]) and "API_TOKEN" in container.attrs["Config"]["Cmd"][2]
    logs = tbx("server", "logs", "local/chatty")
    assert "starting with token ‹secret:API_TOKEN›" in logs.stdout
    outputs = [added, logs, tbx("server", "list", "--json"), tbx("tools", "list", "--json"),
               tbx("audit", "list", "--json"), tbx("vault", "info", "--json"),
               tbx("call", "local/chatty/get_current_time", "--args", '{"timezone": "UTC"}')]
    for output in outputs:
        assert CANARY not in output.stdout + output.stderr
    for path in local.paths.data_dir.rglob("*"):
        if path.is_file():
            assert CANARY.encode() not in path.read_bytes(), path
    image = docker.from_env().images.get(container.attrs["Config"]["Image"])
    assert CANARY not in json.dumps(image.attrs)


def test_failed_adds_leave_nothing_behind(tbx, local: Workspace, user_catalog: Paths, tmp_path: Path) -> None:  # noqa: ANN001
    before = local.paths.vault.read_bytes()

    unknown = tbx("server", "add", "local", "nonexistent")
    assert unknown.exit_code == 1 and "tbx catalog list" in unknown.stderr

    bad_mount = tbx("server", "add", "local", "filesystem", "--mount", f"{tmp_path}/missing:/data")
    assert bad_mount.exit_code == 1
    assert "mount source" in bad_mount.stderr and "does not exist" in bad_mount.stderr

    crashes = tbx("server", "add", "local", "crashes")
    assert crashes.exit_code == 1
    [error] = [line for line in crashes.stderr.splitlines() if line.startswith("error:")]
    assert "boom: config missing" in error and error == crashes.stderr.splitlines()[-1]

    no_version = tbx("server", "add", "local", "no-such-version")
    assert no_version.exit_code == 1 and "1999.1.1" in no_version.stderr

    missing_need = tbx("server", "add", "local", "git")
    assert missing_need.exit_code == 2 and "--mount SRC:/repo" in missing_need.stderr

    assert _containers(local) == []
    local.refresh()
    assert local.paths.vault.read_bytes() == before
    assert local.repos.servers.all() == []


def test_reconcile_makes_docker_match_the_vault(tbx, local: Workspace) -> None:  # noqa: ANN001
    add(local, "time")
    container_of(local, "time").remove(force=True)
    result = tbx("toolbox", "reconcile", "local")
    assert "re-created and started local/time" in result.stdout
    assert call(local, "local/time/get_current_time", timezone="UTC")

    container_of(local, "time").stop()
    assert "started local/time" in tbx("toolbox", "reconcile", "local").stdout

    servers.stop_server(local, "local/time")
    container_of(local, "time").start()
    assert "stopped local/time" in tbx("toolbox", "reconcile", "local").stdout

    toolbox = local.repos.toolboxes.require("local")
    orphan = docker.from_env().containers.create(
        container_of(local, "time").attrs["Config"]["Image"], ["true"],
        labels={"io.tbx.managed": "true", "io.tbx.toolbox": toolbox.id, "io.tbx.server": "srv_gone"},
    )
    assert "(no server owns it)" in tbx("toolbox", "reconcile", "local").stdout
    with pytest.raises(docker.errors.NotFound):
        orphan.reload()
    assert tbx("toolbox", "reconcile", "local").stdout == "toolbox local already matches the vault\n"
