"""The cells of one row of the Toolboxes table (no widget: the screen owns the table).

The GATEWAY column stays the seventh (index 6): scripts and tests read it there.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from rich.text import Text

from console.tui.widgets.fit_table import Choice, Col, Cut
from console.tui.widgets.toolbox_link import (
    LINK_WIDTH,
    engine_live,
    link_text,
    status_text,
)
from console.tui.widgets.trust_badge import colour, muted

if TYPE_CHECKING:
    from console.model import Toolbox
    from console.remote.push_state import PolicyStatus
    from console.runtime.supervisor import Health
    from console.tui.app import ConsoleApp

COLUMNS: tuple[Col, ...] = (
    Col("name", "NAME", least=8, yields=1), Col("kind", "KIND"), Col("where", "WHERE", least=8, yields=3),
    Col("link", "LINK", LINK_WIDTH), Col("servers", "SERVERS", least=3, short="SRV", yields=5),
    Col("health", "HEALTH"), Col("gateway", "GATEWAY", least=14, yields=4), Col("policy", "POLICY"),
)
"""Most columns as wide as their widest cell. The host key's fingerprint is in the detail
below the table: the row keeps room for the policy state. On a narrow screen the SSH
target is cut in the middle and the gateway's address loses its scheme and path (the detail
has them whole)."""
UNHEALTHY = ("down", "unresponsive")

Row = tuple[str | Text | Cut | Choice, ...]


def where(box: Toolbox) -> str:
    if box.is_remote:
        return box.ssh_target or "-"
    return box.engine_endpoint or "this machine"


def health_summary(app: ConsoleApp, health: Iterable[Health | None]) -> Text:
    """``3 ok · 1 down``: the servers the supervisor has seen, by how they are."""
    seen = [h for h in health if h is not None]
    healthy = sum(1 for h in seen if h.health == "healthy")
    unhealthy = sum(1 for h in seen if h.health in UNHEALTHY)
    parts = []
    if healthy:
        parts.append(Text(f"{healthy} ok", style=colour(app, "success")))
    if unhealthy:
        parts.append(Text(f"{unhealthy} down", style=colour(app, "error")))
    return Text(" · ").join(parts) if parts else muted(app, "-")


def policy_cell(app: ConsoleApp, policy: PolicyStatus | None) -> Text:
    """Whether the toolbox's gateway holds the policy: red while a change that takes
    access away has not landed there."""
    if policy is None or not policy.remote:
        return muted(app, "-")
    if not policy.pending:
        return Text("current", style=colour(app, "success"))
    if policy.removes:
        return Text("NOT IN FORCE", style=f"bold {colour(app, 'error')}")
    return Text("pending", style=colour(app, "warning"))


def toolbox_row(app: ConsoleApp, box: Toolbox, servers: int, health: Iterable[Health | None], *, gateway: str,
                busy: str | None = None, policy: PolicyStatus | None = None) -> Row:
    live = app.live
    link = status_text(app, busy) if busy else link_text(app, box, live=live)
    summary = health_summary(app, health) if engine_live(app, box) else muted(app, "-")
    # A remote gateway is always https: the scheme is left to the detail, the column stays narrow.
    shown = gateway.removeprefix("https://") if box.is_remote else gateway
    address = Choice((shown, shown.removeprefix("http://").removesuffix("/mcp")))  # host:port at 80 columns
    return (Cut(box.name), box.kind.value, Cut(where(box)), link, str(servers), summary, address,
            policy_cell(app, policy))


def pending_row(app: ConsoleApp, name: str, kind: str, target: str, word: str) -> Row:
    """A toolbox being added: no record yet, only what the user asked for."""
    dash = muted(app, "-")
    return (Cut(name), kind, Cut(target), status_text(app, word), dash, dash, dash, dash)
