"""A focused field keeps its height and shows what is typed in it (tbx-dark, the default theme).

The add-server form drew its inputs one row high with ``border: none`` in DEFAULT_CSS;
Textual's own ``Input:focus`` (a pseudo-class, so more specific) put the tall border
back on focus, and the one row left was all border: the value vanished while typed.
"""

from __future__ import annotations

from textual.widget import Widget
from textual.widgets import Checkbox, Input

from console.tui.app import ConsoleApp
from console.tui.backend import Backend
from console.tui.modals.add_server import AddServerModal
from tests.support.screen import widget_text
from tests.support.tui import still_app


async def tab_to(app: ConsoleApp, pilot, widget: Widget) -> None:  # noqa: ANN001
    for _ in range(30):
        if app.focused is widget:
            return
        await pilot.press("tab")
    raise AssertionError(f"tab never reached {widget!r} (focus on {app.focused!r})")


async def test_add_server_fields_keep_their_row_when_focused(seeded: Backend) -> None:
    app = still_app(seeded)
    async with app.run_test(size=(120, 36)) as pilot:
        assert app.theme == "tbx-dark"
        await pilot.press("2", "a")
        await pilot.pause()
        modal = app.screen
        assert isinstance(modal, AddServerModal)
        await pilot.press(*"repository", "enter")  # git: a name, a folder to mount, limits
        await pilot.pause()
        form_fields = ["#name", "#mount-0", "#ro-0", "#limit-cpus", "#limit-memory", "#limit-pids"]
        for field_id in form_fields:
            widget = modal.query_one(field_id)
            await tab_to(app, pilot, widget)
            await pilot.pause()
            assert widget.region.height == 1, f"{field_id} is {widget.region.height} rows high when focused"
            if isinstance(widget, Input):
                await pilot.press("end", *"42")
                await pilot.pause()
                assert widget.value.endswith("42")
                assert "42" in widget_text(app, widget), f"{field_id}: typed text not drawn"
            else:
                assert isinstance(widget, Checkbox)
                assert "read-only" in widget_text(app, widget)
