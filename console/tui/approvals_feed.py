"""The held calls of the local toolbox's gateway, as the console follows them.

A long poll of the gateway's ``/approvals`` (``console.gateway.approvals_http``): each
change comes back at once, and nothing is asked while nothing changes. Without a gateway
the feed looks again every few seconds; a token that expired is minted again. It is an
asyncio task, so the console cancels it at once when it quits.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx2

from console.gateway.approvals_client import GatewayApprovals
from console.gateway.approvals_http import mint_control_token
from console.gateway.auth import owner_key
from console.tui.backend import Backend

RETRY_SECONDS = 2.0
POLL_SECONDS = 20.0
TOKEN_SECONDS = 3600.0

Changed = Callable[[list[dict[str, Any]]], None]


class ApprovalsFeed:
    def __init__(self, backend: Backend, toolbox: str = "local") -> None:
        self.backend = backend
        self.toolbox = toolbox
        self.gateway: GatewayApprovals | None = None
        """Where decisions go: the gateway last reached, with its token."""

    def _reach(self) -> GatewayApprovals | None:
        info = self.backend.gateway_info(self.toolbox)
        if info is None:
            return None
        token = mint_control_token(owner_key(self.backend.workspace), "console", TOKEN_SECONDS)
        return GatewayApprovals(self.toolbox, info.url, token)

    async def run(self, changed: Changed) -> None:
        shown = False
        while True:
            self.gateway = await asyncio.to_thread(self._reach)
            if self.gateway is not None:
                await self._follow(self.gateway, changed)
                shown = True
            elif shown:
                changed([])  # the gateway went away, and its held calls with it
                shown = False
            await asyncio.sleep(RETRY_SECONDS)

    async def _follow(self, gateway: GatewayApprovals, changed: Changed) -> None:
        version = -1
        headers = {"Authorization": f"Bearer {gateway.token}"}
        try:
            async with httpx2.AsyncClient(base_url=gateway.url, headers=headers, timeout=POLL_SECONDS + 10) as http:
                while True:
                    response = await http.get("/approvals", params={"since": version, "wait": POLL_SECONDS})
                    if response.status_code != 200:
                        return  # a token that expired: minted again
                    body = response.json()
                    if body["version"] != version:
                        version = body["version"]
                        changed(list(body["pending"]))
        except (httpx2.HTTPError, ValueError, KeyError, TypeError):
            return
