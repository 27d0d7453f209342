"""In the add-server form: which of the user's connections a new server acts as.

Only connections of the provider the catalog entry signs in with are offered, each with
its account and health; blank means none (the token is then given as a secret).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from rich.text import Text
from textual.widgets import Select

from console.catalog.model import OAuthNeed
from console.model import Connection
from console.services.connections import describe

NONE = "none: give the token as a secret instead"


def binding_problem(connection: Connection, need: OAuthNeed, entry_id: str, now: datetime | None = None) -> str | None:
    """Why ``connection`` cannot serve a new ``entry_id`` server, worded for the form (the
    service checks the same when it adds)."""
    missing = [s for s in need.scopes if s not in connection.scopes]
    label = f"{connection.provider}/{connection.account}"
    if missing and connection.scopes:
        return (f"{label} was not granted {', '.join(missing)}, which {entry_id} needs: connect it again with "
                f"those scopes on Connections (8), or pick another")
    if describe(connection, now)["health"] == "needs-consent":
        return f"{label} needs you to sign in again first (Connections, R)"
    return None


class ConnectionPicker(Select[str]):
    DEFAULT_CSS = """
    ConnectionPicker { width: 1fr; }
    ConnectionPicker.-textual-compact > SelectCurrent { background: $panel-lighten-1; padding: 0 1; }
    ConnectionPicker.-textual-compact:focus > SelectCurrent { background: $primary 20%; }
    """

    def __init__(self, connections: Sequence[Connection], need: OAuthNeed, *, id: str | None = None,  # noqa: A002
                 now: datetime | None = None) -> None:
        now = now or datetime.now(UTC)
        self.offered = sorted((c for c in connections if c.provider == need.provider), key=lambda c: c.account)
        health = {c.id: str(describe(c, now)["health"]) for c in self.offered}
        options = [(Text(c.account).append(f"  {health[c.id]}", style="dim"), c.id) for c in self.offered]
        # An expired access token is refreshed when the server starts: only a refused
        # refresh (needs-consent) or a failing provider makes a connection a poor default.
        usable = [c.id for c in self.offered if health[c.id] in ("ok", "expired")] or [c.id for c in self.offered]
        super().__init__(options, prompt=NONE, allow_blank=True, value=usable[0] if usable else Select.NULL, id=id,
                         compact=True)

    @property
    def chosen(self) -> Connection | None:
        value = self.value
        return next((c for c in self.offered if c.id == value), None)
