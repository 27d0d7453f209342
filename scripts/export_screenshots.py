"""Write screenshots/*.svg by driving the console itself (make screenshots).

Each screen is shown on the same fixed vault the snapshot tests use (tests/support/tui.py),
with nothing live, at 120x36 — so the README shows what the console really draws.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import keyring  # noqa: E402

from console.tui.screens import SCREENS  # noqa: E402
from tests.support.keyrings import MemoryKeyring  # noqa: E402
from tests.support.connections_seed import seed_connections  # noqa: E402
from tests.support.tui import WHEN  # noqa: E402
from tests.support.remote_seed import seed_remote  # noqa: E402
from tests.support.tui import seeded_backend, still_app  # noqa: E402

SIZE = (120, 36)
OUT = ROOT / "screenshots"


async def shoot(mode: str, keys: list[str], name: str) -> Path:
    backend = seeded_backend(Path(tempfile.mkdtemp(prefix="tbx-shot-")) / "tbx")
    seed_connections(backend.workspace)
    seed_remote(backend.workspace)
    app = still_app(backend)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        app.goto(mode)
        await pilot.pause()
        if hasattr(app.screen, "clock"):  # expiry texts as of the seed's time, not today's
            app.screen.clock = lambda: WHEN
            app.screen.reload()
            await pilot.pause()
        for key in keys:
            await pilot.press(key)
            await pilot.pause()
        await app.workers.wait_for_complete()
        await pilot.pause(0.2)
        svg = app.export_screenshot(title=f"Toolbox Console — {name}")
    path = OUT / f"{name}.svg"
    path.write_text(svg.replace("\r\n", "\n"), encoding="utf-8", newline="\n")
    return path


async def main() -> None:
    os.environ.pop("TBX_PASSPHRASE", None)
    keyring.set_keyring(MemoryKeyring())
    OUT.mkdir(exist_ok=True)
    shots = [(spec.mode, [], f"{spec.key}-{spec.mode}") for spec in SCREENS]
    shots.append(("toolboxes", ["question_mark"], "help"))
    for mode, keys, name in shots:
        print(await shoot(mode, keys, name))


if __name__ == "__main__":
    asyncio.run(main())
