"""An agent whose MCP client answers server-to-client requests (sampling, elicitation,
roots): the SDK Client over Streamable HTTP, declaring exactly the callbacks it is given."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client


@asynccontextmanager
async def asking_agent(url: str, token: str, endpoint: str = "/mcp", **callbacks: Any) -> AsyncIterator[Client]:
    async with (
        httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=30.0) as http,
        Client(streamable_http_client(url + endpoint, http_client=http), mode="legacy", **callbacks) as client,
    ):
        yield client
