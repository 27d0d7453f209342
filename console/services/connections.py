"""Connections: the user's OAuth accounts, their app registrations, and the servers
bound to them.

A sign-in runs entirely before anything is written: the vault only ever holds a
connection whose tokens work and whose account is known. Removing one revokes at the
provider where it can and forgets locally either way.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from console.errors import AlreadyExists, NotFound, TbxError, UsageError
from console.model import Connection, ConnectionStatus, OAuthApp, Secret, ServerInstance
from console.oauth.client import DeviceGrant, OAuthFlowError
from console.oauth.client_auth import choose_method, load_private_key
from console.oauth.flows import Opener, browser_flow, device_flow, open_system_browser
from console.services.mcp_sign_in import MCP, forget_app
from console.oauth.providers import BUILTIN, check_provider_id, is_oidc, require_secure
from console.oauth.tokens import TokenSet
from console.services.connection_tokens import (
    TokenBroker,
    client_for,
    lock_file,
    provider_spec,
    token_secret_name,
    token_set,
)
from console.workspace import Workspace

if TYPE_CHECKING:
    from console.catalog.model import CatalogEntry

Progress = Callable[[str], None]


def set_app(
    ws: Workspace,
    provider: str,
    client_id: str,
    client_secret: str | None = None,
    *,
    hosts: dict[str, str] | None = None,
    tenant: str | None = None,
    issuer: str | None = None,
    auth_method: str | None = None,
    private_key: str | None = None,
) -> OAuthApp:
    """Register (or replace) the user's app at a provider. ``auth_method`` None lets tbx
    pick the first client authentication the provider takes that the app can do;
    ``private_key`` (PEM) is for private_key_jwt."""
    provider = check_provider_id(provider)
    if not client_id.strip():
        raise UsageError("the client id is empty: copy it from the app registration page of the provider")
    if is_oidc(provider):
        if not issuer:
            raise UsageError(f"{provider} needs --issuer URL (the OpenID Connect issuer)")
        require_secure(issuer)
    elif issuer:
        raise UsageError(f"--issuer is only for OpenID Connect providers (oidc:NAME), not {provider}")
    if tenant and provider != "microsoft":
        raise UsageError("--tenant is only for microsoft")
    if private_key is not None:
        load_private_key(private_key)
    app = OAuthApp(provider=provider, client_id=client_id.strip(), hosts=dict(hosts or {}), tenant=tenant,
                   issuer=issuer, auth_method=auth_method)
    # validates host overrides, fetches an OIDC discovery document now rather than at sign-in,
    # and refuses an authentication method the provider does not take
    method = choose_method(provider_spec(app), has_secret=bool(client_secret), has_key=private_key is not None,
                           wanted=auth_method)
    with ws.change() as change:
        old = change.repos.oauth_apps.for_provider(provider)
        if old is not None:
            app.id = old.id
            change.repos.secrets.delete([s for s in (old.client_secret, old.private_key) if s])
        if client_secret:
            secret = change.repos.secrets.put(Secret(name=f"oauth-app/{provider}/client-secret", value=client_secret))
            app.client_secret = secret.id
        if private_key is not None:
            key = change.repos.secrets.put(Secret(name=f"oauth-app/{provider}/private-key", value=private_key))
            app.private_key = key.id
        change.repos.oauth_apps.put(app)
        change.record("connection.app", f"provider:{provider}", detail={
            "client_id": app.client_id, "confidential": bool(client_secret or private_key), "hosts": sorted(app.hosts),
            "tenant": tenant, "issuer": issuer, "auth_method": method,
        })
    return app


def app_for(ws: Workspace, provider: str) -> OAuthApp:
    app = ws.repos.oauth_apps.for_provider(check_provider_id(provider))
    if app is None:
        raise NotFound(
            f"no app registration for {provider} yet: register an OAuth app there, then run "
            f"'tbx connection app {provider} --client-id ID' (it asks for the secret)"
        )
    spec = BUILTIN.get(provider)
    if spec is not None and spec.confidential and not app.client_secret:
        raise UsageError(f"{spec.title} needs the app's client secret: run 'tbx connection app {provider} --client-id ID' again")
    return app


def default_scopes(ws: Workspace, provider: str, for_entry: CatalogEntry | None) -> list[str]:
    app = app_for(ws, provider)
    spec = provider_spec(app)
    wanted = for_entry.oauth.scopes if for_entry and for_entry.oauth else None
    return spec.scopes_for(wanted)


@dataclass
class SignIn:
    """How the sign-in talks to the user: the browser, or a code for another device."""

    device: bool = False
    opener: Opener = open_system_browser
    on_url: Callable[[str], None] | None = None
    show_code: Callable[[DeviceGrant], None] | None = None
    sleep: Callable[[float], None] | None = None
    cancelled: Callable[[], bool] | None = None
    timeout: float | None = None


def _sign_in(ws: Workspace, app: OAuthApp, scopes: list[str], how: SignIn) -> tuple[TokenSet, str]:
    """Tokens and the account they belong to. Tokens issued to a sign-in that then fails
    (the account cannot be named) are revoked, not left live at the provider."""
    client = client_for(ws, app)
    if how.device:
        kwargs = {}
        if how.sleep is not None:
            kwargs["sleep"] = how.sleep
        if how.cancelled is not None:
            kwargs["cancelled"] = how.cancelled
        tokens = device_flow(client, scopes, show=how.show_code or (lambda _grant: None), **kwargs)
    else:
        tokens = browser_flow(client, scopes, opener=how.opener, on_url=how.on_url,
                              timeout=how.timeout or ws.settings.oauth.browser_timeout,
                              cancelled=how.cancelled or (lambda: False))
    try:
        return tokens, client.account(tokens)
    except OAuthFlowError as exc:
        revoked = client.revoke_quietly(tokens)
        said = f"{exc}; nothing was saved" + ("; the tokens it issued were revoked" if revoked else "")
        raise type(exc)(said) from None


def add_connection(ws: Workspace, provider: str, scopes: list[str] | None, how: SignIn) -> tuple[Connection, bool]:
    """Sign in and keep the tokens. Signing in again to an account that is already
    connected replaces its tokens (a reconnect); returns (connection, is_new)."""
    app = app_for(ws, provider)
    scopes = provider_spec(app).scopes_for(scopes)
    tokens, account = _sign_in(ws, app, scopes, how)
    existing = next((c for c in ws.repos.connections if c.provider == app.provider and c.account == account), None)
    return keep_tokens(ws, app, account, tokens, scopes, existing), existing is None


def reconnect(ws: Workspace, ref: str, how: SignIn) -> Connection:
    """Sign in again for a connection (after consent was revoked or scopes changed)."""
    connection = resolve(ws, ref)
    if connection.provider == MCP:
        raise UsageError(f"{connection.account} is an MCP server's sign-in: run 'tbx server login {connection.account}'")
    app = app_for(ws, connection.provider)
    tokens, account = _sign_in(ws, app, connection.scopes, how)
    if account != connection.account:
        client_for(ws, app).revoke_quietly(tokens)  # issued to the wrong account: not kept, so not left live
        raise UsageError(
            f"signed in as {account}, but this connection is {connection.account}; sign in with that account, "
            f"or add {account} as a new connection (nothing was saved)"
        )
    return keep_tokens(ws, app, account, tokens, connection.scopes, connection)


def keep_tokens(
    ws: Workspace, app: OAuthApp, account: str, tokens: TokenSet, scopes: list[str], existing: Connection | None
) -> Connection:
    with ws.change() as change:
        connection = existing or Connection(provider=app.provider, account=account)
        secret = change.repos.secrets.get(connection.token_secret or "") or Secret(
            name=token_secret_name(connection.id), value="")
        secret.value = tokens.to_secret_value()
        change.repos.secrets.put(secret)
        connection.token_secret = secret.id
        connection.app = app.id
        connection.scopes = tokens.scopes or scopes
        connection.expires = datetime.fromtimestamp(tokens.expires_at, UTC) if tokens.expires_at else None
        connection.status, connection.last_error = ConnectionStatus.OK, None
        connection.refreshed = datetime.now(UTC)
        change.repos.connections.put(connection)
        change.record("connection.reconnect" if existing else "connection.add",
                      f"connection:{connection.provider}/{account}",
                      detail={"scopes": connection.scopes, "refreshable": bool(tokens.refresh_token)})
    return connection


def resolve(ws: Workspace, ref: str) -> Connection:
    """A connection by id, by ``provider/account``, or by an account name that is unique."""
    found = ws.repos.connections.get(ref)
    if found is not None:
        return found
    matches = [c for c in ws.repos.connections if f"{c.provider}/{c.account}" == ref or c.account == ref]
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise UsageError(f"{ref!r} names {len(matches)} connections; use the id or PROVIDER/ACCOUNT")
    raise NotFound(f"no connection {ref!r}; 'tbx connection list' shows them")


def bound_servers(ws: Workspace, connection_id: str) -> list[ServerInstance]:
    return [s for s in ws.repos.servers if s.connection == connection_id]


def check_binding(ws: Workspace, entry: CatalogEntry, ref: str) -> Connection:
    """The connection a new server of ``entry`` may be bound to."""
    if entry.oauth is None:
        raise UsageError(f"{entry.id} does not sign in with OAuth; drop --connection")
    connection = resolve(ws, ref)
    if connection.provider != entry.oauth.provider:
        raise UsageError(
            f"{entry.id} signs in with {entry.oauth.provider}, but {connection.provider}/{connection.account} "
            f"is a {connection.provider} connection"
        )
    missing = [s for s in entry.oauth.scopes if s not in connection.scopes]
    if missing and connection.scopes:
        raise UsageError(
            f"{connection.provider}/{connection.account} was not granted {', '.join(missing)}, which {entry.id} "
            f"needs; reconnect it with 'tbx connection add {connection.provider} --scope ...'"
        )
    if connection.status is ConnectionStatus.NEEDS_CONSENT:
        raise TbxError(f"{connection.provider}/{connection.account} needs you to sign in again first")
    return connection


def refresh(ws: Workspace, ref: str) -> Connection:
    connection = resolve(ws, ref)
    TokenBroker(ws).refresh(connection.id)
    ws.refresh()
    return resolve(ws, connection.id)


def remove(ws: Workspace, ref: str, *, force: bool = False) -> bool:
    """Revoke at the provider where it can, then forget the connection. Returns whether
    the provider confirmed the revocation. Servers bound to it must go first."""
    connection = resolve(ws, ref)
    servers = bound_servers(ws, connection.id)
    if servers and not force:
        names = ", ".join(sorted(s.name for s in servers))
        raise UsageError(f"servers {names} use {connection.provider}/{connection.account}; remove them first")
    revoked, why = False, None
    app = ws.repos.oauth_apps.get(connection.app or "")
    try:
        if app is not None:
            revoked = client_for(ws, app).revoke(token_set(ws, connection))
    except (OAuthFlowError, NotFound) as exc:
        why = str(exc)
    with ws.change() as change:
        change.repos.secrets.delete([connection.token_secret] if connection.token_secret else [])
        change.repos.connections.delete([connection.id])
        change.record("connection.remove", f"connection:{connection.provider}/{connection.account}",
                      detail={"revoked": revoked, "revoke_error": why})
    if app is not None and app.provider == MCP:
        forget_app(ws, app)
    _forget_lock_files(ws)
    return revoked


def _forget_lock_files(ws: Workspace) -> None:
    """Refresh lock files of connections that are gone (this one, and any left behind
    by versions that did not clean up)."""
    known = {lock_file(ws, c.id).name for c in ws.repos.connections}
    for path in ws.paths.state_dir.glob("oauth-*.lock"):
        if path.name not in known:
            path.unlink(missing_ok=True)


def describe(connection: Connection, now: datetime | None = None) -> dict[str, object]:
    """What a listing shows of a connection: never a token."""
    now = now or datetime.now(UTC)
    left = (connection.expires - now).total_seconds() if connection.expires else None
    if connection.status is not ConnectionStatus.OK:
        health = connection.status.value
    elif left is not None and left <= 0:
        health = "expired"
    else:
        health = "ok"
    return {
        "id": connection.id,
        "provider": connection.provider,
        "account": connection.account,
        "scopes": connection.scopes,
        "expires": connection.expires.isoformat() if connection.expires else None,
        "expires_in_seconds": None if left is None else int(left),
        "health": health,
        "last_error": connection.last_error,
    }


def ensure_unique_binding(ws: Workspace, toolbox_id: str, entry_id: str, connection_id: str) -> None:
    """Two instances of a server may use two accounts; two with one account are a mistake."""
    for server in ws.repos.servers.in_toolbox(toolbox_id):
        if server.connection == connection_id and server.catalog_id == entry_id:
            raise AlreadyExists(
                f"server {server.name} already runs {entry_id} as this account; bind the new one to another connection"
            )
