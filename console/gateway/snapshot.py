"""One immutable view of everything a request decides with, swapped in whole.

A request takes the current ``Snapshot`` once and uses it from authentication to
masking, so a reload in the middle cannot make one step allow what another step saw
denied. Reloads read and compile the vault in a thread, never on the event loop, and
one reload serves everyone who asked for it meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from console.errors import TbxError
from console.gateway.surface import Surface
from console.model import ServerInstance
from console.services.redaction import vault_redactor
from console.trust.redact import Redactor
from console.workspace import Workspace

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Snapshot:
    generation: int
    surface: Surface
    redactor: Redactor
    toolbox: str
    """The toolbox's name, as audit targets and instructions say it."""
    vault_generation: int = -1
    """The vault version it was compiled from (the header's generation)."""


class Snapshots:
    """The current snapshot of one toolbox, and its reloads."""

    def __init__(self, ws: Workspace, toolbox_id: str,
                 running: Callable[[Iterable[ServerInstance]], set[str]]) -> None:
        """``running`` says which of the toolbox's servers count as running now."""
        self._ws = ws
        self._toolbox_id = toolbox_id
        self._running = running
        self._generation = 0
        self._active: asyncio.Task[bool] | None = None
        self._queued: asyncio.Task[bool] | None = None
        self._listeners: list[Callable[[Snapshot], None]] = []
        self.problem: str | None = None
        """Why the last reload failed (a rolled-back or unreadable vault): the gateway keeps
        serving with the last good snapshot and says so in its status."""
        self.current = self._build(refresh=False)

    def on_swap(self, listener: Callable[[Snapshot], None]) -> None:
        self._listeners.append(listener)

    def _build(self, refresh: bool) -> Snapshot:
        """Runs in a worker thread: reading the vault may block on its file lock."""
        if refresh:
            self._ws.refresh()
        with self._ws.vault.reading():
            tables: Any = self._ws.tables()
            box = self._ws.repos.toolboxes.get(self._toolbox_id)
            running = self._running(self._ws.repos.servers.in_toolbox(self._toolbox_id))
            surface = Surface(tables, self._toolbox_id, running, self._generation + 1)
            redactor = vault_redactor(self._ws)
            source = self._ws.vault.header.generation
        self._generation += 1
        return Snapshot(self._generation, surface, redactor, box.name if box else self._toolbox_id, source)

    def stale(self) -> bool:
        """Whether the vault holds a version the current snapshot was not compiled from:
        written by another process, or by this one (a re-discovery) since."""
        vault = self._ws.vault
        return vault.is_stale() or vault.header.generation != self.current.vault_generation

    async def reload(self) -> bool:
        """Re-read the vault (if another process wrote it) and recompile; True if swapped.

        A reload always starts after it was asked for, so it sees every change made
        before; callers that ask while one runs share the next one. A failure keeps the
        current snapshot.
        """
        if self._queued is None:
            self._queued = asyncio.get_running_loop().create_task(self._next_reload())
        return await asyncio.shield(self._queued)

    async def _next_reload(self) -> bool:
        if self._active is not None:
            with contextlib.suppress(Exception):
                await self._active
        self._queued, self._active = None, asyncio.current_task()
        try:
            return await self._reload()
        finally:
            self._active = None

    async def _reload(self) -> bool:
        try:
            fresh = await asyncio.to_thread(self._build, True)
        except TbxError as exc:
            if self.problem != str(exc):
                log.error("keeping the last good policy: %s", exc)
            self.problem = str(exc)
            return False
        self.problem = None
        self.current = fresh
        for listener in tuple(self._listeners):
            try:
                listener(fresh)
            except Exception:  # one listener's failure must not stop the swap reaching others
                log.exception("snapshot listener failed")
        return True

    async def catch_up(self) -> bool:
        """Reload now if the vault changed since the last reload; True if it did.

        Called before refusing anyone, so a token or grant created a moment ago works at
        once instead of after the next poll. Only a changed file costs a reload.
        """
        return self.stale() and await self.reload()
