"""The held calls of a toolbox's gateway, as the console follows them.

A long poll of the gateway's ``/approvals`` (``console.gateway.approvals_http``): each
change comes back at once, and nothing is asked while nothing changes. The local
gateway is reached at its address; a remote toolbox's over the console's SSH link to it
(its owner's door forwarded beside the engine, ``console.gateway.remote_approvals``). Without a
gateway (or a link) the feed looks again every few seconds; a token that expired is
minted again. It is an asyncio task, so the console cancels it at once when it quits.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx2

from console.gateway.approvals_client import GatewayApprovals
from console.gateway.approvals_http import mint_control_token
from console.gateway.auth import owner_key
from console.model import Toolbox
from console.remote.tunnel import Tunnel
from console.tui.backend import Backend

RETRY_SECONDS = 2.0
POLL_SECONDS = 20.0
TOKEN_SECONDS = 3600.0

Changed = Callable[[list[dict[str, Any]]], None]
Reach = Callable[[], GatewayApprovals | None]
"""Blocking: the gateway to follow now (a fresh token), or None while there is none."""


def local(backend: Backend, toolbox: str = "local") -> Reach:
    def reach() -> GatewayApprovals | None:
        info = backend.gateway_info(toolbox)
        if info is None:
            return None
        token = mint_control_token(owner_key(backend.workspace), "console", TOKEN_SECONDS)
        return GatewayApprovals(toolbox, info.url, token)

    return reach


def remote(backend: Backend, box: Toolbox, link: Callable[[], Tunnel | None]) -> Reach:
    """``link`` is the console's open tunnel to the toolbox, if it is up."""
    from console.gateway.remote_approvals import over_link

    def reach() -> GatewayApprovals | None:
        tunnel = link()
        return None if tunnel is None else over_link(backend.workspace, box, tunnel, "console", TOKEN_SECONDS)

    return reach


class ApprovalsFeed:
    def __init__(self, reach: Reach) -> None:
        self.reach = reach
        self.gateway: GatewayApprovals | None = None
        """Where decisions go: the gateway last reached, with its token."""

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

    def _reach(self) -> GatewayApprovals | None:
        try:
            return self.reach()
        except Exception:  # noqa: BLE001 - a link or vault that fails now is tried again in a moment
            return None

    async def _follow(self, gateway: GatewayApprovals, changed: Changed) -> None:
        version = -1
        headers = {"Authorization": f"Bearer {gateway.token}"}
        transport = httpx2.AsyncHTTPTransport(uds=gateway.uds) if gateway.uds else None
        try:
            async with httpx2.AsyncClient(base_url=gateway.url, headers=headers, timeout=POLL_SECONDS + 10,
                                          transport=transport) as http:
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
