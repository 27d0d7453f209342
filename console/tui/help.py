"""``?``: every key of the console, with the binding id to remap it in config.toml."""

from __future__ import annotations

import importlib
from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.keys import format_key
from textual.screen import ModalScreen, Screen
from textual.widgets import DataTable, Label, Static

from console.tui.screens import APPROVALS, SCREENS
from console.tui.widgets.fit_table import Col, Cut, FitTable


def _bindings(owner: type) -> list[Binding]:
    found: list[Binding] = []
    for klass in reversed(owner.__mro__):
        for binding in getattr(klass, "BINDINGS", []) if "BINDINGS" in vars(klass) else []:
            if isinstance(binding, Binding):
                found.append(binding)
    return found


SPELLED = ("enter", "up", "down", "left", "right", "pageup", "pagedown")
"""Keys shown by name: Textual's glyphs (⏎, ↑) are not what the key is called in config."""


def key_label(keys: str) -> str:
    """Keys as a user presses them: ``question_mark`` is ``?``, ``left_square_bracket``
    is ``[``, ``ctrl+enter`` stays ``ctrl+enter``; several keys are listed with commas."""
    shown = []
    for key in keys.split(","):
        *modifiers, name = key.strip().split("+")
        name = name if name in SPELLED else format_key(name)
        shown.append("+".join([*modifiers, name]))
    return ", ".join(shown)


COLUMNS = (Col("KEY", "KEY"), Col("ACTION", "ACTION", least=10, yields=1), Col("BINDING ID", "BINDING ID"))
"""Keys and binding ids (what ``[tui.keys]`` takes) never give up room; where a key works
is a heading row of its own, so that nothing but the action is cut at 80 columns."""


class HelpScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,question_mark,q", "close", "Close", id="help.close"),
    ]

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog help-dialog"):
            yield Label("Keys", classes="dialog-title")
            yield Static(Text("Remap a key by its binding id in config.toml:  [tui.keys]  "
                              '"server.toggle" = "ctrl+s"'), classes="dialog-body")
            yield FitTable(COLUMNS, id="keys", cursor_type="row", zebra_stripes=True)

    def on_mount(self) -> None:
        table = self.query_one("#keys", DataTable)
        keymap = getattr(self.app, "_keymap", {})
        sections: list[tuple[str, type]] = [("everywhere", type(self.app)), ("everywhere", Screen)]
        for spec in (*SCREENS, APPROVALS):
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
        shown_where = ""
        heading = f"bold {self.app.current_theme.primary}"
        for where, owner in sections:
            for binding in _bindings(owner):
                # Textual's own keys without an id (an Input's editing keys, a scroll) are
                # everywhere the same and cannot be remapped: only the few said everywhere.
                if (binding.id or f"{binding.key}:{binding.description}") in seen or not (
                        binding.id or (where == "everywhere" and binding.description)):
                    continue
                seen.add(binding.id or f"{binding.key}:{binding.description}")
                if where != shown_where:
                    table.add_row(Cut(where, heading, where="end"), "", "")
                    shown_where = where
                key = keymap.get(binding.id, binding.key) if binding.id else binding.key
                table.add_row(key_label(key), Cut(binding.description or binding.action, where="end"),
                              binding.id or "")
        table.focus()

    def action_close(self) -> None:
        self.dismiss()
