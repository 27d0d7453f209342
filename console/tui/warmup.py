"""Screens made ahead of their first visit, in the quiet after the first paint.

A first visit costs what building a screen costs: importing its module, composing and
styling a hundred widgets, reading the vault into them — a second or more on a slow,
busy machine. The imports run in a thread; each screen is then made on the loop while
nobody types, so a digit later only brings a ready screen to the front. Nothing starts
until the console has been quiet for a moment (the first paint counts as a key), so an
early key does not share the loop, or the interpreter, with this; a key pressed later
waits at most for the part of a screen being mounted at that moment.
"""

from __future__ import annotations

import asyncio
import gc
import importlib
import time
from typing import TYPE_CHECKING

from console.tui.screens import SCREENS

if TYPE_CHECKING:
    from textual.app import App

QUIET = 0.3
"""Seconds without a key or a click before the next screen is made."""


class WarmUp:
    def __init__(self, app: App) -> None:
        self.app = app
        self.last_input = 0.0
        self.making: str | None = None
        """The mode whose screen is being made at this moment."""
        self.stopped = False

    def noticed_input(self) -> None:
        self.last_input = time.monotonic()

    async def run(self) -> None:
        for spec in SCREENS:  # each screen's module (its widgets, its services) in a thread
            await self.quiet()
            await asyncio.to_thread(importlib.import_module, spec.target.partition(":")[0])
        for spec in SCREENS:
            await self.quiet()
            if not self._open():
                return
            if not self._made(spec.mode):
                self.making = spec.mode
                try:
                    await self._make(spec.mode)
                finally:
                    self.making = None
        # What now lives as long as the console stays out of the full collections too.
        gc.freeze()

    async def quiet(self) -> None:
        """Return once nobody has pressed a key or clicked for ``QUIET`` seconds."""
        while (wait := self.last_input + QUIET - time.monotonic()) > 0:
            await asyncio.sleep(wait)

    # Textual makes a mode's screen on its first switch and has no public call to make it
    # sooner; these two lines are the switch's own first half (tests/tui/test_responsive.py
    # fails if a Textual release changes them).
    def _open(self) -> bool:
        """False once the console is shutting down: its screens are being closed one stack
        at a time, and a stack made now would change the dict Textual is walking."""
        return bool(self.app._running) and not self.stopped

    async def stop(self, timeout: float = 5.0) -> None:
        """Make no more screens, and let every screen still being mounted (by this or by a
        digit pressed just before quitting) finish: Textual closes a half-mounted screen's
        widgets under it, and their own on_mount then finds its children gone and raises."""
        self.stopped = True
        mounting = [asyncio.ensure_future(screen._mounted_event.wait())
                    for stack in self.app._screen_stacks.values() for screen in stack
                    if not screen._mounted_event.is_set()]
        if mounting:
            _done, waiting = await asyncio.wait(mounting, timeout=timeout)
            for task in waiting:
                task.cancel()

    def _made(self, mode: str) -> bool:
        return bool(self.app._screen_stacks.get(mode))

    async def _make(self, mode: str) -> None:
        await self.app._init_mode(mode)
