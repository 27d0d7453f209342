"""The Audit screen's filter bar: agent, tool/target text, decision and time window."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.message import Message
from textual.widgets import Input, Label, Select

from console.errors import UsageError
from console.services.grants import parse_duration
from console.tui.widgets.audit_tail import AuditQuery

DECISIONS = ("allow", "deny", "error", "ok")
WINDOWS: tuple[tuple[str, str], ...] = (("all time", "all"), ("last 15 min", "15m"), ("last 1 h", "1h"),
                                        ("last 24 h", "24h"), ("last…", "custom"))


class AuditFilters(Horizontal):
    """Posts ``AuditFilters.Changed`` with an ``AuditQuery`` whenever a filter changes."""

    DEFAULT_CSS = """
    AuditFilters { height: 1; margin: 0 0 1 0; }
    AuditFilters Label { width: auto; padding: 0 1 0 1; color: $text-muted; }
    AuditFilters Select { width: 24; }
    AuditFilters #decision { width: 14; }
    AuditFilters #window { width: 17; }
    AuditFilters #text { width: 1fr; }
    AuditFilters #duration { width: 12; display: none; }
    AuditFilters #duration.shown { display: block; }
    AuditFilters #duration.-invalid { color: $error; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "leave", "Back to the log", id="audit.filters_leave", show=False,
                tooltip="Keep the filters and go back to the records"),
    ]

    @dataclass
    class Changed(Message):
        query: AuditQuery

    class Leave(Message):
        """The user is done with the filters (escape, or enter in a text box)."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.query_value = AuditQuery()
        self._agents: list[str] | None = None

    def compose(self) -> ComposeResult:
        yield Label("agent")
        yield Select[str]([], prompt="any agent", id="agent", compact=True)
        yield Label("tool/target", id="text-label")
        yield Input(placeholder="text in target or action", id="text", compact=True)
        yield Label("decision")
        yield Select[str]([(d, d) for d in DECISIONS], prompt="any", id="decision", compact=True)
        yield Label("time")
        yield Select[str](WINDOWS, value="all", allow_blank=False, id="window", compact=True)
        yield Input(placeholder="e.g. 2h30m", id="duration", compact=True)

    def set_agents(self, names: list[str]) -> None:
        """Offer these agents; a chosen one that is gone falls back to any agent."""
        if names == self._agents:
            return  # unchanged: leave the select (and the table behind it) alone
        self._agents = names
        select = self.query_one("#agent", Select)
        current = select.value
        select.set_options([(name, name) for name in names])
        if isinstance(current, str) and current in names:
            select.value = current

    def set_decision(self, decision: str | None) -> None:
        select = self.query_one("#decision", Select)
        if decision is None:
            select.clear()
        else:
            select.value = decision

    def action_leave(self) -> None:
        self.post_message(self.Leave())

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.post_message(self.Leave())

    def focus_text(self) -> None:
        self.query_one("#text", Input).focus()

    def _within(self) -> timedelta | None | str:
        """The window, or an error message for a bad typed duration."""
        window = self.query_one("#window", Select).value
        duration = self.query_one("#duration", Input)
        duration.set_class(window == "custom", "shown")
        if window == "custom":
            text = duration.value.strip()
            if not text:
                return None
            try:
                return parse_duration(text)
            except UsageError as exc:
                return str(exc)
        return None if window in ("all", Select.NULL) else parse_duration(str(window))

    @on(Select.Changed)
    @on(Input.Changed)
    def _changed(self, event: Message) -> None:
        event.stop()
        within = self._within()
        duration = self.query_one("#duration", Input)
        duration.set_class(isinstance(within, str), "-invalid")
        duration.tooltip = within if isinstance(within, str) else None
        if isinstance(within, str):
            return  # keep the last good query while the duration is being typed
        agent = self.query_one("#agent", Select).value
        decision = self.query_one("#decision", Select).value
        self.query_value = AuditQuery(
            agent=agent if isinstance(agent, str) else None,
            text=self.query_one("#text", Input).value.strip(),
            decision=decision if isinstance(decision, str) else None,
            within=within,
        )
        self.post_message(self.Changed(self.query_value))
