"""What a Pilot-driven app shows, as plain text: the whole screen or one widget's cells."""

from __future__ import annotations

import io

from rich.console import Console
from textual.app import App
from textual.widget import Widget


def screen_lines(app: App) -> list[str]:
    """The terminal's rows now, modal and the screens under it included."""
    console = Console(width=app.size.width, height=app.size.height, file=io.StringIO(), record=True,
                      force_terminal=True, color_system="truecolor", legacy_windows=False, safe_box=False)
    console.print(app.screen._compositor.render_update(full=True, screen_stack=app._background_screens))
    return console.export_text().splitlines()


def widget_text(app: App, widget: Widget) -> str:
    """The characters drawn inside ``widget``'s region (rows joined by newlines)."""
    region = widget.region
    rows = screen_lines(app)[region.y:region.bottom]
    return "\n".join(row[region.x:region.right] for row in rows)
