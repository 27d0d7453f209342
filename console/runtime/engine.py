"""Reaching a Docker Engine: the local socket, ``DOCKER_HOST``, or a forwarded socket."""

from __future__ import annotations

import os
from dataclasses import dataclass

DEFAULT_ENDPOINT = "unix:///var/run/docker.sock"


def default_endpoint() -> str:
    return os.environ.get("DOCKER_HOST") or DEFAULT_ENDPOINT


@dataclass(frozen=True)
class EngineStatus:
    reachable: bool
    endpoint: str
    version: str | None
    api_version: str | None
    error: str | None

    def describe(self) -> str:
        if self.reachable:
            return f"Docker {self.version} (API {self.api_version}) at {self.endpoint}"
        return f"no Docker engine at {self.endpoint}: {self.error}"


def probe_engine(endpoint: str | None = None, timeout: float = 3.0) -> EngineStatus:
    import docker
    from docker.errors import DockerException

    url = endpoint or default_endpoint()
    try:
        client = docker.DockerClient(base_url=url, timeout=timeout, version="auto")
    except DockerException as exc:
        return EngineStatus(False, url, None, None, _short(exc))
    try:
        info = client.version()
        return EngineStatus(True, url, info.get("Version"), info.get("ApiVersion"), None)
    except (DockerException, OSError) as exc:
        return EngineStatus(False, url, None, None, _short(exc))
    finally:
        client.close()


def _short(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:200]
