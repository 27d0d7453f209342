"""The ``/`` filter of a screen: hidden until asked for, escape hides it again."""

from __future__ import annotations

from typing import ClassVar

from textual.binding import Binding, BindingType
from textual.widgets import Input


class FilterInput(Input):
    DEFAULT_CSS = """
    FilterInput { dock: top; display: none; }
    FilterInput.shown { display: block; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "close", "Close filter", id="filter.close"),
        Binding("enter", "done", "Keep filter", id="filter.done", show=False),
    ]

    def __init__(self, placeholder: str = "filter", **kwargs: object) -> None:
        super().__init__(placeholder=placeholder, classes="filter", **kwargs)  # type: ignore[arg-type]

    @property
    def focusable(self) -> bool:  # hidden, it must never take focus (keys would type into it)
        return self.has_class("shown") and super().focusable

    def open(self) -> None:
        self.add_class("shown")
        self.focus()

    def action_close(self) -> None:
        self.value = ""
        self.remove_class("shown")
        self.screen.focus_next()

    def action_done(self) -> None:
        if not self.value:
            self.remove_class("shown")
        self.screen.focus_next()
