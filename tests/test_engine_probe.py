"""Probing the Docker engine: one ``GET /version`` on its socket, without docker-py."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

from console.runtime.engine import probe_engine


class _UnixHTTPServer(HTTPServer):
    address_family = socket.AF_UNIX

    def server_bind(self) -> None:
        self.socket.bind(self.server_address)

    def get_request(self) -> tuple[socket.socket, tuple[str, int]]:
        request, _address = self.socket.accept()
        return request, ("engine", 0)


@contextmanager
def fake_engine(path: Path, status: int, body: bytes) -> Iterator[list[str]]:
    """An HTTP server on a unix socket answering every GET with ``status`` and ``body``;
    yields the paths it was asked for."""
    asked: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            asked.append(self.path)
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass

    server = _UnixHTTPServer(str(path), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield asked
    finally:
        server.shutdown()
        server.server_close()


def test_an_engine_on_a_unix_socket_is_asked_its_version(tmp_path: Path) -> None:
    sock = tmp_path / "docker.sock"
    with fake_engine(sock, 200, json.dumps({"Version": "27.1.0", "ApiVersion": "1.46"}).encode()) as asked:
        status = probe_engine(f"unix://{sock}")
    assert status.reachable and (status.version, status.api_version) == ("27.1.0", "1.46")
    assert asked == ["/version"]
    assert status.describe() == f"Docker 27.1.0 (API 1.46) at unix://{sock}"


def test_what_is_not_an_engine_is_named_in_one_line(tmp_path: Path) -> None:
    sock = tmp_path / "docker.sock"
    with fake_engine(sock, 500, b'{"message": "boom"}'):
        failed = probe_engine(f"unix://{sock}")
    assert not failed.reachable and failed.error == "GET /version answered HTTP 500: boom"
    with fake_engine(sock := tmp_path / "web.sock", 200, b"<html>hello</html>"):
        garbled = probe_engine(f"unix://{sock}")
    assert not garbled.reachable and garbled.error == "not a Docker engine's answer (JSONDecodeError)"


def test_no_engine_is_said_with_the_reason(tmp_path: Path) -> None:
    missing = probe_engine(f"unix://{tmp_path}/nothing.sock")
    assert not missing.reachable
    assert missing.describe() == f"no Docker engine at unix://{tmp_path}/nothing.sock: [Errno 2] No such file or directory"
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    refused = probe_engine(f"tcp://127.0.0.1:{port}", timeout=2)
    assert not refused.reachable and "Connection refused" in (refused.error or "")


def test_probing_does_not_import_docker_py(tmp_path: Path) -> None:
    # docker-py and requests take a quarter of a second to import: the console probes the
    # engine while it paints its first screen, and that import held the first key back.
    probe = (f"import sys; from console.runtime.engine import probe_engine; probe_engine('unix://{tmp_path}/x.sock'); "
             "print(sorted({m.split('.')[0] for m in sys.modules} & {'docker', 'requests', 'urllib3'}))")
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "[]"
