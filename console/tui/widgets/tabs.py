"""``[`` and ``]`` through the tabs of a widget's TabbedContent."""

from __future__ import annotations

from typing import ClassVar

from textual.widgets import TabbedContent


class SteppedTabs:
    """Mixed into a widget that holds one TabbedContent whose panes are ``TAB_IDS``."""

    TAB_IDS: ClassVar[tuple[str, ...]] = ()

    @property
    def active(self) -> str:
        return self.query_one(TabbedContent).active  # type: ignore[attr-defined]

    @active.setter
    def active(self, tab: str) -> None:
        self.query_one(TabbedContent).active = tab  # type: ignore[attr-defined]

    def step(self, by: int) -> None:
        """Move to the next (``1``) or previous (``-1``) tab, wrapping around."""
        tabs = self.TAB_IDS
        index = tabs.index(self.active) if self.active in tabs else 0
        self.active = tabs[(index + by) % len(tabs)]
