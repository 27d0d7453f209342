"""The console's screens, one module each, switched with the digit keys."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass

from textual.screen import Screen


@dataclass(frozen=True)
class ScreenSpec:
    mode: str
    key: str
    title: str
    target: str
    """``module:Class``, imported when the screen is first shown (start-up stays quick)."""

    def factory(self) -> Callable[[], Screen]:
        def make() -> Screen:
            module, _sep, name = self.target.partition(":")
            return getattr(importlib.import_module(module), name)()

        return make


SCREENS: tuple[ScreenSpec, ...] = (
    ScreenSpec("toolboxes", "1", "Toolboxes", "console.tui.screens.toolboxes:ToolboxesScreen"),
    ScreenSpec("servers", "2", "Servers", "console.tui.screens.servers:ServersScreen"),
    ScreenSpec("tools", "3", "Tools", "console.tui.screens.tools:ToolsScreen"),
    ScreenSpec("grants", "4", "Grants", "console.tui.screens.grants:GrantsScreen"),
    ScreenSpec("agents", "5", "Agents", "console.tui.screens.agents:AgentsScreen"),
    ScreenSpec("audit", "6", "Audit", "console.tui.screens.audit:AuditScreen"),
    ScreenSpec("try", "7", "Try", "console.tui.screens.try_tool:TryScreen"),
    ScreenSpec("connections", "8", "Connections", "console.tui.screens.connections:ConnectionsScreen"),
)
APPROVALS = ScreenSpec("approvals", "0", "Approvals", "console.tui.screens.approvals:ApprovalsScreen")
"""Calls waiting for the owner: no tab of its own (the header counts them when there are any)."""
