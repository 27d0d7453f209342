"""Editing a server's env, mounts and limits on the real engine: a new container from the
new settings, the same server (items, approvals, grants kept); a failed edit puts the old
container back and leaves the vault as it was."""

from __future__ import annotations

import os
from pathlib import Path

import docker
import pytest

from console.catalog import load_catalog
from console.errors import UsageError
from console.model import DesiredState, Limits, Mount
from console.runtime.containers import ContainerError
from console.services import grants, server_edit, server_status, servers
from console.services.agents import add_agent
from console.services.grants import Target
from console.services.tools import approve
from console.workspace import Workspace
from tests.test_servers import add, call, container_of, local, shared_dir  # noqa: F401 - the fixture

pytestmark = pytest.mark.docker


def env_of(container: docker.models.containers.Container) -> dict[str, str]:
    return dict(item.split("=", 1) for item in container.attrs["Config"]["Env"])


def test_env_and_limits_make_a_new_container_and_keep_the_server(local: Workspace) -> None:  # noqa: F811
    add(local, "time")
    add_agent(local, "bot")
    grants.grant(local, "bot", Target("local", "time", "*"))
    before = container_of(local, "time")
    server_id = servers.resolve(local, "local/time").server.id
    lines: list[str] = []

    outcome = server_edit.edit_server(local, "local/time", env={"GREETING": "hello"},
                                  limits=Limits(cpus=0.75, memory_mb=200, pids=48), progress=lines.append)
    assert outcome.changed == ["env", "limits"]
    assert outcome.discovery is not None and outcome.discovery.unchanged == 2 and not outcome.discovery.changed
    after = container_of(local, "time")
    assert after.id != before.id and after.status == "running"
    assert env_of(after)["GREETING"] == "hello"
    host = after.attrs["HostConfig"]
    assert host["Memory"] == 200 * 1024 * 1024 and host["NanoCpus"] == 750_000_000 and host["PidsLimit"] == 48
    assert not docker.from_env().containers.list(all=True, filters={"id": before.id})
    assert any("creating a container with the new env, limits" in line for line in lines)

    local.refresh()
    server = servers.resolve(local, "local/time").server
    assert server.id == server_id and server.env == {"GREETING": "hello"} and server.limits.memory_mb == 200
    assert all(tool.exposable for tool in local.repos.tools.of_server(server_id)), "approvals kept"
    assert [g.tool for g in local.repos.tool_grants] == ["*"], "grants kept"
    assert '"timezone": "UTC"' in call(local, "local/time/get_current_time", timezone="UTC")
    [record] = [r for r in local.audit.records() if r["action"] == "server.edit"]
    assert record["detail"]["changed"] == ["env", "limits"] and record["detail"]["env"] == ["GREETING"]

    assert server_edit.edit_server(local, "local/time", env={"GREETING": "hello"}).changed == []
    assert container_of(local, "time").id == after.id, "nothing changed: the container is left alone"


def test_a_new_mount_is_used_and_a_stopped_server_stays_stopped(local: Workspace, tmp_path: Path) -> None:  # noqa: F811
    first, second = shared_dir(tmp_path / "first"), shared_dir(tmp_path / "second")
    add(local, "filesystem", mounts=[Mount(source=str(first), target="/data")])
    server_edit.edit_server(local, "local/filesystem", mounts=[Mount(source=str(second), target="/data")])
    call(local, "local/filesystem/write_file", path="/data/hello.txt", content="in the second folder")
    assert (second / "hello.txt").read_text() == "in the second folder" and not (first / "hello.txt").exists()

    servers.stop_server(local, "local/filesystem")
    outcome = server_edit.edit_server(local, "local/filesystem",
                                  mounts=[Mount(source=str(second), target="/data", read_only=True)])
    assert outcome.changed == ["mounts"] and outcome.discovery is None
    container = container_of(local, "filesystem")
    assert container.status == "created", "made with the new mount, not started"
    assert [m["RW"] for m in container.attrs["Mounts"]] == [False]
    servers.start_server(local, "local/filesystem")
    local.refresh()
    assert servers.resolve(local, "local/filesystem").server.desired_state is DesiredState.RUNNING
    refused = server_status.call_tool(local, "local/filesystem/write_file",
                                              {"path": "/data/again.txt", "content": "x"})
    assert refused.result.is_error and not (second / "again.txt").exists()


