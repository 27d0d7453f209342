"""Calling a tool as an agent, through the gateway: what that agent would really get.

The owner does not hold agents' tokens, so the call carries a short-lived owner token
for the agent; the gateway applies the agent's grants exactly and audits the call as
made by the owner on the agent's behalf.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx2
import mcp_types as types
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from console.errors import TbxError, UsageError
from console.gateway.auth import mint_owner_token, owner_key
from console.gateway.surface import SEPARATOR
from console.workspace import Workspace


Capture = Callable[[str, bytes], None]
"""Called with ``"sent"`` or ``"received"`` and an HTTP body exactly as it crossed the wire."""


class CallRefused(TbxError):
    """The gateway refused the call (not granted, blocked) or the server failed."""


def _hooks(capture: Capture) -> dict[str, list[Callable[..., Any]]]:
    """httpx event hooks handing ``capture`` the body of every POST and of its response.
    Only POSTs: the GET event stream stays open and is not read here."""

    async def request(request: httpx2.Request) -> None:
        if request.method == "POST":
            capture("sent", request.content)

    async def response(response: httpx2.Response) -> None:
        if response.request.method == "POST":
            capture("received", await response.aread())

    return {"request": [request], "response": [response]}


async def call_as(ws: Workspace, url: str, agent: str, target: str, arguments: dict[str, Any],
                  capture: Capture | None = None) -> types.CallToolResult:
    """``target`` is TOOLBOX/SERVER/TOOL; the call goes to the aggregate endpoint.

    ``capture`` sees the JSON-RPC exchange (initialize included) as the HTTP bodies sent
    and received; headers, which carry the owner token, are never handed to it."""
    parts = target.split("/")
    if len(parts) != 3 or not all(parts):
        raise UsageError(f"bad tool {target!r}: use TOOLBOX/SERVER/TOOL")
    record = ws.repos.agents.require(agent)
    token = mint_owner_token(owner_key(ws), record.id)
    endpoint = f"{url.rstrip('/')}/mcp"
    refusal = ""
    try:
        async with (
            httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=300.0,
                               event_hooks=_hooks(capture) if capture else None) as http,
            Client(streamable_http_client(endpoint, http_client=http), mode="legacy") as client,
        ):
            try:
                return await client.call_tool(f"{parts[1]}{SEPARATOR}{parts[2]}", arguments)
            except MCPError as exc:
                # Raised after the client closes: inside it, its task group would wrap the error.
                refusal = exc.error.message
    except* MCPError as group:
        # The gateway refused the session itself (initialize): its reason, not a task group.
        refusal = next(e.error.message for e in _leaves(group) if isinstance(e, MCPError))
    raise CallRefused(f"as {agent}: {refusal}")


def _leaves(group: BaseExceptionGroup) -> list[BaseException]:
    found: list[BaseException] = []
    for exc in group.exceptions:
        found += _leaves(exc) if isinstance(exc, BaseExceptionGroup) else [exc]
    return found
