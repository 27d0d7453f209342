"""Write screenshots/*.svg by driving the console itself (make screenshots), live.

A throwaway home gets real servers running in the local Docker engine, agents, grants, a
gateway and calls through it (scripts/live_home.py). The console opens that home with
everything live, and each screen is exported at 120x36 once its live values (health,
ping, CPU, memory, the engine, the gateway) are in: the README shows what a user sees.
Nothing is written if any SVG holds a planted secret (the canary, an agent's token).
Needs the Docker engine and the base image of the test environment (scripts/testenv.sh).
"""

from __future__ import annotations

import asyncio
import html
import os
import re
import signal
import socket
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))
os.environ.setdefault("TBX_BASE_IMAGE", "tbx-base:test")
os.environ.setdefault("TBX_CACHE_DIR", str(ROOT / ".testenv" / "cache"))

import docker  # noqa: E402
from textual.pilot import Pilot  # noqa: E402
from textual.widgets import DataTable  # noqa: E402

from console.paths import resolve_paths  # noqa: E402
from console.runtime.engine import probe_engine  # noqa: E402
from console.tui.app import ConsoleApp  # noqa: E402
from console.tui.backend import Backend  # noqa: E402
from console.tui.screens import SCREENS  # noqa: E402
from live_home import LiveHome, build, calls  # noqa: E402
from tests.conftest import CANARY  # noqa: E402
from tests.support.sharedkeys import shared_keyring_home  # noqa: E402

SIZE = (120, 36)
OUT = ROOT / "screenshots"


def svg_text(svg: str) -> str:
    """The text an SVG shows, tags stripped and entities decoded."""
    return html.unescape(re.sub(r"<[^>]+>", "", svg)).replace("\u00a0", " ")


async def until(pilot: Pilot, check: Callable[[], object], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"screenshots: gave up waiting for {what}")
        await pilot.pause(0.2)


async def shoot(home: LiveHome) -> dict[str, str]:
    """Every screen, and Help, as SVG by file name."""
    ws = home.ws
    running = [s for s in ws.repos.servers if s.desired_state.value == "running"]
    app = ConsoleApp(home.backend)
    shots: dict[str, str] = {}
    async with app.run_test(size=SIZE) as pilot:
        print("  the console, live")
        await until(pilot, lambda: app.engine_description.startswith("engine: Docker"), "the engine")
        await until(pilot, lambda: app.gateway_description.startswith("gateway: http"), "the gateway")
        await until(pilot, lambda: all((h := app.health(s.id)) is not None and h.health == "healthy"
                                       for s in running), "every server healthy")

        def svg(name: str) -> str:
            return app.export_screenshot(title=f"Toolbox Console — {name}").replace("\r\n", "\n")

        for spec in SCREENS:
            name = f"{spec.key}-{spec.mode}"
            print("  screen", name)
            app.goto(spec.mode)
            await pilot.pause(0.5)
            if spec.mode == "servers":  # CPU and memory come with the second stats sample
                await until(pilot, lambda n=name: svg_text(svg(n)).count("MiB") >= len(running), "every server's stats")
            if spec.mode == "tools":
                await _pick(pilot, app.screen.query_one(DataTable), ("blocked", "pending"))
            if spec.mode == "grants":  # past the test server's many ungranted items, to the grants
                await pilot.press("end")
            if spec.mode == "audit":  # a refusal, with its reason
                await _pick(pilot, app.screen.query_one("#records", DataTable), ("deny",))
            if spec.mode == "try":
                await _try(pilot, app)
            await pilot.pause(1.5)  # live workers never complete: give the screen's own a moment
            shots[name] = svg(name)
        app.goto("toolboxes")
        await pilot.pause(0.5)
        await pilot.press("question_mark")
        await pilot.pause(0.5)
        shots["help"] = svg("help")
    return shots


async def _pick(pilot: Pilot, table: DataTable, words: tuple[str, ...]) -> None:
    """Put the cursor on the first row whose text holds one of ``words`` (a pending item shows more)."""
    for word in words:
        for index in range(table.row_count):
            if any(word in str(cell) for cell in table.get_row_at(index)):
                table.move_cursor(row=index)
                await pilot.pause(0.3)
                return


async def _try(pilot: Pilot, app: ConsoleApp) -> None:
    """time/get_current_time as the owner, by keyboard: Enter on the tool, the zone, Enter."""
    from console.tui.widgets.try_result import ResultView

    table = app.screen.query_one("#tools", DataTable)
    table.move_cursor(row=table.get_row_index("time/get_current_time"))
    await pilot.pause(0.3)
    await pilot.press("enter", *"Europe/Paris", "enter")
    result = app.screen.query_one(ResultView)
    await until(pilot, lambda: result.outcome is not None, "the call from Try", timeout=30)


def leaks(shots: dict[str, str], secrets: list[str]) -> list[str]:
    found = []
    for name, svg in shots.items():
        text = svg_text(svg)
        found += [f"{name}: secret #{i}" for i, secret in enumerate(secrets) if secret in svg or secret in text]
        found += [f"{name}: an unmasked token" for _ in re.findall(r"tbx_[A-Za-z0-9_-]{20,}", text)]
    return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def main() -> None:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("screenshots: stopped"))  # still clean up below
    status = probe_engine()
    if not status.reachable:
        raise SystemExit(f"screenshots need the Docker engine (scripts/testenv.sh): {status.describe()}")
    with tempfile.TemporaryDirectory(prefix="tbx-shots-") as tmp, shared_keyring_home(Path(tmp)) as home_dir:
        paths = resolve_paths()
        paths.ensure()
        paths.config_file.write_text(f"[gateway]\nport = {free_port()}\n")
        backend = Backend(paths)
        backend.create_vault(None)
        boxes: list[str] = []
        try:
            print("building a live home in", home_dir)
            home = build(backend, Path(tmp) / "data", CANARY)
            boxes = [box.id for box in home.ws.repos.toolboxes]
            info = backend.start_gateway("local")
            calls(home, info.url)
            for note in home.notes:
                print("  note:", note)
            shots = asyncio.run(shoot(home))
        finally:
            backend.stop_gateway("local")
            client = docker.from_env()
            for box in boxes:
                for container in client.containers.list(all=True, filters={"label": f"io.tbx.toolbox={box}"}):
                    container.remove(force=True)
    found = leaks(shots, home.secrets)
    if found:
        raise SystemExit("screenshots: not written, a secret is drawn: " + "; ".join(found))
    OUT.mkdir(exist_ok=True)
    for name, svg in shots.items():
        path = OUT / f"{name}.svg"
        path.write_text(svg, encoding="utf-8", newline="\n")
        print(path)


if __name__ == "__main__":
    main()