def test_a_failed_edit_puts_the_old_container_back_and_the_vault_as_it_was(
        local: Workspace, tmp_path: Path) -> None:  # noqa: F811
    data = shared_dir(tmp_path / "data")
    add(local, "filesystem", mounts=[Mount(source=str(data), target="/data")])
    with pytest.raises(ContainerError, match="does not exist"):
        server_edit.edit_server(local, "local/filesystem", mounts=[Mount(source=str(tmp_path / "nope"), target="/data")])
    local.refresh()
    assert servers.resolve(local, "local/filesystem").server.mounts[0].source == str(data)
    assert container_of(local, "filesystem").status == "running"
    call(local, "local/filesystem/write_file", path="/data/ok.txt", content="still works")
    assert (data / "ok.txt").exists()
    assert not [r for r in local.audit.records() if r["action"] == "server.edit"]

    with pytest.raises(UsageError, match="needs --mount SRC:/data"):
        server_edit.edit_server(local, "local/filesystem", mounts=[])  # a required mount cannot go


def test_cli_edit(tbx, local: Workspace) -> None:  # noqa: ANN001, F811
    add(local, "time")
    done = tbx("server", "edit", "local/time", "--env", "A=1", "--env", "B=2", "--memory", "300")
    assert done.exit_code == 0, done.stderr
    assert done.stdout.startswith("local/time: env, limits changed, container made again; running again: "
                                  "2 item(s) unchanged")
    assert env_of(container_of(local, "time"))["A"] == "1"
    unset = tbx("server", "edit", "local/time", "--unset-env", "A")
    assert unset.exit_code == 0 and "A" not in env_of(container_of(local, "time"))
    local.refresh()
    assert servers.resolve(local, "local/time").server.env == {"B": "2"}

    nothing = tbx("server", "edit", "local/time")
    assert nothing.exit_code == 2 and "nothing to change" in nothing.stderr
    wrong = tbx("server", "edit", "local/time", "--unset-env", "NOPE")
    assert wrong.exit_code == 2 and "has no env NOPE" in wrong.stderr
    small = tbx("server", "edit", "local/time", "--memory", "1")
    assert small.exit_code == 2 and "bad limit: memory_mb" in small.stderr


@pytest.mark.skipif(os.getuid() != 0, reason="as root, servers run as an unprivileged uid")
def test_a_read_write_folder_the_server_cannot_write_is_said_at_add_and_edit(local: Workspace, tmp_path: Path) -> None:  # noqa: F811
    """The memory server's /data is read-write, but a root-owned folder is not writable by
    the uid servers run as under root: its writes fail (EACCES), which looks read-only."""
    entry = load_catalog(local.paths).get("memory")
    assert [(m.target, m.read_only) for m in entry.mounts] == [("/data", False)]
    owned_by_root = tmp_path / "graph"
    owned_by_root.mkdir(mode=0o755)
    lines: list[str] = []
    servers.add_server(local, "local", entry, mounts=[Mount(source=str(owned_by_root), target="/data")],
                       progress=lines.append)
    [warning] = [line for line in lines if line.startswith("warning:")]
    assert f"cannot write {owned_by_root}" in warning and "chown -R 10001:10001" in warning

    given = shared_dir(tmp_path / "given")
    lines.clear()
    server_edit.edit_server(local, "local/memory", mounts=[Mount(source=str(given), target="/data")], progress=lines.append)
    assert not [line for line in lines if line.startswith("warning:")]
    approve(local, "local", "memory")
    call(local, "local/memory/create_entities", entities=[{"name": "Ada", "entityType": "person", "observations": []}])
    assert (given / "memory.jsonl").exists()
