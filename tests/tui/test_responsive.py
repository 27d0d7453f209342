"""The console answers every key at once: no key waits on the engine, the gateway or the
disk; a first visit builds one screen, not the whole stylesheet; coming back re-reads only
what changed; screens are made ahead while nobody types; a long agent surface draws only
the lines in view. bench/tui.py measures the same in a real terminal."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from textual.css.stylesheet import Stylesheet
from textual.widgets import DataTable

from console.model import Agent, ToolDef, Trust, tool_pin
from console.runtime.engine import EngineStatus
from console.tui.app import ConsoleApp
from console.tui.backend import Backend, GatewayInfo
from console.tui.screens import SCREENS
from console.tui.screens.agents import AgentsScreen
from console.tui.screens.tools import ToolsScreen
from console.tui.widgets.agent_surface import AgentSurface
from tests.support.bigvault import generate_big_vault
from tests.support.tui import still_app

SIZE = (120, 36)
SLOW = 10.0
"""Seconds every call to the outside world takes in ``SlowBackend``."""


class SlowBackend(Backend):
    """The seeded console whose engine, gateway, remembered state and vault file each take
    ``SLOW`` seconds to answer, noting every call made on the event loop's thread."""

    def __init__(self, backend: Backend) -> None:
        super().__init__(backend.paths, backend.settings)
        self.ws = backend.ws
        self.on_loop: list[str] = []
        self.release = threading.Event()
        assert self.ws is not None
        vault = self.ws.vault
        for name in ("is_stale", "refresh"):
            setattr(vault, name, self._slowly(name, getattr(vault, name)))

    def _slowly(self, what: str, call: Callable) -> Callable:
        def slow(*args: object, **kwargs: object) -> object:
            if threading.current_thread() is threading.main_thread():
                self.on_loop.append(what)
            self.release.wait(SLOW)
            return call(*args, **kwargs)

        return slow

    def engine_status(self, endpoint: str | None = None) -> EngineStatus:
        return self._slowly("engine_status", lambda: EngineStatus(False, "unix:///nowhere", None, None, "slow"))()

    def gateway_info(self, toolbox: str) -> GatewayInfo | None:
        return self._slowly("gateway_info", lambda: None)()

    def remember(self, **values: object) -> None:
        self._slowly("remember", super().remember)(**values)


def screen_class(mode: str) -> str:
    return next(spec.target.rpartition(":")[2] for spec in SCREENS if spec.mode == mode)


async def test_no_key_waits_on_the_engine_the_gateway_or_the_disk(seeded: Backend) -> None:
    slow = SlowBackend(seeded)
    app = ConsoleApp(slow, live=True)
    try:
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            for spec in [*SCREENS[1:], SCREENS[0]]:
                await pilot.press(spec.key)
                assert type(app.screen).__name__ == screen_class(spec.mode)
                assert app.screen.children, f"{spec.title} shows nothing"
                # Each of these would have held the key SLOW seconds (timing it instead would
                # measure the test machine's load as well).
                assert slow.on_loop == [], f"{spec.title}: {slow.on_loop} on the loop"
            await pilot.pause(1.5)  # the vault's poll (every second) ran meanwhile, off the loop
            assert slow.on_loop == []
    finally:
        slow.release.set()


async def test_a_first_visit_parses_no_stylesheet_again(seeded: Backend, monkeypatch: pytest.MonkeyPatch) -> None:
    reparsed: list[int] = []
    original = Stylesheet.reparse

    def reparse(self: Stylesheet) -> None:
        reparsed.append(len(self.source))
        original(self)

    monkeypatch.setattr(Stylesheet, "reparse", reparse)
    app = still_app(seeded)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        reparsed.clear()  # the start-up's
        for spec in SCREENS[1:]:
            await pilot.press(spec.key)
            await pilot.pause()
            assert type(app.screen).__name__ == screen_class(spec.mode)
        # Textual re-parses every stylesheet of the console (~50 sources) for each new screen
        # unless told its styles are current; its own CSS is parsed with the cached rest.
        assert reparsed == []


async def test_coming_back_restyles_nothing_and_reads_only_a_changed_vault(
        seeded: Backend, monkeypatch: pytest.MonkeyPatch) -> None:
    reads: Counter[str] = Counter()
    original = ToolsScreen.reload

    def reload(self: ToolsScreen) -> None:
        reads["tools"] += 1
        original(self)

    monkeypatch.setattr(ToolsScreen, "reload", reload)
    styled: list[int] = []
    update_nodes = Stylesheet.update_nodes

    def counted(self: Stylesheet, nodes, animate: bool = False) -> None:  # noqa: ANN001
        nodes = list(nodes)
        styled.append(len(nodes))
        update_nodes(self, nodes, animate)

    monkeypatch.setattr(Stylesheet, "update_nodes", counted)
    app = still_app(seeded)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("3")
        await pilot.pause()
        assert reads["tools"] == 1  # not once for the mount and again for each of two resumes
        tools = app.screen
        await pilot.press("1")
        styled.clear()
        await pilot.press("3")
        await pilot.pause()
        assert app.screen is tools and reads["tools"] == 1
        # Textual restyles every widget of a screen that comes back; nothing changed here.
        assert sum(styled) < len(list(tools.walk_children())) / 2, styled

        await pilot.press("1")
        ws = seeded.workspace
        with ws.change() as change:  # as another process or screen would: the vault changes
            files = change.repos.servers.by_name(change.repos.toolboxes.require("local").id, "files")
            assert files is not None
            schema = {"type": "object"}
            pin = tool_pin("move_file", "Move a file.", schema, None, None)
            change.repos.tools.put(ToolDef(server=files.id, name="move_file", description="Move a file.",
                                           input_schema=schema, pin=pin, trust=Trust.PENDING))
        await pilot.press("3")
        await pilot.pause()
        assert reads["tools"] == 2
        assert any("move_file" in str(row.value) for row in app.screen.query_one(DataTable).rows)


