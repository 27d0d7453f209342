"""A console closed while a screen is still being mounted closes cleanly.

Textual closes every screen on the way out; a screen closed half-mounted had its widgets
removed under their own on_mount, which raised (NoMatches on a Select's label, a table,
a snippet) and turned the close into a traceback. The warm-up (console/tui/warmup.py)
makes screens in the background, so any live console closed at the wrong moment hit it:
CI saw it at the end of tests/tui/test_audit_screen.py.
"""

from __future__ import annotations

import asyncio

import pytest

from console.tui.app import ConsoleApp
from console.tui.backend import Backend

SIZE = (120, 36)


@pytest.mark.parametrize("mode", ["try", "servers", "agents"])
async def test_closed_while_the_warm_up_makes_a_screen(seeded: Backend, mode: str) -> None:
    app = ConsoleApp(seeded, live=True)
    async with app.run_test(size=SIZE):
        for _ in range(3000):
            if app.warm_up.making == mode:
                break
            await asyncio.sleep(0.002)
        assert app.warm_up.making == mode
        # Leaving run_test closes the console at once, mid-mount.
    assert getattr(app, "_exception", None) is None
    assert app.warm_up.stopped
