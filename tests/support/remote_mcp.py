"""Remote MCP servers for the tests: real processes on 127.0.0.1, speaking HTTP.

``RemoteServer`` runs tests/fixtures/servers/remote_http.py (the mcp SDK's server, in
Streamable HTTP, 2026-07-28-only or HTTP+SSE mode) and reads back the headers each HTTP
request carried, so a test can tell what reached the server and what never did.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

SERVER = Path(__file__).resolve().parents[1] / "fixtures" / "servers" / "remote_http.py"


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def wait_for_port(host: str, port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection((host, port), timeout=0.5).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


class RemoteServer:
    def __init__(self, folder: Path, mode: str = "streamable", description: str = "Echo the text back.") -> None:
        self.folder = folder
        self.mode = mode
        self.description = description
        self.port = free_port()
        self.headers_file = folder / f"headers-{self.port}.jsonl"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/mcp"

    def start(self) -> RemoteServer:
        self.folder.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [sys.executable, str(SERVER), str(self.port), self.mode, str(self.headers_file), self.description],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for_port("127.0.0.1", self.port)
        return self

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(10)
            self.process = None

    def restart(self, description: str | None = None) -> None:
        """The same address, served anew (with another description of ``echo``)."""
        self.stop()
        if description is not None:
            self.description = description
        self.start()

    def requests(self) -> list[dict[str, Any]]:
        if not self.headers_file.exists():
            return []
        return [json.loads(line) for line in self.headers_file.read_text().splitlines() if line.strip()]

    def __enter__(self) -> RemoteServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
