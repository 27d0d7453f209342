"""Handing out a connection's access token, refreshed before it expires.

Many callers can need the same token at the same moment (servers re-created together,
the gateway and the console both awake). A refresh happens once: callers in this
process queue on a lock, callers in other processes on a lock file, and whoever gets
it second finds the token already replaced and takes the new one. With providers that
rotate refresh tokens a second refresh would use a dead token and look like revoked
consent, so single flight is a matter of correctness, not only of politeness.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from console.errors import NotFound, TbxError, VaultBusy
from console.filelock import held
from console.model import Connection, ConnectionStatus, OAuthApp
from console.oauth.client import Credentials, InvalidGrant, OAuthClient, OAuthFlowError
from console.services.mcp_sign_in import MCP, mcp_spec
from console.oauth.providers import BUILTIN, ProviderSpec, is_oidc, oidc_spec
from console.oauth.tokens import TOKEN_SET_PREFIX, TokenSet
from console.workspace import Workspace

REFRESH_AHEAD = 120.0
"""Seconds before expiry a token counts as expiring: refreshed, not handed out."""

_process_locks: dict[str, threading.Lock] = {}
_process_locks_guard = threading.Lock()


class ConnectionNeedsConsent(TbxError):
    pass


def _lock_for(key: str) -> threading.Lock:
    with _process_locks_guard:
        return _process_locks.setdefault(key, threading.Lock())


def provider_spec(app: OAuthApp, fetch_discovery: Callable[[str], dict] | None = None) -> ProviderSpec:
    if app.provider == MCP:
        return mcp_spec(app)
    if is_oidc(app.provider):
        if not app.issuer:
            raise NotFound(f"the app registration for {app.provider} has no issuer; run 'tbx connection app {app.provider} --issuer URL ...'")
        from console.oauth.discovery import discover

        document = (fetch_discovery or discover)(app.issuer)
        return oidc_spec(app.provider, app.provider.removeprefix("oidc:"), document, app.issuer)
    return BUILTIN[app.provider].with_hosts(app.hosts).with_tenant(app.tenant)


def client_for(ws: Workspace, app: OAuthApp) -> OAuthClient:
    secret = ws.repos.secrets.get(app.client_secret) if app.client_secret else None
    key = ws.repos.secrets.get(app.private_key) if app.private_key else None
    credentials = Credentials(app.client_id, secret.value if secret else None,
                              private_key=key.value if key else None, auth_method=app.auth_method)
    return OAuthClient(provider_spec(app), credentials, timeout=ws.settings.oauth.http_timeout)


def lock_file(ws: Workspace, connection_id: str) -> Path:
    """Where refreshes of one connection queue across processes."""
    return ws.paths.state_dir / f"oauth-{connection_id}.lock"


def token_set(ws: Workspace, connection: Connection) -> TokenSet:
    secret = ws.repos.secrets.get(connection.token_secret or "")
    if secret is None:
        raise NotFound(f"connection {connection.id} has no tokens in the vault; reconnect it")
    return TokenSet.from_secret(secret)


def token_secret_name(connection_id: str) -> str:
    return f"{TOKEN_SET_PREFIX}{connection_id}"


class TokenBroker:
    def __init__(self, ws: Workspace, ahead: float = REFRESH_AHEAD) -> None:
        self.ws = ws
        self.ahead = ahead
        self.refreshes = 0
        """Refresh requests this broker sent (benchmarks and tests read it)."""

    def _connection(self, connection_id: str) -> Connection:
        connection = self.ws.repos.connections.get(connection_id)
        if connection is None:
            raise NotFound(f"no connection {connection_id}; 'tbx connection list' shows them")
        return connection

    def access_token(self, connection_id: str) -> str:
        return self.tokens(connection_id).access_token

    def tokens(self, connection_id: str) -> TokenSet:
        """A token set good for at least ``ahead`` seconds, refreshing it if needed."""
        connection = self._connection(connection_id)
        if connection.status is ConnectionStatus.NEEDS_CONSENT:
            raise ConnectionNeedsConsent(
                f"connection {connection.provider}/{connection.account} needs you to sign in again: "
                f"'tbx connection add {connection.provider}' or reconnect it in the console"
            )
        current = token_set(self.ws, connection)
        if not current.expires_within(current.refresh_margin(self.ahead)):
            return current
        if current.refresh_token is None and not current.expires_within(0):
            return current  # nothing to refresh with: use it while it lasts, then sign in again
        return self._refresh(connection_id, seen=current)

    def refresh(self, connection_id: str, replacing: TokenSet | None = None) -> TokenSet:
        """Refresh now, whatever the expiry says (``tbx connection refresh``); with
        ``replacing``, only if that is still the token kept (a server refused it)."""
        return self._refresh(connection_id, seen=replacing)

    def needs_consent(self, connection_id: str, error: str) -> None:
        """The provider's side says the tokens are no good any more: the user signs in again."""
        self._mark(self._connection(connection_id), ConnectionStatus.NEEDS_CONSENT, error)

    def _refresh(self, connection_id: str, seen: TokenSet | None) -> TokenSet:
        path = lock_file(self.ws, connection_id)
        with _lock_for(str(path)), held(path, 60.0, lambda pid: VaultBusy(
            f"process {pid} has been refreshing connection {connection_id} for a minute; try again"
        )):
            self.ws.refresh()
            connection = self._connection(connection_id)
            current = token_set(self.ws, connection)
            if seen is not None and current.access_token != seen.access_token:
                return current  # someone refreshed while we queued
            app = self.ws.repos.oauth_apps.get(connection.app or "")
            if app is None:
                raise NotFound(
                    f"the app registration of connection {connection.provider}/{connection.account} is gone; "
                    f"run 'tbx connection app {connection.provider} ...' and reconnect"
                )
            client = client_for(self.ws, app)
            if current.refresh_token is None and not current.expires_within(0):
                raise OAuthFlowError(
                    f"{client.spec.title} gave no refresh token for {connection.provider}/{connection.account}; its "
                    "access token works until it expires, then reconnect (ask for offline access to avoid this)"
                )
            try:
                self.refreshes += 1
                fresh = client.refresh(current)
            except InvalidGrant as exc:
                self._mark(connection, ConnectionStatus.NEEDS_CONSENT, str(exc))
                raise ConnectionNeedsConsent(
                    f"{exc}; the connection {connection.provider}/{connection.account} is marked as needing sign-in"
                ) from None
            except OAuthFlowError as exc:
                self._mark(connection, ConnectionStatus.REFRESH_FAILED, str(exc))
                if seen is not None and not current.expires_within(0):
                    return current  # still valid for a while: serve it, retry later
                raise
            self._store(connection, fresh)
            return fresh

    def _mark(self, connection: Connection, status: ConnectionStatus, error: str) -> None:
        with self.ws.change() as change:
            stored = change.repos.connections.get(connection.id)
            if stored is None:
                return
            stored.status, stored.last_error = status, error
            change.repos.connections.put(stored)
            change.record(f"connection.{status.value}", f"connection:{stored.provider}/{stored.account}",
                          decision="deny" if status is ConnectionStatus.NEEDS_CONSENT else None,
                          detail={"error": error})

    def _store(self, connection: Connection, fresh: TokenSet) -> None:
        with self.ws.change() as change:
            stored = change.repos.connections.get(connection.id)
            secret = change.repos.secrets.get(connection.token_secret or "")
            if stored is None or secret is None:
                raise NotFound(f"connection {connection.id} was removed while it was being refreshed")
            secret.value = fresh.to_secret_value()
            change.repos.secrets.put(secret)
            stored.status, stored.last_error = ConnectionStatus.OK, None
            stored.expires = _as_datetime(fresh.expires_at)
            stored.refreshed = datetime.now(UTC)
            change.repos.connections.put(stored)
            change.record("connection.refresh", f"connection:{stored.provider}/{stored.account}",
                          detail={"expires": stored.expires.isoformat() if stored.expires else None})


def _as_datetime(timestamp: float | None) -> datetime | None:
    return datetime.fromtimestamp(timestamp, UTC) if timestamp is not None else None
