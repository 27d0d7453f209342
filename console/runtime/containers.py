"""Server containers on a Docker engine: hardened creation, lifecycle, state.

Every server runs in its own container, hardened by default: a non-root user, every
capability dropped, no-new-privileges, a read-only root with a small tmpfs for /tmp,
network none (a server with egress reaches its allowed hosts through a proxy outside,
``egress_container``), CPU/memory/pids limits, an init
process to reap children, and a restart policy that brings a crashed server back.
Labels mark containers as ours; they carry ids and names, never secrets.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import docker
from docker.errors import APIError, DockerException, ImageNotFound, NotFound
from docker.models.containers import Container
from docker.types import LogConfig
from docker.types import Mount as DockerMount

from console.errors import TbxError
from console.model import Limits, Mount
from console.runtime.egress_container import SOCKET_DIR as EGRESS_SOCKET_DIR
from console.runtime.engine import default_endpoint

log = logging.getLogger(__name__)

LABEL_MANAGED = "io.tbx.managed"
LABEL_TOOLBOX = "io.tbx.toolbox"
LABEL_SERVER = "io.tbx.server"
LABEL_NAME = "io.tbx.name"
LABEL_CATALOG = "io.tbx.catalog"
DEFAULT_CONTAINER_UID = "10001:10001"


class ContainerError(TbxError):
    """A container operation failed; the message says which and what to do."""


@dataclass
class ContainerSpec:
    """Everything needed to create one server's container."""

    name: str
    image: str
    command: list[str]
    labels: dict[str, str]
    env: dict[str, str] = field(default_factory=dict, repr=False)
    """Includes secret values: never printed, logged or put in labels."""
    mounts: list[Mount] = field(default_factory=list)
    network: str = "none"
    limits: Limits = field(default_factory=Limits)
    user: str = DEFAULT_CONTAINER_UID
    tmpfs_mb: int = 64
    egress_dir: str | None = None
    """The engine host's folder where the gateway's allow-list proxy listens for this
    server (``egress_container``): mounted read-only, and made by the engine if missing."""


@dataclass(frozen=True)
class ContainerState:
    id: str
    name: str
    status: str
    """Docker's word: created, running, restarting, exited, paused, dead."""
    running: bool
    restart_count: int
    exit_code: int | None
    oom_killed: bool
    started_at: datetime | None
    error: str | None
    labels: dict[str, str]

    @classmethod
    def from_attrs(cls, attrs: dict[str, Any]) -> ContainerState:
        state = attrs.get("State", {})
        started = state.get("StartedAt") or ""
        started_at = None
        if started and not started.startswith("0001"):
            started_at = datetime.fromisoformat(started[:26].rstrip("Z") + "+00:00")
        return cls(
            id=attrs["Id"],
            name=attrs.get("Name", "").lstrip("/"),
            status=state.get("Status", "unknown"),
            running=bool(state.get("Running")),
            restart_count=int(attrs.get("RestartCount", 0)),
            exit_code=state.get("ExitCode"),
            oom_killed=bool(state.get("OOMKilled")),
            started_at=started_at,
            error=state.get("Error") or None,
            labels=attrs.get("Config", {}).get("Labels") or {},
        )


def container_user(setting: str, local_engine: bool) -> str:
    """``auto`` runs servers as the invoking user on a local engine (so mounted folders
    keep their owner), and as an unprivileged fixed uid when tbx runs as root or the
    engine is remote."""
    if setting != "auto":
        return setting
    if local_engine and os.getuid() != 0:
        return f"{os.getuid()}:{os.getgid()}"
    return DEFAULT_CONTAINER_UID


def _short(exc: BaseException) -> str:
    text = getattr(exc, "explanation", None) or str(exc)
    return str(text).splitlines()[0][:300] if text else type(exc).__name__


