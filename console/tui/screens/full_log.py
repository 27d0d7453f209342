"""``L`` on Servers: one server's log on the whole screen; Escape goes back.

The same live tail as the Logs tab (pauses when scrolled up, End follows, / searches),
started afresh with more history; it follows the server into a new container when the
server is restarted or edited.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widgets import Footer, Static

from console.tui.widgets.server_log import MAX_LINES, ServerLog, TailLog


class FullLogScreen(Screen[None]):
    DEFAULT_CSS = """
    FullLogScreen #full-log-title { height: 1; padding: 0 1; background: $panel; text-style: bold; }
    FullLogScreen ServerLog { height: 1fr; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back", id="full_log.back", tooltip="Back to the Servers screen"),
    ]

    def __init__(self, target: str, token: Callable[[], object]) -> None:
        """``target``: ``toolbox/server``; ``token()``: what identifies its container now
        (it changes when the container does, which starts the tail again)."""
        super().__init__()
        self.target, self.token = target, token

    def compose(self) -> ComposeResult:
        yield Static(f"log of {self.target} · Escape: back", id="full-log-title")
        yield ServerLog(tail=MAX_LINES)
        yield Footer()

    def on_mount(self) -> None:
        self._follow()
        self.set_interval(1.0, self._follow)
        self.query_one(TailLog).focus()

    def _follow(self) -> None:
        self.query_one(ServerLog).show(self.target, self.token(), live=True)

    def action_back(self) -> None:
        self.dismiss()
