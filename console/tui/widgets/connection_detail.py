"""The pane under the Connections table: everything about the selected connection but
its tokens — scopes, expiry, last refresh, the last error, the app and the servers."""

from __future__ import annotations

from datetime import datetime

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.app import App, ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Static

from console.tui.widgets.connection_format import (
    HEALTH_MEANS,
    HEALTH_STYLE,
    ConnectionView,
    absolute,
    provider_title,
    span,
    styled,
)
from console.tui.widgets.trust_badge import colour, muted


def _when(app: App, when: datetime | None, now: datetime, future: str, past: str) -> Text:
    if when is None:
        return muted(app, "-")
    seconds = int((when - now).total_seconds())
    relative = future.format(span(seconds)) if seconds > 0 else past.format(span(seconds))
    return Text(f"{absolute(when)} UTC").append(f"  ({relative})", style=colour(app, "text-muted"))


def detail_renderable(app: App, view: ConnectionView, now: datetime) -> Group:
    connection = view.connection
    health = HEALTH_STYLE.get(view.health, "$text-muted")
    head = Text.assemble((f"{provider_title(connection.provider)} · ", "bold"), (connection.account, "bold"), "   ")
    head.append_text(styled(app, f"● {view.health}", health))
    means = Text(HEALTH_MEANS.get(view.health, ""), style=colour(app, "text-muted"))
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column()
    grid.add_row("id", Text(connection.id))
    grid.add_row("scopes", Text(", ".join(connection.scopes)) if connection.scopes else muted(app, "none recorded"))
    if connection.expires is None:
        grid.add_row("expires", muted(app, "never (the provider gave no expiry)"))
    else:
        grid.add_row("expires", _when(app, connection.expires, now, "in {}", "expired {} ago"))
    grid.add_row("refreshed", _when(app, connection.refreshed, now, "in {}", "{} ago"))
    grid.add_row("added", _when(app, connection.created, now, "in {}", "{} ago"))
    if view.app is None:
        grid.add_row("app", Text("its app registration is gone: register one (a), then sign in again (R)",
                                 style=colour(app, "warning")))
    else:
        secret = "with a client secret (in the vault)" if view.app.client_secret else "public (PKCE, no secret)"
        extra = "".join(f" · {k}={v}" for k, v in sorted(view.app.hosts.items()))
        extra += f" · tenant {view.app.tenant}" if view.app.tenant else ""
        extra += f" · issuer {view.app.issuer}" if view.app.issuer else ""
        grid.add_row("app", Text(f"client id {view.app.client_id} · {secret}{extra}"))
    grid.add_row("servers", Text("\n".join(view.servers)) if view.servers else
                 muted(app, "none: bind it when adding a server from the catalog (Servers, a)"))
    if connection.last_error:
        grid.add_row("last error", Text(connection.last_error, style=colour(app, "error")))
    return Group(head, means, Text(""), grid)


class ConnectionDetail(VerticalScroll):
    """Shows one ``ConnectionView`` (or a hint when there is none)."""

    DEFAULT_CSS = """
    ConnectionDetail { height: 1fr; padding: 0 1; }
    ConnectionDetail > Static { width: 1fr; }
    """

    def compose(self) -> ComposeResult:
        yield Static("", id="connection-text")

    def show(self, view: ConnectionView | None, now: datetime, hint: str = "") -> None:
        text = self.query_one("#connection-text", Static)
        if view is None:
            text.update(muted(self.app, hint))
        else:
            text.update(detail_renderable(self.app, view, now))
