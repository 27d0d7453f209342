"""An agent that speaks MCP over HTTP by hand: for sending what no SDK would send."""

from __future__ import annotations

import json
from typing import Any

import httpx2

INIT = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "raw", "version": "1"}}}
ACCEPT = "application/json, text/event-stream"


class RawAgent:
    """One agent token against one gateway endpoint, with its session once initialized."""

    def __init__(self, url: str, token: str | None, path: str = "/mcp", timeout: float = 10.0) -> None:
        self.url, self.token, self.path, self.timeout = url, token, path, timeout
        self.session: str | None = None
        self.http = httpx2.Client(timeout=timeout)
        self._next = 100

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> RawAgent:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def post(self, body: bytes | str | dict, *, headers: dict[str, str] | None = None,
             session: bool = True) -> httpx2.Response:
        sent = {"content-type": "application/json", "accept": ACCEPT, **(headers or {})}
        if self.token:
            sent["authorization"] = f"Bearer {self.token}"
        if session and self.session:
            sent["mcp-session-id"] = self.session
        content = json.dumps(body).encode() if isinstance(body, dict) else body
        return self.http.post(self.url + self.path, content=content, headers=sent)

    def initialize(self, client_info: Any = None) -> str:
        body = json.loads(json.dumps(INIT))
        if client_info is not None:
            body["params"]["clientInfo"] = client_info
        response = self.post(body, session=False)
        assert response.status_code == 200 and "result" in response.json(), response.text
        self.session = response.headers["mcp-session-id"]
        self.post({"jsonrpc": "2.0", "method": "notifications/initialized"})
        return self.session

    def request(self, method: str, params: dict | None = None, request_id: Any = None) -> httpx2.Response:
        self._next += 1
        body: dict[str, Any] = {"jsonrpc": "2.0", "id": self._next if request_id is None else request_id,
                                "method": method}
        if params is not None:
            body["params"] = params
        return self.post(body)

    def call(self, name: str, arguments: dict | None = None, **extra: Any) -> dict:
        """tools/call; the decoded JSON-RPC response."""
        response = self.request("tools/call", {"name": name, "arguments": arguments or {}, **extra})
        assert response.status_code == 200, response.text
        return response.json()


def error_of(response: httpx2.Response) -> dict:
    assert response.headers["content-type"].startswith("application/json"), response.text
    return response.json()["error"]


def text_of(reply: dict) -> str:
    return "".join(part.get("text", "") for part in reply["result"]["content"])


NEW_ERA = "2026-07-28"


def envelope(version: str = NEW_ERA) -> dict[str, Any]:
    """The ``_meta`` of a 2026-07-28 request."""
    return {"io.modelcontextprotocol/protocolVersion": version, "io.modelcontextprotocol/clientCapabilities": {},
            "io.modelcontextprotocol/clientInfo": {"name": "raw", "version": "1"}}


def stateless(url: str, token: str | None, method: str, params: dict | None = None, *, meta: Any = None,
              headers: dict[str, str | None] | None = None, request_id: Any = 1) -> httpx2.Response:
    """One 2026-07-28 request as the era spells it: the envelope in ``_meta`` (``meta``
    replaces it) and the headers that repeat it (``headers`` overrides them; None drops one)."""
    params = dict(params or {})
    sent: dict[str, str | None] = {"content-type": "application/json", "accept": ACCEPT,
                                   "mcp-protocol-version": NEW_ERA, "mcp-method": method}
    if token:
        sent["authorization"] = f"Bearer {token}"
    if isinstance(params.get("name") or params.get("uri"), str):
        sent["mcp-name"] = params.get("name") or params["uri"]
    sent.update(headers or {})
    body = {"jsonrpc": "2.0", "id": request_id, "method": method,
            "params": {**params, "_meta": envelope() if meta is None else meta}}
    return httpx2.post(url, content=json.dumps(body), timeout=30,
                       headers={k: v for k, v in sent.items() if v is not None})
