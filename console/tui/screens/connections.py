"""8 Connections: the user's OAuth accounts — health, expiry, the servers using each —
and the app registrations they sign in through.

Every sign-in, refresh, revocation and registration talks to a provider, so each runs in
a thread worker; the table re-reads the vault afterwards. Expiry is shown relative to
``clock`` (a snapshot pins it) and absolute in UTC.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, ClassVar

from textual import work
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.widgets import DataTable, Input
from textual.worker import Worker

from console.errors import TbxError
from console.model import DesiredState
from console.oauth.client_auth import read_private_key
from console.oauth.flows import Opener, open_system_browser
from console.services import connections as service
from console.tui.modals.confirm import ConfirmModal
from console.tui.modals.connect import ConnectModal, Signed
from console.tui.modals.oauth_app import AppRequest, OAuthAppModal
from console.tui.screens.base import ConsoleScreen
from console.tui.widgets.activity_log import ActivityLog
from console.tui.widgets.connection_apps import ConnectionApps
from console.tui.widgets.connection_detail import ConnectionDetail
from console.tui.widgets.connection_format import ConnectionView, provider_title, row, span, suggested_scopes, views
from console.tui.widgets.filter import FilterInput
from console.tui.widgets.fit_table import Col, Cut, FitTable
from console.tui.widgets.footer import ConsoleFooter
from console.tui.widgets.header import ConsoleHeader

if TYPE_CHECKING:
    from console.catalog.model import CatalogEntry

COLUMNS = ("PROVIDER", "ACCOUNT", "SCOPES", "EXPIRES", "HEALTH", "SERVERS")
FIT = (Col("PROVIDER", "PROVIDER"), Col("ACCOUNT", "ACCOUNT", least=12, yields=1),
       Col("SCOPES", "SCOPES", least=8, yields=4), Col("EXPIRES", "EXPIRES", least=10, yields=2),
       Col("HEALTH", "HEALTH"), Col("SERVERS", "SERVERS", least=8, yields=3))
"""On a narrow screen scopes and servers are cut first (the detail has them whole)."""


def cells(app: App, view: ConnectionView) -> tuple[Cut, ...]:
    """A row's cells, each cut with an ellipsis when its column is narrower."""
    return tuple(Cut(cell, where="end") for cell in row(app, view))
TICK_SECONDS = 30.0
"""How often "expires in" is recomputed while the screen is shown (live only)."""


def utc_now() -> datetime:
    return datetime.now(UTC)