async def test_screens_are_made_ahead_while_nobody_types(seeded: Backend) -> None:
    app = ConsoleApp(seeded, live=True)
    async with app.run_test(size=SIZE) as pilot:
        deadline = time.monotonic() + 180  # seconds of CPU on a loaded CI machine
        while not all(app.warm_up._made(spec.mode) for spec in SCREENS):  # the warm-up's Textual calls
            assert time.monotonic() < deadline, "the screens were not made ahead"
            await pilot.pause(0.1)
        assert type(app.screen).__name__ == "ToolboxesScreen"  # made, not shown

        with seeded.workspace.change() as change:  # meanwhile, an agent is added elsewhere
            change.repos.agents.put(Agent(name="late-arrival", token_hash="f" * 64, created=datetime.now(UTC)))
        agents = app._screen_stacks["agents"][0]
        await pilot.press("5")
        await pilot.pause()
        assert app.screen is agents  # the screen made ahead, now in front...
        names = [str(agents.query_one(DataTable).get_row_at(i)[0]) for i in range(agents.query_one(DataTable).row_count)]
        assert "late-arrival" in names  # ...showing what changed since it was made


async def test_a_long_agent_surface_draws_only_the_lines_in_view(
        seeded: Backend, monkeypatch: pytest.MonkeyPatch) -> None:
    ws = seeded.workspace
    generate_big_vault(ws, 2, 2000, toolbox="big", tools_per_server=100)  # whole servers granted: ~17,000 lines
    drawn: list[int] = []
    render_line = AgentSurface.render_line

    def counted(self: AgentSurface, y: int):  # noqa: ANN202
        drawn.append(y)
        return render_line(self, y)

    monkeypatch.setattr(AgentSurface, "render_line", counted)
    app = still_app(seeded)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("5")
        screen = app.screen
        assert isinstance(screen, AgentsScreen)
        table = screen.query_one(DataTable)
        table.move_cursor(row=next(i for i in range(table.row_count) if str(table.get_row_at(i)[0]) == "agent-000"))
        surface = screen.query_one(AgentSurface)
        deadline = time.monotonic() + 90
        heights: list[int] = []
        # laid out in full, and not again: the scrollbar appearing narrows the surface, which
        # lays it out again in a thread (a second or more on a busy machine); a height that
        # changes after 'end' moves the end away from the offset
        def laying_out() -> bool:
            return any(worker.group == "surface-lines" and not worker.is_finished for worker in app.workers)

        while (len(heights) < 3 or heights[-1] < 1000 or len(set(heights[-3:])) > 1 or laying_out()):
            assert time.monotonic() < deadline, "the surface was not laid out"
            await pilot.pause(0.1)
            heights.append(surface.virtual_size.height)
        lines = surface.text.splitlines()
        drawn.clear()
        surface.refresh()
        await pilot.pause()
        assert 0 < len(drawn) <= surface.size.height * 2  # the lines in view, not thousands
        surface.focus()
        await pilot.press("end")
        # End scrolls after the next refresh, animated: on a busy machine that is later than a pause.
        while surface.scroll_offset.y != surface.max_scroll_y and time.monotonic() < deadline:
            await pilot.pause(0.05)
        assert surface.scroll_offset.y == surface.max_scroll_y > 1000
        in_view = [surface.render_line(y).text.strip() for y in range(surface.size.height)]
        assert [line for line in in_view if line][-1] == lines[-1].strip()



async def test_quitting_while_screens_are_made_ahead_closes_cleanly(seeded: Backend,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Textual closes the screens one mode at a time, awaiting each; the warm-up used to make
    the next screen in between, and the dict of modes changed under Textual's loop
    ('dictionary changed size during iteration' as the console quit)."""
    app = ConsoleApp(seeded, live=True)
    closed: list[str] = []
    async with app.run_test(size=SIZE) as pilot:
        deadline = time.monotonic() + 180
        # the making has begun; a key pressed now holds the warm-up in its quiet wait
        while not any(app.warm_up._made(spec.mode) for spec in SCREENS[1:]):
            assert time.monotonic() < deadline, "the warm-up never began making screens"
            await pilot.pause(0.01)
        app.warm_up.noticed_input()
        while app.warm_up.making is not None:
            await pilot.pause(0.01)
            app.warm_up.noticed_input()
        made = {spec.mode for spec in SCREENS if app.warm_up._made(spec.mode)}
        assert made != {spec.mode for spec in SCREENS}, "every screen was made before the quit: nothing to race"
        prune = app._prune

        async def slow_prune(*nodes: object, parent: object = None) -> object:
            closed.append(type(nodes[0]).__name__)
            await asyncio.sleep(0.5)  # longer than the warm-up's quiet spell: it gets its chance
            return await prune(*nodes, parent=parent)  # type: ignore[arg-type]

        monkeypatch.setattr(app, "_prune", slow_prune)
    assert closed  # the screens were closed one by one, and the quit raised nothing
