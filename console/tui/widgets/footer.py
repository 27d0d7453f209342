"""The bottom line of every screen: the screen's verbs, then ``? Help`` and ``q Quit``.

Textual's Footer lays every key out in a row and lets the ones that do not fit fall
off the right edge, Help and Quit first (they come last). Here Help and Quit always
stay: the verbs that do not fit are left out whole, in the order the screen lists
them (the first ones are the ones used most), and Help lists them all. Narrow
terminals get the compact style first, which saves a cell per key.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from textual.app import ComposeResult
from textual.binding import ActiveBinding, Binding
from textual.events import Resize
from textual.widgets import Footer
from textual.widgets._footer import FooterKey

if TYPE_CHECKING:
    from textual.screen import Screen

ALWAYS = ("app.help", "app.quit")
"""Binding ids shown whatever the width."""


def key_width(key: str, description: str, compact: bool) -> int:
    """Cells a FooterKey takes: `` k Desc `` (or ``k Desc`` and a margin, compact)."""
    return len(key) + len(description) + (2 if compact else 3)


def palette_width(key: str, description: str, compact: bool) -> int:
    """The palette key, docked right behind a one-cell border."""
    return 1 + key_width(key, description, compact) + (0 if compact else 1)


def fit_keys(widths: Sequence[int], always: Sequence[bool], room: int) -> list[bool]:
    """Which keys to show: every ``always`` one, then the others in order while they
    fit in ``room`` (the first that does not fit ends the row: the order stays the
    screen's, nothing jumps in from further along)."""
    budget = room - sum(w for w, keep in zip(widths, always, strict=True) if keep)
    shown = []
    full = False
    for width, keep in zip(widths, always, strict=True):
        if keep:
            shown.append(True)
            continue
        full = full or width > budget
        if not full:
            budget -= width
        shown.append(not full)
    return shown


class ConsoleFooter(Footer):
    def __init__(self) -> None:
        super().__init__()
        self._width = 0
        self._composed: tuple[object, ...] | None = None
        """What the keys last composed show: a change of bindings that shows the same keys
        (every screen switch brings two) is not composed again."""

    def on_resize(self, event: Resize) -> None:
        if event.size.width != self._width:
            self._width = event.size.width
            if self._bindings_ready:
                self.call_after_refresh(self._recompose_if_changed)

    def bindings_changed(self, screen: Screen) -> None:
        self._bindings_ready = True
        if screen.app.app_focus and self.is_attached and screen is self.screen:
            self.call_after_refresh(self._recompose_if_changed)

    async def _recompose_if_changed(self) -> None:
        if self.is_attached and self._layout()[0] != self._composed:
            await self.recompose()

    def _layout(self) -> tuple[tuple[object, ...], bool, list[tuple[Binding, bool, str, str]], ActiveBinding | None]:
        """(what it shows, compact, the keys that fit, the palette's binding)."""
        app = self.app
        active = self.screen.active_bindings
        keys, seen_actions = [], set()
        for _node, binding, enabled, tooltip in active.values():
            if binding.show and binding.action not in seen_actions:
                seen_actions.add(binding.action)
                keys.append((binding, enabled, tooltip, app.get_key_display(binding)))
        palette = active.get(app.COMMAND_PALETTE_BINDING) if self.show_command_palette else None
        width = self._width or self.size.width or app.size.width
        always = [binding.id in ALWAYS for binding, *_ in keys]
        for compact in (False, True):
            widths = [key_width(display, binding.description, compact) for binding, _e, _t, display in keys]
            room = width - (palette_width(app.get_key_display(palette.binding), palette.binding.description,
                                          compact) if palette else 0)
            shown = fit_keys(widths, always, room)
            if all(shown):
                break
        fitting = [key for key, show in zip(keys, shown, strict=True) if show]
        seen = (compact, tuple((b.key, b.description, b.action, e, t, d) for b, e, t, d in fitting),
                None if palette is None else (palette.binding.key, palette.binding.description, palette.enabled))
        return seen, compact, fitting, palette

    def compose(self) -> ComposeResult:
        if not self._bindings_ready:
            return
        app = self.app
        self._composed, compact, fitting, palette = self._layout()
        self.compact = compact
        for binding, enabled, tooltip, display in fitting:
            key = FooterKey(binding.key, display, binding.description, binding.action,
                            disabled=not enabled, tooltip=tooltip)
            # A FooterKey starts compact, then the binding sets it back: two restyles of every
            # key on each recompose. It starts as the footer is.
            key.set_reactive(FooterKey.compact, compact)
            key.set_class(compact, "-compact", update=False)
            yield key.data_bind(compact=Footer.compact)
        if palette is not None and app.ENABLE_COMMAND_PALETTE:
            yield FooterKey(palette.binding.key, app.get_key_display(palette.binding), palette.binding.description,
                            palette.binding.action, classes="-command-palette", disabled=not palette.enabled,
                            tooltip=palette.binding.tooltip or palette.binding.description)