class ConnectionsScreen(ConsoleScreen):
    RELOAD_ON_EVERY_VISIT = True  # expiry times tick only while in front
    CSS = """
    ConnectionsScreen #connections { height: auto; max-height: 45%; }
    ConnectionsScreen #lower { height: 1fr; }
    ConnectionsScreen ConnectionDetail { width: 3fr; border: round $panel-lighten-2; border-title-color: $text-muted; }
    ConnectionsScreen ConnectionApps { width: 2fr; border: round $panel-lighten-2; border-title-color: $text-muted; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("c", "connect", "Connect", id="connection.connect",
                tooltip="Sign in to a provider (browser or device code) and keep the account"),
        Binding("r", "refresh_token", "Refresh", id="connection.refresh",
                tooltip="Get a new token now; running servers using it are handed it"),
        Binding("R,shift+r", "reconnect", "Sign in again", id="connection.reconnect",
                tooltip="Sign in again as this account (consent revoked, refresh refused)"),
        Binding("d,delete", "remove", "Remove", id="connection.remove",
                tooltip="Revoke the tokens at the provider and forget the account (asks first)"),
        Binding("a", "app", "App registration", id="connection.app",
                tooltip="Register or replace your OAuth app (client id and secret) at a provider"),
    ]
    PALETTE: ClassVar[list[tuple[str, str]]] = [
        ("connection: Connect an account", "connect"), ("connection: Refresh token", "refresh_token"),
        ("connection: Sign in again", "reconnect"), ("connection: Remove", "remove"),
        ("connection: Register OAuth app", "app"),
    ]

    def __init__(self, clock: Callable[[], datetime] = utc_now, opener: Opener = open_system_browser) -> None:
        """``clock`` gives "now" for expiry texts; ``opener`` opens sign-in addresses."""
        super().__init__()
        self.clock, self.opener = clock, opener
        self.views: dict[str, ConnectionView] = {}
        self._select_after_reload: str | None = None

    def compose(self) -> ComposeResult:
        yield ConsoleHeader("connections")
        with Vertical():
            yield FilterInput("filter by provider, account, scope or server", id="filter")
            yield FitTable(FIT, id="connections", cursor_type="row", zebra_stripes=True)
            yield ActivityLog()
            with Horizontal(id="lower"):
                yield ConnectionDetail(id="detail")
                yield ConnectionApps(id="apps")
        yield ConsoleFooter()

    def on_mount(self) -> None:
        self.query_one(ConnectionApps).border_title = "app registrations (a)"
        if self.console.live:
            self.set_interval(TICK_SECONDS, self._tick)
        super().on_mount()

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        # Worker.StateChanged does not bubble: hand this screen's failures to the app, which
        # reports them (TbxError as a notification, anything else in the error modal).
        event.prevent_default()
        self.console.on_worker_state_changed(event)

    def _tick(self) -> None:
        if self.is_current:
            self.reload()

    # -- reading -------------------------------------------------------------------------------

    def reload(self) -> None:
        ws, now = self.ws, self.clock()
        wanted = self.query_one("#filter", Input).value.strip().lower()
        shown = [v for v in views(ws, now) if not wanted or wanted in self._haystack(v)]
        self.views = {v.id: v for v in shown}
        table = self.query_one(DataTable)
        with self.app.batch_update():
            for key in [r.value for r in list(table.rows) if r.value not in self.views]:
                table.remove_row(key)
            added = False
            for view in shown:
                if view.id in table.rows:
                    for column, value in zip(COLUMNS, cells(self.app, view), strict=True):
                        table.update_cell(view.id, column, value, update_width=True)
                else:
                    table.add_row(*cells(self.app, view), key=view.id)
                    added = True
            if added:  # the order of ``views``: provider, then account
                table.sort("PROVIDER", "ACCOUNT", key=lambda cells: (str(cells[0]), str(cells[1]).lower()))
        chosen, self._select_after_reload = self._select_after_reload, None
        if chosen in table.rows:
            table.move_cursor(row=table.get_row_index(chosen))
        apps = list(ws.repos.oauth_apps)
        counts: dict[str, int] = {}
        for connection in ws.repos.connections:
            counts[connection.provider] = counts.get(connection.provider, 0) + 1
        self.query_one(ConnectionApps).show(apps, counts)
        self._show_detail()

    @staticmethod
    def _haystack(view: ConnectionView) -> str:
        c = view.connection
        return " ".join([c.provider, provider_title(c.provider), c.account, *c.scopes, *view.servers,
                         view.health]).lower()

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "filter":
            self.reload()

    def on_data_table_row_highlighted(self, _event: DataTable.RowHighlighted) -> None:
        self._show_detail()

    def _selected(self) -> ConnectionView | None:
        table = self.query_one(DataTable)
        if table.row_count == 0:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        return self.views.get(key or "")

    def _show_detail(self) -> None:
        view = self._selected()
        detail = self.query_one(ConnectionDetail)
        detail.border_title = f"{view.label}" if view else "connection"
        if view is not None:
            detail.show(view, self.clock())
        elif self.query_one("#filter", Input).value:
            detail.show(None, self.clock(), "no connection matches the filter")
        elif not list(self.ws.repos.oauth_apps):
            detail.show(None, self.clock(), "no connections yet: register your OAuth app at a provider (a), "
                                            "then connect an account (c)")
        else:
            detail.show(None, self.clock(), "no connections yet: press c to sign in to an account")

    # -- progress ------------------------------------------------------------------------------

    def _activity(self, line: str) -> None:
        self.query_one(ActivityLog).say(line)

    def _select(self, connection_id: str) -> None:
        """Select a connection just made: now if its row is in, else at the re-read that
        brings it (the change reaches this screen as VaultChanged, before this or after)."""
        table = self.query_one(DataTable)
        if connection_id in table.rows:
            table.move_cursor(row=table.get_row_index(connection_id))
        else:
            self._select_after_reload = connection_id

    # -- connecting ------------------------------------------------------------------------------

    def _catalog(self) -> list[CatalogEntry]:
        from console.catalog import CatalogError, load_catalog

        try:
            return load_catalog(self.ws.paths).entries()
        except CatalogError:
            return []  # suggestions only: the providers' defaults do then

    def action_connect(self) -> None:
        apps = list(self.ws.repos.oauth_apps)
        if not apps:
            self.notify("first register your OAuth app at the provider you sign in to", severity="warning")
            self.action_app()
            return
        entries = self._catalog()
        selected = self._selected()
        modal = ConnectModal(self.ws, apps, scopes={a.provider: suggested_scopes(a.provider, entries) for a in apps},
                             provider=selected.connection.provider if selected else None, opener=self.opener)
        self.app.push_screen(modal, self._signed)

    def action_reconnect(self) -> None:
        view = self._selected()
        if view is None:
            self.notify("no connection selected", severity="warning")
            return
        modal = ConnectModal(self.ws, list(self.ws.repos.oauth_apps), scopes={}, reconnecting=view.connection,
                             opener=self.opener)
        self.app.push_screen(modal, self._signed)

    def _signed(self, signed: Signed | None) -> None:
        if signed is None:
            return
        connection = signed.connection
        label = f"{connection.provider}/{connection.account}"
        self._select(connection.id)
        if signed.is_new:
            self.notify(f"connected {label}: bind it to a server when adding one from the catalog")
            return
        self.notify(f"signed in again as {label}")
        running = [s for s in service.bound_servers(self.ws, connection.id)
                   if s.desired_state is DesiredState.RUNNING]
        if running:
            self._renew(connection.id, label)

    @work(thread=True, exit_on_error=False, group="connection-change")
    def _renew(self, connection_id: str, label: str) -> None:
        from console.services.connection_upkeep import renew_bound

        self._run_with_progress(label, lambda progress: renew_bound(self.ws, connection_id, progress))

    def _run_with_progress(self, label: str, job: Callable[[Callable[[str], None]], list[str]]) -> list[str]:
        """Worker thread: ``job(progress)`` with its lines in the activity log."""

        def progress(line: str) -> None:
            self.app.call_from_thread(self._activity, f"{label}: {line}")

        try:
            done = job(progress)
        except TbxError as exc:
            progress(f"failed: {exc}")
            raise
        for server in done:
            progress(f"server {server} has the new token")
        return done

    # -- refreshing, removing ------------------------------------------------------------------

    def action_refresh_token(self) -> None:
        view = self._selected()
        if view is None:
            self.notify("no connection selected", severity="warning")
            return
        self._activity(f"{view.label}: asking {provider_title(view.connection.provider)} for a new token")
        self._refresh(view.id, view.label)

    @work(thread=True, exit_on_error=False, group="connection-change")
    def _refresh(self, connection_id: str, label: str) -> None:
        from console.services.connection_upkeep import refresh_and_renew

        done = self._run_with_progress(label, lambda progress: refresh_and_renew(self.ws, connection_id, progress))
        connection = service.resolve(self.ws, connection_id)
        left = service.describe(connection, self.clock())["expires_in_seconds"]
        expiry = "it does not expire" if left is None else f"it expires in {span(int(str(left)))}"
        servers = f"; {len(done)} server(s) handed it" if done else ""
        self.notify(f"new token for {label}: {expiry}{servers}")

    def action_remove(self) -> None:
        view = self._selected()
        if view is None:
            self.notify("no connection selected", severity="warning")
            return
        title = provider_title(view.connection.provider)
        if view.servers:
            body = (f"Servers using it: {', '.join(view.servers)}. Remove them first (Servers, d): a connection in "
                    "use is not removed.")
        else:
            body = (f"Revokes its tokens at {title} where {title} allows it, then forgets the account. "
                    "No server uses it.")
        modal = ConfirmModal(f"Remove connection {view.label}?", body, confirm="Remove")
        self.app.push_screen(modal, lambda yes: self._remove(view.id, view.label) if yes else None)

    @work(thread=True, exit_on_error=False, group="connection-change")
    def _remove(self, connection_id: str, label: str) -> None:
        revoked = service.remove(self.ws, connection_id)
        if revoked:
            self.notify(f"revoked and removed {label}")
        else:
            self.notify(f"removed {label}; the provider did not confirm revocation: revoke the app's access in your "
                        "account settings there too", severity="warning", timeout=10)

    # -- app registrations ---------------------------------------------------------------------

    def action_app(self) -> None:
        selected = self._selected()
        apps = {a.provider: a for a in self.ws.repos.oauth_apps}
        self.app.push_screen(OAuthAppModal(apps, selected.connection.provider if selected else None), self._save_app)

    @work(thread=True, exit_on_error=False, group="connection-change")
    def _save_app(self, request: AppRequest | None) -> None:
        if request is None:
            return
        ws = self.ws
        secret = request.client_secret
        if request.keep_secret:
            old = ws.repos.oauth_apps.for_provider(request.provider)
            kept = ws.repos.secrets.get(old.client_secret) if old is not None and old.client_secret else None
            secret = kept.value if kept is not None else None
        key = None
        if request.auth_method == "private_key_jwt":
            old = ws.repos.oauth_apps.for_provider(request.provider)
            if request.private_key_file is not None:
                key = read_private_key(request.private_key_file)
            elif old is not None and old.private_key:
                kept_key = ws.repos.secrets.get(old.private_key)
                key = kept_key.value if kept_key is not None else None
        saved = service.set_app(ws, request.provider, request.client_id, secret, hosts=request.hosts,
                                tenant=request.tenant, issuer=request.issuer, auth_method=request.auth_method,
                                private_key=key)
        if key is not None:
            import json

            from console.oauth.client_auth import public_jwk

            self.app.call_from_thread(self.app.copy_to_clipboard, json.dumps(public_jwk(key)))
            self.notify(f"app registration for {saved.provider} saved; its public key (JWK) is on the clipboard: "
                        "register it with the app at the provider, then press c to connect", timeout=12)
            return
        self.notify(f"app registration for {saved.provider} saved (client id {saved.client_id}): press c to "
                    "connect an account")
