"""Calling a tool as an agent, through the gateway: what that agent would really get.

The owner does not hold agents' tokens, so the call carries a short-lived owner token
for the agent; the gateway applies the agent's grants exactly and audits the call as
made by the owner on the agent's behalf.
"""

from __future__ import annotations

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


class CallRefused(TbxError):
    """The gateway refused the call (not granted, blocked) or the server failed."""


async def call_as(ws: Workspace, url: str, agent: str, target: str, arguments: dict[str, Any]) -> types.CallToolResult:
    """``target`` is TOOLBOX/SERVER/TOOL; the call goes to the aggregate endpoint."""
    parts = target.split("/")
    if len(parts) != 3 or not all(parts):
        raise UsageError(f"bad tool {target!r}: use TOOLBOX/SERVER/TOOL")
    record = ws.repos.agents.require(agent)
    token = mint_owner_token(owner_key(ws), record.id)
    endpoint = f"{url.rstrip('/')}/mcp"
    refusal = ""
    async with (
        httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=300.0) as http,
        Client(streamable_http_client(endpoint, http_client=http), mode="legacy") as client,
    ):
        try:
            return await client.call_tool(f"{parts[1]}{SEPARATOR}{parts[2]}", arguments)
        except MCPError as exc:
            # Raised after the client closes: inside it, its task group would wrap the error.
            refusal = exc.error.message
    raise CallRefused(f"as {agent}: {refusal}")
