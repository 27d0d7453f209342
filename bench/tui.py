"""Console benchmark: the real `tbx` in a real terminal (tmux), then driven with Textual's Pilot.

0. In a terminal (bench/tui_terminal.py): first paint, the first key after it, every
   screen's first visit and revisits, with 100 agents, 20 servers and 2,000 tools, this
   checkout against a baseline commit. Aims (issue 13): first paint < 1 s, the first key
   answered < 100 ms, every screen switch < 100 ms at p95.
1. First paint: from starting the console (vault closed, key in the keyring) to the
   Toolboxes screen drawn with its data; also the import cost of the console package.
2. The grant matrix with 100 agents x 1,000 tools: time to open, to toggle a cell, to filter.
3. The Servers table with 50 servers refreshing: main-thread time per refresh.

Aims (issue 5): first paint < 1 s; matrix open < 500 ms, toggle < 50 ms; no refresh over
100 ms of main-thread time.
Run: .venv/bin/python bench/tui.py [--baseline REF] [--terminal-only] [--nice N] [--think S]   (BENCH_ROUNDS=7)
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import keyring  # noqa: E402

from bench import tui_terminal  # noqa: E402
from console.tui.app import ConsoleApp  # noqa: E402
from console.tui.backend import Backend  # noqa: E402
from tests.support.keyrings import MemoryKeyring  # noqa: E402
from tests.support.tui import seeded_backend  # noqa: E402

SIZE = (120, 36)
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "7"))


def fmt(samples: list[float]) -> str:
    ms = [s * 1000 for s in samples]
    return f"median {statistics.median(ms):7.1f} ms  (min {min(ms):.1f}, max {max(ms):.1f})"


async def first_paint(seeded: Backend) -> float:
    from console.tui.screens.toolboxes import ToolboxesScreen

    started = time.perf_counter()
    app = ConsoleApp(Backend(seeded.paths, seeded.settings), live=False)
    async with app.run_test(size=SIZE) as pilot:
        while not (isinstance(app.screen, ToolboxesScreen) and app.screen.query("DataTable").first().row_count):
            await pilot.pause(0.005)
        await pilot.pause()  # one more frame: drawn, not only mounted
        return time.perf_counter() - started


def import_cost() -> list[float]:
    samples = []
    for _ in range(ROUNDS):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import console.tui.app"], check=True, cwd=ROOT)
        samples.append(time.perf_counter() - started)
    return samples


# -- 2. the grant matrix, 100 agents x 1,000 tools ---------------------------------------------


async def matrix_timings(backend: Backend) -> dict[str, list[float]]:
    """Key press (or mode switch) -> the first frame of the matrix that shows its effect."""
    from console.tui.widgets.grant_grid import utc_now
    from console.tui.widgets.grant_matrix import GrantMatrix

    frames: list[float] = []
    original = GrantMatrix.render_lines

    def timed(self, crop):  # noqa: ANN001, ANN202
        out = original(self, crop)
        frames.append(time.perf_counter())
        return out

    def frame_after(moment: float) -> float:
        return next((f - moment for f in frames if f > moment), float("nan"))

    GrantMatrix.render_lines = timed  # type: ignore[method-assign]
    results: dict[str, list[float]] = {"open": [], "toggle": [], "filter": []}
    try:
        for _ in range(ROUNDS):
            app = ConsoleApp(backend, live=False)
            async with app.run_test(size=SIZE) as pilot:
                await pilot.pause()
                started = time.perf_counter()
                await app.switch_mode("grants")
                await pilot.pause()
                results["open"].append(frame_after(started))
        app = ConsoleApp(backend, live=False)
        async with app.run_test(size=SIZE) as pilot:
            await app.switch_mode("grants")
            await pilot.pause()
            matrix = app.screen.query_one(GrantMatrix)
            await pilot.press("down", "down")
            for i in range(30):
                await pilot.press("down" if i % 2 else "right")
                before = matrix.grid.cell(*matrix.current, utc_now()).mark  # type: ignore[union-attr, misc]
                started = time.perf_counter()
                await pilot.press("space")
                results["toggle"].append(frame_after(started))
                assert matrix.grid.cell(*matrix.current, utc_now()).mark != before  # type: ignore[union-attr, misc]
                await app.workers.wait_for_complete()
                await pilot.pause()
            await pilot.press("slash")
            for key in [*"srv-01/tool_1", *(["backspace"] * 13), *"agent-05"]:
                started = time.perf_counter()
                await pilot.press(key)
                results["filter"].append(frame_after(started))
    finally:
        GrantMatrix.render_lines = original  # type: ignore[method-assign]
    return results


# -- 3. the servers table, 50 servers refreshing -------------------------------------------------


async def servers_refresh(backend: Backend) -> tuple[list[float], list[float]]:
    """Main-thread time of one refresh of 50 rows whose every live cell changed (the worst
    case: health, ping, restarts, CPU and memory all new), and of the repaint that follows."""
    import gc

    from textual.geometry import Region

    from console.model import DesiredState, ServerInstance
    from console.tui.widgets.server_table import ServerTable
    from tests.tui.test_servers_screen import fifty_live_rows

    ws = backend.workspace
    with ws.change() as change:
        box = change.repos.toolboxes.require("local")
        for n in range(50 - len(change.repos.servers.in_toolbox(box.id))):
            change.repos.servers.put(ServerInstance(toolbox=box.id, name=f"server-{n:02d}",
                                                    desired_state=DesiredState.RUNNING))
    app = ConsoleApp(backend, live=False)
    refresh, paint = [], []
    async with app.run_test(size=SIZE) as pilot:
        await app.switch_mode("servers")
        await pilot.pause()
        screen = app.screen
        table = screen.query_one(ServerTable)
        servers = sorted(screen.servers.values(), key=lambda s: s.name)  # type: ignore[attr-defined]
        for round_ in range(1, 4 * ROUNDS + 1):
            rows = fifty_live_rows(app, servers, round_)
            gc.collect()  # a collection owed by earlier work is not this refresh's cost
            started = time.perf_counter()
            table.sync(rows)
            refresh.append(time.perf_counter() - started)
            started = time.perf_counter()
            table.render_lines(Region(0, 0, table.size.width, table.size.height))
            paint.append(time.perf_counter() - started)
            await pilot.pause()
    return refresh[1:], paint[1:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", default=tui_terminal.DEFAULT_BASELINE,
                        help="git ref the terminal measurement compares with")
    parser.add_argument("--terminal-only", action="store_true", help="only the measurement in a real terminal")
    parser.add_argument("--nice", type=int, default=0,
                        help="run `tbx` at this nice level (e.g. -15: ahead of a busy machine's other work)")
    parser.add_argument("--think", type=float, default=1.0,
                        help="seconds between an answer and the next key in the terminal (0: back to back)")
    args = parser.parse_args()
    tui_terminal.run(ROUNDS, args.baseline, args.nice, args.think)
    if args.terminal_only:
        return
    keyring.set_keyring(MemoryKeyring())
    os.environ.pop("TBX_PASSPHRASE", None)
    seeded = seeded_backend(Path(tempfile.mkdtemp(prefix="tbx-bench-tui-")) / "tbx")
    print(f"console benchmark at {SIZE[0]}x{SIZE[1]}, {ROUNDS} rounds")
    print(f"  python -c 'import console.tui.app' (whole process)   {fmt(import_cost())}")
    paints = [asyncio.run(first_paint(seeded)) for _ in range(ROUNDS)]
    print(f"  in process: app start -> vault open -> Toolboxes drawn  {fmt(paints)}")

    from tests.support.bigvault import generate_big_vault
    from tests.support.tui import fresh_backend

    big = fresh_backend(Path(tempfile.mkdtemp(prefix="tbx-bench-big-")) / "tbx")
    big.create_vault(None)
    info = generate_big_vault(big.workspace, 100, 1000)
    print(f"2. grant matrix: {info}")
    timings = asyncio.run(matrix_timings(big))
    for key, label, aim in (("open", "open (switch to Grants -> first frame)", "aim < 500 ms"),
                            ("toggle", "toggle (space -> cell redrawn)", "aim < 50 ms"),
                            ("filter", "filter keystroke (-> redrawn)", "")):
        print(f"  {label:<44}{fmt(timings[key])}   {aim}")
    refresh, paint = asyncio.run(servers_refresh(seeded))
    both = [a + b for a, b in zip(refresh, paint, strict=True)]
    print("3. servers table, 50 servers, every live cell changed each refresh")
    print(f"  update cells by row key                      {fmt(refresh)}")
    print(f"  repaint of the visible table                 {fmt(paint)}")
    print(f"  refresh + repaint, main thread               {fmt(both)}   aim: none over 100 ms")


if __name__ == "__main__":
    main()
