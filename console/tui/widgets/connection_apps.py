"""The app registrations beside the Connections table: one line per provider the user
has registered an OAuth app at (the client secret is only ever said to exist)."""

from __future__ import annotations

from collections.abc import Sequence

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Static

from console.model import OAuthApp
from console.tui.widgets.trust_badge import colour, muted

NO_APPS = ("no app registrations yet. Sign-in needs your own OAuth app at the provider: create one there "
           "(redirect URI http://127.0.0.1, any port), then press a to enter its client id and secret.")


class ConnectionApps(VerticalScroll):
    DEFAULT_CSS = """
    ConnectionApps { height: 1fr; padding: 0 1; }
    ConnectionApps > Static { width: 1fr; }
    """

    def compose(self) -> ComposeResult:
        yield Static("", id="apps-text")

    def show(self, apps: Sequence[OAuthApp], counts: dict[str, int]) -> None:
        """``counts``: provider -> how many connections use it."""
        text = self.query_one("#apps-text", Static)
        if not apps:
            text.update(muted(self.app, NO_APPS))
            return
        grid = Table.grid(padding=(0, 1))
        grid.add_column(style="bold", no_wrap=True)
        grid.add_column()
        muted_style = colour(self.app, "text-muted")
        for app in sorted(apps, key=lambda a: a.provider):
            line = Text(f"client id {app.client_id}\n")
            if app.private_key:
                about = ["key set (private_key_jwt)"]
            else:
                about = ["secret set" if app.client_secret else "public (no secret)"]
            if app.auth_method and not app.private_key:
                about.append(app.auth_method)
            if app.hosts:
                about.append(f"hosts {', '.join(sorted(app.hosts))}")
            if app.tenant:
                about.append(f"tenant {app.tenant}")
            if app.issuer:
                about.append(f"issuer {app.issuer}")
            used = counts.get(app.provider, 0)
            about.append(f"{used} connection{'' if used == 1 else 's'}")
            line.append(" · ".join(about), style=muted_style)
            grid.add_row(Text(app.provider), line)
        text.update(grid)
