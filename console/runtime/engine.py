"""Reaching a Docker Engine: the local socket, ``DOCKER_HOST``, or a forwarded socket."""

from __future__ import annotations

import json
import os
import socket
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import SplitResult, urlsplit

if TYPE_CHECKING:
    import http.client

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
    url = endpoint or default_endpoint()
    parts = urlsplit(url)
    if parts.scheme in ("unix", "http+unix", "tcp", "http"):
        return _probe_plain(url, parts, timeout)
    return _probe_docker_py(url, timeout)  # ssh://, https://: docker-py's transports


def _probe_plain(url: str, parts: SplitResult, timeout: float) -> EngineStatus:
    """``GET /version``, all docker-py would ask, without its quarter of a second of
    imports: the console probes while it paints its first screen."""
    import http.client

    connection = http.client.HTTPConnection(parts.hostname or "localhost", parts.port or 2375, timeout=timeout)
    if parts.scheme in ("unix", "http+unix"):
        connection.connect = lambda: _connect_unix(connection, parts.path, timeout)  # type: ignore[method-assign]
    try:
        connection.request("GET", "/version", headers={"Host": "docker", "User-Agent": "toolbox-console"})
        response = connection.getresponse()
        body = response.read()
        if response.status != 200:
            return EngineStatus(False, url, None, None, _short(f"GET /version answered HTTP {response.status}"
                                                               + _engine_message(body)))
        info = json.loads(body)
        return EngineStatus(True, url, info.get("Version"), info.get("ApiVersion"), None)
    except OSError as exc:
        return EngineStatus(False, url, None, None, _short(exc))
    except (http.client.HTTPException, ValueError, AttributeError) as exc:
        return EngineStatus(False, url, None, None, f"not a Docker engine's answer ({type(exc).__name__})")
    finally:
        connection.close()


def _engine_message(body: bytes) -> str:
    try:
        message = json.loads(body).get("message")
    except (ValueError, AttributeError):
        return ""
    return f": {message}" if message else ""


def _connect_unix(connection: http.client.HTTPConnection, path: str, timeout: float) -> None:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect(path)
    except BaseException:
        sock.close()
        raise
    connection.sock = sock


def _probe_docker_py(url: str, timeout: float) -> EngineStatus:
    import docker
    from docker.errors import DockerException

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
