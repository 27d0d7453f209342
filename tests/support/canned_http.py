"""An HTTP server on 127.0.0.1 that answers each path with whatever a test put there.

Hosts a client ID metadata document for a sign-in, and plays a hostile authorization
server or resource: any status, headers and bytes, oversized or malformed included.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any


@dataclass
class Canned:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=lambda: {"Content-Type": "application/json"})

    @classmethod
    def json(cls, document: Any, status: int = 200, **headers: str) -> Canned:
        return cls(status, json.dumps(document).encode(), {"Content-Type": "application/json", **headers})


class CannedHttp:
    def __init__(self) -> None:
        self.routes: dict[tuple[str, str], Canned] = {}
        """(method, path) -> answer; anything else is a 404."""
        self.seen: list[tuple[str, str, bytes]] = []
        """(method, path with query, body) of every request."""
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                outer.seen.append((self.command, self.path, body))
                answer = outer.routes.get((self.command, self.path.split("?")[0]), Canned(404, b"{}"))
                self.send_response(answer.status)
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(answer.body)))
                self.end_headers()
                self.wfile.write(answer.body)

            do_GET = do_POST = _answer  # noqa: N815 - http.server's names

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="canned-http", daemon=True)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def put(self, path: str, answer: Canned, method: str = "GET") -> None:
        self.routes[(method, path)] = answer

    def __enter__(self) -> CannedHttp:
        self._thread.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._server.shutdown()
        self._server.server_close()
