"""The progress lines of long actions (adding a server, creating a droplet, refreshing a
token): shown while they come, hidden a while after the last one, unless the screen
says it is still busy."""

from __future__ import annotations

from collections.abc import Callable

from textual.timer import Timer
from textual.widgets import Log

LINGER = 10.0
"""Seconds the log stays up after the last line."""


class ActivityLog(Log):
    DEFAULT_CSS = """
    ActivityLog {
        height: 6; display: none; padding: 0 1; overflow-x: hidden; overflow-y: auto;
        border: round $panel; border-title-color: $text-muted;
    }
    ActivityLog.shown { display: block; }
    """

    def __init__(self, still_busy: Callable[[], bool] = lambda: False, *, id: str = "activity") -> None:  # noqa: A002
        super().__init__(max_lines=200, id=id)
        self.still_busy = still_busy
        self._linger: Timer | None = None

    def on_mount(self) -> None:
        self.border_title = "activity"

    def say(self, line: str) -> None:
        self.add_class("shown")
        self.write_line(line)
        if self._linger is not None:
            self._linger.stop()
        self._linger = self.set_timer(LINGER, self._quiet)

    def _quiet(self) -> None:
        self._linger = None
        if not self.still_busy():
            self.remove_class("shown")
