"""The ``:`` command palette: "area: verb" commands from every screen, and themes."""

from __future__ import annotations

import importlib
from functools import partial
from typing import TYPE_CHECKING

from textual.command import DiscoveryHit, Hit, Hits, Provider

from console.tui.screens import APPROVALS, SCREENS

if TYPE_CHECKING:
    from console.tui.app import ConsoleApp


class ConsoleCommands(Provider):
    """Screens declare ``PALETTE = [("server: Restart", "restart"), ...]``: a command
    switches to its screen and runs the action there."""

    def _commands(self) -> list[tuple[str, str, object]]:
        app: ConsoleApp = self.app  # type: ignore[assignment]
        commands: list[tuple[str, str, object]] = []
        for spec in (*SCREENS, APPROVALS):
            commands.append((f"go: {spec.title}", f"Switch to {spec.title} ({spec.key})",
                             partial(app.goto, spec.mode)))
            module, _sep, name = spec.target.partition(":")
            try:
                screen_class = getattr(importlib.import_module(module), name)
            except (ImportError, AttributeError):
                continue
            for title, action in getattr(screen_class, "PALETTE", []):
                commands.append((title, f"on {spec.title}", partial(app.run_on_screen, spec.mode, action)))
        for theme in sorted(app.available_themes):
            if theme.startswith("tbx-") or theme in app.user_themes:
                commands.append((f"theme: {theme}", "Switch to this theme (remembered)", partial(app.use_theme, theme)))
        commands.append(("gateway: Start", "Start the local toolbox's gateway", app.action_gateway_start))
        commands.append(("gateway: Stop", "Stop the local toolbox's gateway", app.action_gateway_stop))
        return commands

    async def discover(self) -> Hits:
        for title, help_text, callback in self._commands():
            yield DiscoveryHit(title, callback, help=help_text)  # type: ignore[arg-type]

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for title, help_text, callback in self._commands():
            score = matcher.match(title)
            if score > 0:
                yield Hit(score, matcher.highlight(title), callback, help=help_text)  # type: ignore[arg-type]
