"""``?``: every key of the console, with the binding id to remap it in config.toml."""

from __future__ import annotations

import importlib
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Label, Static

from console.tui.screens import SCREENS
from console.tui.widgets.nav_table import NavTable


def _bindings(owner: type) -> list[Binding]:
    found: list[Binding] = []
    for klass in reversed(owner.__mro__):
        for binding in getattr(klass, "BINDINGS", []) if "BINDINGS" in vars(klass) else []:
            if isinstance(binding, Binding):
                found.append(binding)
    return found


class HelpScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,question_mark,q", "close", "Close", id="help.close"),
    ]

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog help-dialog"):
            yield Label("Keys", classes="dialog-title")
            yield Static("Remap any key in config.toml:  [tui.keys]  \"server.toggle\" = \"ctrl+s\"",
                         classes="dialog-body")
            yield NavTable(id="keys", cursor_type="row", zebra_stripes=True)

    def on_mount(self) -> None:
        table = self.query_one("#keys", DataTable)
        table.add_columns("WHERE", "KEY", "ACTION", "BINDING ID")
        keymap = getattr(self.app, "_keymap", {})
        sections: list[tuple[str, type]] = [("everywhere", type(self.app))]
        for spec in SCREENS:
            module, _sep, name = spec.target.partition(":")
            try:
                sections.append((f"{spec.key} {spec.title}", getattr(importlib.import_module(module), name)))
            except (ImportError, AttributeError):
                continue
        below = self.app.screen_stack[-2] if len(self.app.screen_stack) > 1 else None
        if below is not None:
            # Keys of the widgets on the screen underneath (a log's search, a matrix's toggle).
            widgets = {type(w) for w in below.query("*")}
            sections += [(f"on {w.__name__}", w) for w in sorted(widgets, key=lambda w: w.__name__)
                         if any("BINDINGS" in vars(k) and k.__module__.startswith("console.") for k in w.__mro__)]
        seen: set[str] = set()
        for where, owner in sections:
            for binding in _bindings(owner):
                if binding.id and binding.id in seen:
                    continue
                seen.add(binding.id or f"{where}:{binding.key}")
                key = keymap.get(binding.id, binding.key) if binding.id else binding.key
                table.add_row(where, key.replace("question_mark", "?").replace("slash", "/").replace("colon", ":"),
                              binding.description or binding.action, binding.id or "")
        table.focus()

    def action_close(self) -> None:
        self.dismiss()
