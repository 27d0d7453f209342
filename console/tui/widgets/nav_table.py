"""A DataTable whose Home/End and g/G go to the first and last row.

Textual's DataTable gives Home/End to the columns (with a row cursor they scroll
sideways) and has no g/G; every list in the console is a list of rows, and lazydocker
and k9s users reach for these keys to jump to the top or bottom.

``g`` is already a verb on two screens (Toolboxes: gateway on/off; Agents: show on
Grants). A table never takes a key its screen gives a verb of its own: there the verb
wins and Home/End still go to the top. The check reads the screen's bindings after the
user's keymap, so a remapped verb frees ``g`` again.
"""

from __future__ import annotations

from typing import ClassVar

from textual.binding import Binding, BindingType

from console.tui.widgets.bulk_table import BulkTable


class NavTable(BulkTable):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("home", "first_row", "Top", id="table.top", show=False, tooltip="First row"),
        Binding("end", "last_row", "Bottom", id="table.bottom", show=False, tooltip="Last row"),
        Binding("g", "first_row_vi", "Top", id="table.top_vi", show=False,
                tooltip="First row (unless the screen uses g for a verb of its own)"),
        Binding("G", "last_row_vi", "Bottom", id="table.bottom_vi", show=False,
                tooltip="Last row (unless the screen uses G for a verb of its own)"),
    ]

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("first_row_vi", "last_row_vi"):
            return not self._screen_takes(action)
        return super().check_action(action, parameters)

    def _screen_takes(self, action: str) -> bool:
        """Whether the screen binds one of this action's keys to a verb of its own."""
        keys = [key for key, bindings in self._bindings.key_to_bindings.items()
                if any(b.action == action for b in bindings)]
        screen_keys = self.screen._bindings.key_to_bindings
        return any(key in screen_keys for key in keys)

    def action_first_row(self) -> None:
        if self.row_count:
            self.move_cursor(row=0, animate=False)

    def action_last_row(self) -> None:
        self.settle()  # the last of them all, not of the rows a fill has added so far
        if self.row_count:
            self.move_cursor(row=self.row_count - 1, animate=False)

    def action_first_row_vi(self) -> None:
        self.action_first_row()

    def action_last_row_vi(self) -> None:
        self.action_last_row()
