"""The top line of every screen: where you are, and whether the engine and gateway are up."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widget import Widget
from textual.widgets import Static

from console.tui.screens import SCREENS


class ConsoleHeader(Widget):
    DEFAULT_CSS = """
    ConsoleHeader { height: auto; dock: top; }
    ConsoleHeader #nav { height: 1; background: $panel; }
    ConsoleHeader .tab { width: auto; padding: 0 1; color: $text-muted; }
    ConsoleHeader .tab.current { color: $text; background: $primary 40%; text-style: bold; }
    ConsoleHeader #status { width: 1fr; content-align: right middle; padding: 0 1; color: $text-muted; }
    ConsoleHeader #banner { display: none; background: $error 30%; color: $text; padding: 0 1; }
    ConsoleHeader #banner.shown { display: block; }
    """

    def __init__(self, current: str) -> None:
        super().__init__()
        self.current = current

    def compose(self) -> ComposeResult:
        with Horizontal(id="nav"):
            for spec in SCREENS:
                yield Static(f"{spec.key} {spec.title}", classes="tab current" if spec.mode == self.current else "tab")
            yield Static("", id="status")
        yield Static("", id="banner")

    def on_mount(self) -> None:
        self.refresh_status()
        self.watch(self.app, "engine_description", self.refresh_status, init=False)
        self.watch(self.app, "gateway_description", self.refresh_status, init=False)
        self.watch(self.app, "gateway_problem", self.refresh_status, init=False)

    def refresh_status(self, *_args: object) -> None:
        app = self.app
        engine = getattr(app, "engine_description", "")
        if engine.startswith("engine: Docker"):
            engine = engine.removeprefix("engine: ")  # "Docker 20.10" says it all; "engine: none" needs the word
        gateway = getattr(app, "gateway_description", "").removeprefix("gateway: ")
        if gateway.startswith("http://"):
            gateway = "gateway " + gateway.removeprefix("http://").removesuffix("/mcp")
        elif gateway:
            gateway = f"gateway {gateway}"
        self.query_one("#status", Static).update(" · ".join(part for part in (engine, gateway) if part))
        missing = getattr(app, "engine_missing", "") or getattr(app, "gateway_problem", "")
        banner = self.query_one("#banner", Static)
        banner.update(missing)
        banner.set_class(bool(missing), "shown")