class Engine:
    """One Docker engine (a toolbox's), driven through docker-py. Blocking: call from threads."""

    def __init__(self, endpoint: str | None = None, timeout: float = 30.0) -> None:
        self.endpoint = endpoint or default_endpoint()
        try:
            self.client = docker.DockerClient(base_url=self.endpoint, timeout=timeout, version="auto")
        except DockerException as exc:
            raise ContainerError(
                f"cannot reach the Docker engine at {self.endpoint}: {_short(exc)}; is dockerd running? "
                f"('tbx doctor' checks)"
            ) from None

    @property
    def is_local(self) -> bool:
        return self.endpoint.startswith("unix://") and self.endpoint == default_endpoint()

    def close(self) -> None:
        self.client.close()

    # -- create and lifecycle ------------------------------------------------------------

    def create(self, spec: ContainerSpec) -> Container:
        """Create (not start) the container; on failure nothing is left behind."""
        for mount in spec.mounts:
            if self.is_local and not os.path.exists(mount.source):
                raise ContainerError(
                    f"mount source {mount.source} does not exist on this machine; create it or fix --mount"
                )
        api = self.client.api
        try:
            host_config = api.create_host_config(
                network_mode=spec.network,
                read_only=True,
                tmpfs={"/tmp": f"rw,nosuid,nodev,size={spec.tmpfs_mb}m,mode=1777"},
                cap_drop=["ALL"],
                security_opt=["no-new-privileges:true"],
                mem_limit=f"{spec.limits.memory_mb}m",
                memswap_limit=f"{spec.limits.memory_mb}m",
                nano_cpus=int(spec.limits.cpus * 1e9),
                pids_limit=spec.limits.pids,
                init=True,
                restart_policy={"Name": "unless-stopped"},
                log_config=LogConfig(type="json-file", config={"max-size": "5m", "max-file": "2"}),
                mounts=[
                    DockerMount(target=m.target, source=m.source, type="bind", read_only=m.read_only)
                    for m in spec.mounts
                ],
                # A bind of the legacy kind: the engine makes the folder when it is missing
                # (a droplet's, before its gateway first listens there).
                binds={spec.egress_dir: {"bind": EGRESS_SOCKET_DIR, "mode": "ro"}} if spec.egress_dir else None,
            )
            config = api.create_container_config(
                image=spec.image,
                command=spec.command,
                labels={**spec.labels, LABEL_MANAGED: "true"},
                environment={"HOME": "/tmp", **spec.env},
                user=spec.user,
                working_dir="/tmp",
                stdin_open=True,
                tty=False,
                network_disabled=spec.network == "none",
                host_config=host_config,
            )
            # docker-py ties StdinOnce to stdin_open; with it the engine closes the
            # server's stdin when the first client detaches, and the server exits.
            config["StdinOnce"] = False
            created = api.create_container_from_config(config, spec.name)
            return self.client.containers.get(created["Id"])
        except ImageNotFound:
            raise ContainerError(f"image {spec.image} is not on the engine; run the add again to build it") from None
        except APIError as exc:
            self._remove_quietly(spec.name)
            raise ContainerError(f"creating container {spec.name} failed: {_short(exc)}") from None

    def start(self, container_id: str) -> None:
        try:
            self.client.api.start(container_id)
        except APIError as exc:
            raise ContainerError(f"starting container {container_id[:12]} failed: {_short(exc)}") from None

    def stop(self, container_id: str, timeout: int = 10) -> None:
        try:
            self.client.api.stop(container_id, timeout=timeout)
        except NotFound:
            return
        except APIError as exc:
            raise ContainerError(f"stopping container {container_id[:12]} failed: {_short(exc)}") from None

    def restart(self, container_id: str, timeout: int = 10) -> None:
        try:
            self.client.api.restart(container_id, timeout=timeout)
        except APIError as exc:
            raise ContainerError(f"restarting container {container_id[:12]} failed: {_short(exc)}") from None

    def remove(self, container_id: str) -> None:
        try:
            self.client.api.remove_container(container_id, force=True, v=True)
        except NotFound:
            return
        except APIError as exc:
            raise ContainerError(f"removing container {container_id[:12]} failed: {_short(exc)}") from None

    def replace_file(self, container_id: str, path: str, text: str) -> None:
        """Write ``text`` to ``path`` in the running container (its tmpfs), mode 600, by
        renaming a new file over the old: a server that re-reads it never sees half of
        one. The text goes over the exec's stdin; the exec's Cmd names only the path."""
        script = 'umask 077 && cat > "$1.tbx-new" && mv -f "$1.tbx-new" "$1"'
        api = self.client.api
        try:
            exec_id = api.exec_create(container_id, ["/bin/sh", "-c", script, "tbx-file", path],
                                      stdin=True, stdout=False, stderr=True)["Id"]
            stream = api.exec_start(exec_id, socket=True)
            raw = getattr(stream, "_sock", stream)
            try:
                raw.sendall(text.encode("utf-8"))
                raw.shutdown(socket.SHUT_WR)
                while raw.recv(65536):
                    pass
            finally:
                raw.close()
            deadline = time.monotonic() + 10
            while (done := api.exec_inspect(exec_id)).get("Running") and time.monotonic() < deadline:
                time.sleep(0.02)
            code = done.get("ExitCode")
        except (APIError, OSError) as exc:
            raise ContainerError(f"writing {path} in container {container_id[:12]} failed: {_short(exc)}") from None
        if code != 0:
            raise ContainerError(f"writing {path} in container {container_id[:12]} failed (exit code {code})")

    def _remove_quietly(self, name: str) -> None:
        with contextlib.suppress(DockerException):
            self.client.api.remove_container(name, force=True)

    # -- state ---------------------------------------------------------------------------

    def inspect(self, container_id: str) -> ContainerState | None:
        try:
            return ContainerState.from_attrs(self.client.api.inspect_container(container_id))
        except NotFound:
            return None

    def find(self, server_id: str) -> ContainerState | None:
        found = self.managed(extra={LABEL_SERVER: server_id})
        return found[0] if found else None

    def managed(self, toolbox_id: str | None = None, extra: dict[str, str] | None = None) -> list[ContainerState]:
        labels = [f"{LABEL_MANAGED}=true"]
        if toolbox_id:
            labels.append(f"{LABEL_TOOLBOX}={toolbox_id}")
        labels += [f"{k}={v}" for k, v in (extra or {}).items()]
        try:
            summaries = self.client.api.containers(all=True, filters={"label": labels})
            states = []
            for summary in summaries:
                state = self.inspect(summary["Id"])
                if state is not None:
                    states.append(state)
            return states
        except DockerException as exc:
            raise ContainerError(f"listing containers on {self.endpoint} failed: {_short(exc)}") from None
