"""How the Connections screen words a connection: health colours, expiry (relative and
absolute, from a clock it is given), the servers that use it. Pure: no widgets, no I/O
beyond reading the in-memory vault."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from rich.text import Text
from textual.app import App

from console.model import Connection, OAuthApp
from console.oauth.providers import BUILTIN
from console.tui.widgets.trust_badge import colour
from console.workspace import Workspace

if TYPE_CHECKING:
    from console.catalog.model import CatalogEntry

GOOGLE_SCOPES = "https://www.googleapis.com/auth/"
ACCOUNT_WIDTH, SCOPES_WIDTH, SERVERS_WIDTH = 24, 22, 20
"""Table cells longer than this end in an ellipsis (at 120 columns everything fits)."""
HEALTH_STYLE = {
    "ok": "$success",
    "expired": "$warning",
    "refresh-failed": "$warning bold",
    "needs-consent": "$error bold",
}
HEALTH_MEANS = {
    "ok": "the token works",
    "expired": "the access token has expired; it is refreshed when a server needs it (r refreshes now)",
    "refresh-failed": "the last refresh did not reach the provider; the token may still work a while (r retries)",
    "needs-consent": "the provider refused the refresh token: sign in again (R)",
}


@dataclass(frozen=True)
class ConnectionView:
    """One connection as a listing shows it; never a token."""

    connection: Connection
    health: str
    expires_in: int | None
    servers: tuple[str, ...]
    """``toolbox/server`` of every server bound to it."""
    app: OAuthApp | None

    @property
    def id(self) -> str:
        return self.connection.id

    @property
    def label(self) -> str:
        return f"{self.connection.provider}/{self.connection.account}"


def views(ws: Workspace, now: datetime) -> list[ConnectionView]:
    """Every connection, sorted by provider then account."""
    # Imported here: the OAuth client stack is heavy, and the Servers screen imports this
    # module (for ``connection_label``) long before anyone looks at a connection.
    from console.services.connections import bound_servers, describe

    boxes = {b.id: b.name for b in ws.repos.toolboxes}
    found = []
    for connection in ws.repos.connections:
        described = describe(connection, now)
        servers = tuple(sorted(f"{boxes.get(s.toolbox, '?')}/{s.name}" for s in bound_servers(ws, connection.id)))
        left = described["expires_in_seconds"]
        found.append(ConnectionView(connection, str(described["health"]), left if isinstance(left, int) else None,
                                    servers, ws.repos.oauth_apps.get(connection.app or "")))
    return sorted(found, key=lambda v: (provider_title(v.connection.provider), v.connection.account.lower()))


def provider_title(provider: str) -> str:
    spec = BUILTIN.get(provider)
    return spec.title if spec else provider


def styled(app: App, text: str, style: str) -> Text:
    """``style`` as theme variables ("$warning bold") made into a Rich style."""
    words = [colour(app, word) if word.startswith("$") else word for word in style.split()]
    return Text(text, style=" ".join(words))


def health_text(app: App, health: str) -> Text:
    return styled(app, health, HEALTH_STYLE.get(health, "$text-muted"))


def span(seconds: int) -> str:
    """``42m``, ``3h05m``, ``9h``, ``2d4h``: how long, coarse enough to read at a glance."""
    seconds = abs(seconds)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m"
    if seconds < 86400:
        hours, minutes = seconds // 3600, seconds % 3600 // 60
        return f"{hours}h{minutes:02d}m" if minutes else f"{hours}h"
    days, hours = seconds // 86400, seconds % 86400 // 3600
    return f"{days}d{hours}h" if hours else f"{days}d"


def absolute(when: datetime | None) -> str:
    return "-" if when is None else f"{when.astimezone(UTC):%Y-%m-%d %H:%M}"


def expiry_text(app: App, view: ConnectionView) -> Text:
    """``in 42m · 11-24 10:12``; ``5m ago · 11-24 09:25`` (in the warning colour); ``never``."""
    left, when = view.expires_in, view.connection.expires
    if left is None or when is None:
        return styled(app, "never", "$text-muted")
    head = styled(app, f"{span(left)} ago", "$warning") if left <= 0 else Text(f"in {span(left)}")
    return head.append_text(styled(app, f" · {when.astimezone(UTC):%m-%d %H:%M}", "$text-muted"))


def short_scope(scope: str) -> str:
    """Google's scopes are URLs; their last part says it all in a table."""
    return scope.removeprefix(GOOGLE_SCOPES)


def _capped(text: str, width: int) -> Text:
    shown = Text(text)
    shown.truncate(width, overflow="ellipsis")
    return shown


def row(app: App, view: ConnectionView) -> tuple[Text, ...]:
    """The table cells: provider, account, scopes, expires, health, servers. Rich ``Text``,
    never markup: account names and scopes come from the provider. Long ones are cut
    short here; the detail pane has them whole."""
    connection = view.connection
    scopes = " ".join(short_scope(s) for s in connection.scopes) or "-"
    if view.servers:
        more = f" +{len(view.servers) - 1}" if len(view.servers) > 1 else ""
        servers = _capped(view.servers[0], SERVERS_WIDTH - len(more)).append(more)
    else:
        servers = styled(app, "-", "$text-muted")
    return (Text(connection.provider), _capped(connection.account, ACCOUNT_WIDTH), _capped(scopes, SCOPES_WIDTH),
            expiry_text(app, view), health_text(app, view.health), servers)


def connection_label(ws: Workspace | None, connection_id: str | None) -> str:
    """What a server's configuration says of the connection it is bound to."""
    if connection_id is None:
        return "no connection (the token is a secret)"
    connection = ws.repos.connections.get(connection_id) if ws is not None else None
    if connection is None:
        return f"connection {connection_id} (gone: reconnect the account on Connections and re-add the server)"
    return f"connection {connection.provider}/{connection.account}"


def suggested_scopes(provider: str, entries: Iterable[CatalogEntry]) -> list[str]:
    """The scopes a new connection asks for: what the catalog's servers for this provider
    need (or the provider's defaults), plus what names the account."""
    wanted = list(dict.fromkeys(s for e in entries if e.oauth and e.oauth.provider == provider
                                for s in e.oauth.scopes))
    spec = BUILTIN.get(provider)
    if spec is not None:
        return spec.scopes_for(wanted or None)
    return list(dict.fromkeys([*wanted, "openid", "email"]))  # what every OpenID Connect sign-in adds
