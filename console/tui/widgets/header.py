"""The top line of every screen: where you are, and whether the engine and gateway are up.

The line must hold at 80 columns as at 200: every tab stays readable (shorter names, then
less padding) and the gateway's state stays in view (the engine's version and the
gateway's address go first; the Toolboxes screen has both in full).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widget import Widget
from textual.widgets import Static

from console.tui.screens import SCREENS

SHORT_TITLES = {"toolboxes": "Boxes", "connections": "Conns"}
"""Tab names at narrow widths; the others are short already."""

TAB_STYLES = ("full", "short", "tight", "bare")
"""Wider to narrower: ``1 Toolboxes`` padded; ``1 Boxes`` padded; ``1 Boxes`` with one
space between tabs; digits only, but for the current tab."""

PLANS: tuple[tuple[str, int], ...] = (
    ("full", 0), ("full", 1), ("short", 1), ("tight", 1), ("tight", 2), ("bare", 2), ("bare", 3),
)
"""(tab style, status form) from roomiest to tightest: the first that fits is used."""


@dataclass(frozen=True)
class NavLayout:
    labels: tuple[str, ...]
    padded: bool
    status: str


def tab_label(mode: str, key: str, title: str, style: str, current: bool) -> str:
    if style == "full":
        return f"{key} {title}"
    if style == "bare" and not current:
        return key
    return f"{key} {SHORT_TITLES.get(mode, title)}"


def status_forms(engine: str, gateway: str) -> tuple[str, str, str, str]:
    """The status text from the fullest to the briefest: engine and gateway, the gateway
    with its address, the gateway on or off, nothing."""
    if engine.startswith("engine: Docker"):
        engine = engine.removeprefix("engine: ")  # "Docker 20.10" says it all; "engine: none" needs the word
    gateway = gateway.removeprefix("gateway: ")
    if gateway.startswith("http://"):
        gateway, brief = "gateway " + gateway.removeprefix("http://").removesuffix("/mcp"), "gateway on"
    elif gateway:
        gateway, brief = f"gateway {gateway}", "gateway off" if gateway == "stopped" else "gateway …"
    else:
        brief = ""  # not known yet (or not followed: a console without live data)
    full = " · ".join(part for part in (engine, gateway) if part)
    return full, gateway, brief, ""


def nav_layout(width: int, current: str, status: Sequence[str]) -> NavLayout:
    """The tabs and status that fit in ``width`` cells, as full as they can be."""
    for style, form in PLANS:
        labels = tuple(tab_label(s.mode, s.key, s.title, style, s.mode == current) for s in SCREENS)
        padded = style in ("full", "short")
        tabs = sum(len(label) + (2 if padded else 1) for label in labels) + (0 if padded else 1)
        text = status[form]
        if tabs + (len(text) + 2 if text else 0) <= width:
            return NavLayout(labels, padded, text)
    return NavLayout(labels, padded, "")


class ConsoleHeader(Widget):
    DEFAULT_CSS = """
    ConsoleHeader { height: auto; dock: top; }
    ConsoleHeader #nav { height: 1; background: $panel; }
    ConsoleHeader .tab { width: auto; padding: 0 1; color: $text-muted; }
    ConsoleHeader #nav.tight { padding-left: 1; }
    ConsoleHeader #nav.tight .tab { padding: 0; margin-right: 1; }
    ConsoleHeader .tab.current { color: $text; background: $primary 40%; text-style: bold; }
    ConsoleHeader #approvals { display: none; width: auto; padding: 0 1; background: $warning 40%; color: $text; }
    ConsoleHeader #approvals.shown { display: block; }
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
                yield Static(f"{spec.key} {spec.title}", id=f"tab-{spec.mode}",
                             classes="tab current" if spec.mode == self.current else "tab")
            yield Static("", id="approvals")
            yield Static("", id="status")
        yield Static("", id="banner")

    def on_mount(self) -> None:
        self.refresh_status()
        self.watch(self.app, "engine_description", self.refresh_status, init=False)
        self.watch(self.app, "gateway_description", self.refresh_status, init=False)
        self.watch(self.app, "gateway_problem", self.refresh_status, init=False)
        if hasattr(self.app, "approvals_waiting"):  # the console's; a test's own app may have none
            self.watch(self.app, "approvals_waiting", self.refresh_approvals)

    def on_resize(self) -> None:
        self.refresh_status()

    def refresh_approvals(self, waiting: int = 0) -> None:
        """How many calls wait for the owner; nothing while none does."""
        counter = self.query_one("#approvals", Static)
        counter.update(f"0 {waiting} waiting" if waiting else "")
        counter.set_class(bool(waiting), "shown")
        self.refresh_status()  # the tabs and status make room for it

    def refresh_status(self, *_args: object) -> None:
        app = self.app
        forms = status_forms(getattr(app, "engine_description", ""), getattr(app, "gateway_description", ""))
        waiting = getattr(app, "approvals_waiting", 0)
        room = (self.size.width or app.size.width) - (len(f"0 {waiting} waiting") + 2 if waiting else 0)
        layout = nav_layout(room, self.current, forms)
        for spec, label in zip(SCREENS, layout.labels, strict=True):
            self.query_one(f"#tab-{spec.mode}", Static).update(label)
        self.query_one("#nav").set_class(not layout.padded, "tight")
        self.query_one("#status", Static).update(layout.status)
        missing = getattr(app, "engine_missing", "") or getattr(app, "gateway_problem", "")
        banner = self.query_one("#banner", Static)
        banner.update(missing)
        banner.set_class(bool(missing), "shown")
