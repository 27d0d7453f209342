"""``a`` on Servers: pick a catalog entry (type to search), fill in what it needs, add.

The modal only collects and validates; the add itself (an image build can take a
minute) runs in the Servers screen's worker, which shows its progress.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import ClassVar

from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, OptionList, Static
from textual.widgets.option_list import Option

from console.catalog.model import CatalogEntry
from console.model import Connection
from console.tui.widgets.add_server_form import AddRequest, AddServerForm, FormProblem, needs_summary
from console.tui.widgets.remote_server_form import CUSTOM, RemoteServerForm


def matches(entry: CatalogEntry, query: str) -> bool:
    words = query.lower().split()
    haystack = f"{entry.id} {entry.title} {entry.description}".lower()
    return all(word in haystack for word in words)


class AddServerModal(ModalScreen[AddRequest | None]):
    CSS = """
    AddServerModal .add-dialog { width: 112; height: 32; max-height: 100%; }
    AddServerModal #picker { width: 40; height: 1fr; margin-right: 1; }
    AddServerModal #search { height: 1; border: none; padding: 0 1; background: $panel-lighten-1; margin-bottom: 1; }
    AddServerModal #search:focus { background: $primary 20%; }
    AddServerModal #entries > .option-list--option { padding: 0 1; }
    AddServerModal #entries { height: 1fr; border: round $panel; }
    AddServerModal #entries:focus { border: round $primary; }
    AddServerModal #form { width: 1fr; height: 1fr; border: round $panel; padding: 0 1; border-title-color: $text; }
    AddServerModal #form:focus-within { border: round $primary; }
    AddServerModal .add-body { height: 1fr; }
    AddServerModal #problem { margin-top: 1; }
    AddServerModal .dialog-buttons { margin-top: 0; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="add.cancel", tooltip="Close without adding"),
        Binding("ctrl+s", "submit", "Add", id="add.submit", tooltip="Validate and add the server"),
    ]

    def __init__(self, toolbox: str, entries: list[CatalogEntry], *, taken: Callable[[str], bool],
                 check_paths: bool, connections: Sequence[Connection] | None = None) -> None:
        """``connections``: the OAuth accounts a server may be bound to (default: the
        console's vault)."""
        super().__init__()
        self.toolbox, self.entries = toolbox, [*entries, CUSTOM]
        self.taken, self.check_paths = taken, check_paths
        self.connections = connections
        self.current: CatalogEntry | None = None
        self._wanted: CatalogEntry | None = None
        self._showing = asyncio.Lock()

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog add-dialog"):
            yield Label(f"Add a server to toolbox {self.toolbox}", classes="dialog-title")
            with Horizontal(classes="add-body"):
                with Vertical(id="picker"):
                    yield Input(placeholder="search the catalog", id="search")
                    yield OptionList(id="entries")
                yield VerticalScroll(id="form")
            yield Static("", id="problem", classes="problem")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Cancel", id="cancel")
                yield Button("Add", id="add", variant="primary")

    def on_mount(self) -> None:
        self._list("")
        self.query_one("#search", Input).focus()

    def _list(self, query: str) -> None:
        options = self.query_one("#entries", OptionList)
        options.clear_options()
        shown = [e for e in self.entries if matches(e, query)]
        for entry in shown:
            prompt = Text.assemble((entry.title, "bold"), (f"  {entry.id}\n", "dim"),
                                   (needs_summary(entry), "dim italic"))
            options.add_option(Option(prompt, id=entry.id))
        if shown:
            options.highlighted = 0
        else:
            self.call_later(self._show, None)

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "search":
            event.stop()
            self._list(event.value)

    def on_key(self, event: events.Key) -> None:
        """Up and down in the search field move through the list."""
        if self.query_one("#search", Input).has_focus and event.key in ("up", "down"):
            event.stop()
            options = self.query_one("#entries", OptionList)
            options.action_cursor_down() if event.key == "down" else options.action_cursor_up()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if event.input.id == "search":
            if self.current is not None:
                self.query_one("#name", Input).focus()
        else:
            self.action_submit()

    def on_option_list_option_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        # What the list highlights now, not what the event names: typed fast, an event
        # from an older list (another entry at the same index) arrives after the list changed.
        options = event.option_list
        if options.highlighted is None:
            return
        current = options.get_option_at_index(options.highlighted)
        entry = next((e for e in self.entries if e.id == current.id), None)
        if entry is not self._wanted:
            self.call_later(self._show, entry)

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.query_one("#name", Input).focus()

    async def _show(self, entry: CatalogEntry | None) -> None:
        # Typing in the search moves the highlight once per key, and each move lands here;
        # one at a time, and only the latest: overlapping, an older entry's form was mounted
        # after the newer one and Add took it (in tmux, "memory" typed showed Everything).
        self._wanted = entry
        async with self._showing:
            if entry is not self._wanted:
                return
            await self._mount_form(entry)

    async def _mount_form(self, entry: CatalogEntry | None) -> None:
        self.current = entry
        form = self.query_one("#form", VerticalScroll)
        await form.remove_children()
        self.query_one("#problem", Static).update("")
        if entry is None:
            await form.mount(Static("no catalog entry matches", classes="muted"))
            form.border_title = None
            return
        if entry.remote is not None:
            await form.mount(RemoteServerForm(entry, taken=self.taken))
        else:
            await form.mount(AddServerForm(entry, taken=self.taken, check_paths=self.check_paths,
                                           connections=self._connections()))
        form.border_title = f"{entry.title} — needs"
        form.scroll_home(animate=False)

    def _connections(self) -> Sequence[Connection]:
        if self.connections is None:
            backend = getattr(self.app, "backend", None)
            self.connections = list(backend.workspace.repos.connections) if backend is not None else []
        return self.connections

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "add":
            self.action_submit()
        else:
            self.dismiss(None)

    def action_submit(self) -> None:
        forms = [*self.query(AddServerForm), *self.query(RemoteServerForm)]
        if not forms:
            self.query_one("#problem", Static).update("pick a server from the catalog first")
            return
        try:
            request = forms[0].collect()
        except FormProblem as problem:
            self.query_one("#problem", Static).update(Text(str(problem)))
            self.query_one(f"#{problem.field_id}").focus()
            return
        self.dismiss(request)

    def action_cancel(self) -> None:
        self.dismiss(None)
