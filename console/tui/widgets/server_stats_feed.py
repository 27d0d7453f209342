"""CPU and memory of a toolbox's running servers: one Engine API stats stream each.

Not a widget: the Servers screen owns one and calls ``sync`` on every refresh with the
containers that run now, so streams start as servers come up and stop as they go. Each
stream only stores its latest sample and a short history; nothing is rendered per
sample, so a burst of samples costs nothing on screen until the next refresh reads them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from console.runtime.enginehttp import Endpoint
    from console.runtime.streams import Stats

log = logging.getLogger(__name__)
HISTORY = 60
"""Samples kept per server for the sparklines: a minute at the engine's one a second."""


class StatsFeed:
    def __init__(self, history: int = HISTORY) -> None:
        self.history_size = history
        self.latest: dict[str, Stats] = {}
        self.history: dict[str, deque[Stats]] = {}
        self._streams: dict[str, tuple[str, asyncio.Task[None]]] = {}

    @property
    def following(self) -> dict[str, str]:
        """Server id -> container id of the streams running now."""
        return {sid: cid for sid, (cid, task) in self._streams.items() if not task.done()}

    def sync(self, endpoint: Endpoint, wanted: dict[str, str]) -> None:
        """Follow exactly ``wanted`` (server id -> id of its running container)."""
        for server_id, (container_id, task) in list(self._streams.items()):
            if wanted.get(server_id) != container_id or task.done():
                task.cancel()
                del self._streams[server_id]
                if server_id not in wanted:
                    self.latest.pop(server_id, None)
        for server_id, container_id in wanted.items():
            if server_id not in self._streams:
                task = asyncio.create_task(self._follow(endpoint, server_id, container_id),
                                           name=f"stats:{server_id}")
                self._streams[server_id] = (container_id, task)

    def forget(self, keep: set[str]) -> None:
        """Drop the history of servers that are gone."""
        for server_id in [s for s in self.history if s not in keep]:
            del self.history[server_id]
            self.latest.pop(server_id, None)

    def stop(self) -> None:
        for _container, task in self._streams.values():
            task.cancel()
        self._streams.clear()
        self.latest.clear()

    async def _follow(self, endpoint: Endpoint, server_id: str, container_id: str) -> None:
        from console.runtime import streams

        samples = self.history.setdefault(server_id, deque(maxlen=self.history_size))
        try:
            async for sample in streams.stats(endpoint, container_id):
                self.latest[server_id] = sample
                samples.append(sample)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a vanished container or engine: the next sync retries
            log.debug("stats stream of %s ended: %s", server_id, exc)
        finally:
            with contextlib.suppress(KeyError):
                if self._streams[server_id][0] == container_id:
                    self.latest.pop(server_id, None)
