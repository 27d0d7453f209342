"""What a server of the 2026-07-28 era says only to a client that listens.

Such a server has no session to send notifications on: ``*/list_changed`` and updates
of subscribed resources go only on a ``subscriptions/listen`` stream. The gateway keeps
one open with each such server, asking for the list changes (which re-verify the
server's definitions against their pins, as for any server: ``upstreams``) and for the
URIs agents are subscribed to (fanned out by ``relay``). The stream's frames come on the
server's stdout as notifications, where the forwarder hands them to the same listeners
as a handshake-era server's; this module only keeps the request open, for the right
URIs, and opens it again when the server drops it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Iterable
from typing import Any

from console.gateway.forwarder import Forwarder, UpstreamFailed

log = logging.getLogger(__name__)
RETRY_SECONDS = (0.5, 30.0)
"""First and longest wait before opening a dropped stream again."""


class UpstreamListen:
    def __init__(self, forwarder: Forwarder, server_id: str) -> None:
        self._forwarder = forwarder
        self._server_id = server_id
        self.uris: frozenset[str] = frozenset()
        self._task: asyncio.Task[None] | None = None
        self.refused: str | None = None
        """Why the server would not listen (it is not asked again until the URIs change)."""

    def start(self) -> None:
        self._restart()

    def want(self, uris: Iterable[str]) -> None:
        """Listen for these URIs (and the list changes); the stream is opened again only
        when the set changes (each stream's filter is fixed when it opens)."""
        wanted = frozenset(uris)
        if wanted != self.uris:
            self.uris = wanted
            self._restart()

    def _restart(self) -> None:
        if self._task is not None:
            self._task.cancel()  # the forwarder tells the server the old stream is cancelled
        self.refused = None
        self._task = asyncio.get_running_loop().create_task(self._run(self.uris),
                                                            name=f"gateway:listen:{self._server_id}")

    async def _run(self, uris: frozenset[str]) -> None:
        pause = RETRY_SECONDS[0]
        while self._forwarder.alive:
            notifications: dict[str, Any] = {"toolsListChanged": True, "promptsListChanged": True,
                                             "resourcesListChanged": True}
            if uris:
                notifications["resourceSubscriptions"] = sorted(uris)
            try:
                response = await self._forwarder.request("subscriptions/listen", {"notifications": notifications},
                                                         None)
            except UpstreamFailed as exc:
                log.info("the listen stream of %s ended: %s", self._server_id, exc)
            else:
                error = (response.decoded or json.loads(response.line)).get("error")
                if isinstance(error, dict):
                    self.refused = str(error.get("message"))[:200]
                    log.warning("server %s will not listen: %s", self._server_id, self.refused)
                    return
            await asyncio.sleep(pause)
            pause = min(pause * 2, RETRY_SECONDS[1])

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
