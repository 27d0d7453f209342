"""A droplet no toolbox owns, as a row of the Toolboxes table and as its detail: billed,
so it is drawn in the error colour until it is destroyed or adopted."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.text import Text

from console.tui.widgets.fit_table import Cut
from console.tui.widgets.toolbox_link import status_text
from console.tui.widgets.trust_badge import colour, muted

if TYPE_CHECKING:
    from console.model import Orphan
    from console.tui.app import ConsoleApp
    from console.tui.widgets.toolbox_detail import Part
    from console.tui.widgets.toolbox_row import Row

KEY_PREFIX = "orphan:"
"""Row keys of orphans: no toolbox name can start so (names are a-z, 0-9, '-')."""
CAUSES = {
    "failed-add": "made for toolbox {toolbox}; the add failed and could not delete it",
    "found": "tagged tbx, owned by no toolbox (an add that never finished?)",
}
"""Short enough for one line of the detail at 80 columns."""


def row_key(orphan: Orphan) -> str:
    return f"{KEY_PREFIX}{orphan.droplet_id}"


def price(orphan: Orphan) -> str:
    return f"${orphan.price_monthly:.2f}/mo" if orphan.price_monthly is not None else "price ?"


def orphan_row(app: ConsoleApp, orphan: Orphan, busy: str | None = None) -> Row:
    dash = muted(app, "-")
    return (Cut(orphan.name), Text("orphan", style=colour(app, "error")),
            Cut(f"{orphan.region or '?'} · {price(orphan)}"), status_text(app, busy or "billed"), dash, dash, dash, dash)


def orphan_lines(orphan: Orphan, busy: str = "") -> list[tuple[str, list[Part]]]:
    """(label, pieces) of the detail; pure."""
    cost = f" · ${orphan.price_monthly:.2f}/month" if orphan.price_monthly is not None else ""
    rows: list[tuple[str, list[Part]]] = [
        ("droplet", [f"{orphan.droplet_id} · {orphan.region or '?'} · {orphan.size or '?'}{cost}"]),
        ("billed", [("no toolbox owns it: billed until destroyed or adopted", "$error")]),
        ("why", [CAUSES.get(orphan.cause.value, orphan.cause.value).format(toolbox=orphan.toolbox or "?")]),
    ]
    if orphan.error:
        rows.append(("last try", [(orphan.error, "$foreground-muted")]))
    if busy:
        rows.append(("now", [(busy, "$warning")]))
    return rows
