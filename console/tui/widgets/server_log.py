"""A server's stderr, tailed live: pauses when scrolled up, End follows again, / searches.

Lines come from ``console.services.server_status.log_lines`` (the server's own secrets
and anything token-shaped already masked) in an async worker; they are written in
batches every 100 ms, so a chatty server costs one repaint per batch, not per line.
"""

from __future__ import annotations

import asyncio
import importlib
import re
from typing import ClassVar

from rich.highlighter import Highlighter
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.timer import Timer
from textual.widgets import Input, Log, Static

from console.errors import TbxError

TAIL = 200
"""Lines of history shown when a log opens."""
MAX_LINES = 2000


class MatchHighlighter(Highlighter):
    """Marks every case-insensitive occurrence of the search text."""

    def __init__(self) -> None:
        self.pattern: re.Pattern[str] | None = None
        self.style = "black on yellow"

    def highlight(self, text: Text) -> None:
        if self.pattern is not None:
            for match in self.pattern.finditer(text.plain):
                text.stylize(self.style, match.start(), match.end())


class TailLog(Log):
    """The log lines. Focus it (``l``) to scroll; End follows new lines again."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("end", "follow", "Follow", id="log.follow", tooltip="Jump to the newest line and follow new ones"),
        Binding("slash", "search", "Search", id="log.search", tooltip="Find text in the log"),
        Binding("n", "match(1)", "Next match", id="log.next", show=False, tooltip="Jump to the next match"),
        Binding("N", "match(-1)", "Previous match", id="log.previous", show=False,
                tooltip="Jump to the previous match"),
        Binding("escape", "leave", "Back to table", id="log.leave", show=False, tooltip="Focus the servers table"),
    ]

    def action_follow(self) -> None:
        self.parent_log.follow()

    def action_search(self) -> None:
        self.parent_log.open_search()

    def action_match(self, step: int) -> None:
        self.parent_log.jump(step)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "leave" and not self.screen.query("DataTable"):
            return False  # the log is a screen of its own: escape goes back
        return super().check_action(action, parameters)

    def action_leave(self) -> None:
        self.screen.focus_next("DataTable")

    @property
    def parent_log(self) -> ServerLog:
        return self.query_ancestor(ServerLog)


class ServerLog(Vertical):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "close_search", "Close search", id="log.close_search", show=False,
                tooltip="Back to the log lines (an empty search closes)"),
    ]
    DEFAULT_CSS = """
    ServerLog { height: 1fr; }
    ServerLog #log-status { height: 1; color: $text-muted; padding: 0 1; }
    ServerLog #log-status.paused { color: $warning; }
    ServerLog #log-search { display: none; height: 1; border: none; padding: 0 1; background: $panel; }
    ServerLog #log-search:focus { background: $primary 25%; }
    ServerLog #log-search.shown { display: block; }
    ServerLog TailLog { height: 1fr; padding: 0 1; overflow-x: auto; overflow-y: scroll; }
    """

    def __init__(self, tail: int = TAIL, **kwargs: object) -> None:
        """``tail``: lines of history shown when the log opens."""
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.tail = tail
        self.target: str | None = None
        self._token: object = None
        self._pending: list[str] = []
        self._flush_timer: Timer | None = None
        self._matches: list[int] = []
        self._match = -1
        self._note = ""

    def compose(self) -> ComposeResult:
        yield Static("", id="log-status")
        yield Input(placeholder="search the log: enter = next match, esc = close", id="log-search")
        log = TailLog(max_lines=MAX_LINES, id="log")
        log.highlighter = MatchHighlighter()
        log.highlight = True
        yield log

    def on_mount(self) -> None:
        self.watch(self.query_one(TailLog), "scroll_y", self._scrolled, init=False)
        self._status()

    @property
    def log_widget(self) -> TailLog:
        return self.query_one(TailLog)

    @property
    def following(self) -> bool:
        return self.log_widget.auto_scroll

    # -- what is shown -----------------------------------------------------------------

    def show(self, target: str | None, token: object, *, live: bool) -> None:
        """Tail ``target`` (``toolbox/server``); ``token`` changes when its container
        does (started, re-created), which starts the tail again."""
        if target == self.target and token == self._token:
            return
        self.target, self._token = target, token
        self.log_widget.clear()
        self._matches, self._match = [], -1
        if target is None:
            self._tail_stop()
            self._note = "no server selected"
        elif not live:
            self._note = f"{target}: the log is read live from the server's container"
        elif token is None:
            self._tail_stop()
            self._note = f"{target} has no container yet"
        else:
            self._note = f"{target}"
            self._tail(target)
        self._status()

    def detach(self) -> None:
        """Stop reading (the screen is hidden); the next ``show`` starts again."""
        self._tail_stop()
        self.target, self._token = None, None

    def _tail_stop(self) -> None:
        self.workers.cancel_group(self, "server-log")

    @work(exclusive=True, exit_on_error=False, group="server-log")
    async def _tail(self, target: str) -> None:
        # The services pull in docker-py and the MCP SDK: import them off the UI thread.
        module = await asyncio.to_thread(importlib.import_module, "console.services.server_status")
        ws = self.app.backend.workspace  # type: ignore[attr-defined]
        try:
            async for line in module.log_lines(ws, target, follow=True, tail=self.tail):
                self._pending.append(line)
                if self._flush_timer is None:
                    self._flush_timer = self.set_timer(0.1, self._flush)
            self._pending.append("── the server stopped: its log ends here ──")
        except TbxError as exc:
            self._pending.append(f"── {exc} ──")
        self._flush()

    def _flush(self) -> None:
        self._flush_timer = None
        if self._pending:
            lines, self._pending = self._pending, []
            log = self.log_widget
            log.write_lines(lines, scroll_end=False)
            if log.auto_scroll:  # after the layout has grown, so the end is the new end
                log.scroll_end(animate=False, x_axis=False)
            if self._matches or self.query_one("#log-search", Input).value:
                self._find(keep_position=True)

    # -- following -----------------------------------------------------------------------

    def _scrolled(self, _value: float) -> None:
        log = self.log_widget
        at_end = log.is_vertical_scroll_end or log.max_scroll_y == 0
        if at_end != log.auto_scroll:
            log.auto_scroll = at_end
            self._status()

    def follow(self) -> None:
        log = self.log_widget
        log.auto_scroll = True
        log.scroll_end(animate=False, immediate=True, x_axis=False)
        self._status()

    def _status(self) -> None:
        status = self.query_one("#log-status", Static)
        parts = [self._note]
        if self._matches:
            parts.append(f"match {self._match + 1}/{len(self._matches)}")
        elif self.query_one("#log-search", Input).value:
            parts.append("no match")
        paused = self.target is not None and not self.following
        parts.append("paused: End follows again" if paused else "/ search · End follows")
        status.update(Text("  ·  ".join(p for p in parts if p)))
        status.set_class(paused, "paused")

    # -- search --------------------------------------------------------------------------

    def open_search(self) -> None:
        search = self.query_one("#log-search", Input)
        search.add_class("shown")
        search.focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "log-search":
            event.stop()
            text = event.value.strip()
            highlighter = self.log_widget.highlighter
            assert isinstance(highlighter, MatchHighlighter)
            highlighter.pattern = re.compile(re.escape(text), re.IGNORECASE) if text else None
            self._find(keep_position=False)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "log-search":
            event.stop()
            self.jump(1)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "close_search" and not self.query_one("#log-search", Input).has_focus:
            return False  # escape from the lines themselves means the screen's "back"
        return super().check_action(action, parameters)

    def action_close_search(self) -> None:
        search = self.query_one("#log-search", Input)
        if not search.value:
            search.remove_class("shown")
        self.log_widget.focus()

    def _find(self, *, keep_position: bool) -> None:
        log = self.log_widget
        text = self.query_one("#log-search", Input).value.strip().lower()
        self._matches = [i for i, line in enumerate(log.lines) if text and text in line.lower()] if text else []
        log.refresh_lines(0, max(1, len(log.lines)))
        if not self._matches:
            self._match = -1
        elif not keep_position or self._match >= len(self._matches):
            top = int(log.scroll_y)
            after = [n for n, line in enumerate(self._matches) if line >= top]
            self._match = after[0] if after else len(self._matches) - 1
            self._show_match()
        self._status()

    def jump(self, step: int) -> None:
        if not self._matches:
            self._find(keep_position=False)
            return
        self._match = (self._match + step) % len(self._matches)
        self._show_match()
        self._status()

    def _show_match(self) -> None:
        log = self.log_widget
        line = self._matches[self._match]
        log.auto_scroll = False
        log.scroll_to(y=max(0, line - log.size.height // 2), animate=False, immediate=True)
