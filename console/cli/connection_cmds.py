"""``tbx connection ...``: OAuth accounts, signed in through the browser or a device code."""

from __future__ import annotations

import getpass
import json
import os
from typing import TYPE_CHECKING

import click

from console.cli.base import CliState, confirm_or_yes, emit_json, interactive, json_option, note, pass_state, print_table
from console.errors import UsageError
from console.oauth.providers import AUTH_METHODS

if TYPE_CHECKING:
    from console.oauth.client import DeviceGrant
    from console.services.connections import SignIn

SECRET_ENV = "TBX_OAUTH_CLIENT_SECRET"


def _show_url(url: str) -> None:
    click.echo("Opening your browser to sign in. If it does not open, visit:", err=True)
    click.echo(f"  {url}", err=True)


def _show_code(grant: DeviceGrant) -> None:
    click.echo(f"On any device, open {grant.verification_uri} and enter the code:", err=True)
    click.echo(f"  {grant.user_code}", err=True)
    click.echo("Waiting for you to finish there...", err=True)


def _sign_in(device: bool, no_browser: bool) -> SignIn:
    from console.services import connections as svc

    if no_browser:
        return svc.SignIn(device=device, opener=lambda _url: False, on_url=_show_url, show_code=_show_code)
    return svc.SignIn(device=device, on_url=_show_url, show_code=_show_code)


def _client_secret(public: bool) -> str | None:
    if public:
        return None
    if SECRET_ENV in os.environ:
        return os.environ[SECRET_ENV]
    if not interactive():
        raise UsageError(f"no client secret: set {SECRET_ENV}, or pass --public for an app without one")
    return getpass.getpass("Client secret (hidden): ") or None


def register(cli: click.Group) -> None:
    @cli.group()
    def connection() -> None:
        """OAuth accounts (GitHub, Google, Microsoft, Slack, OpenID Connect) for servers."""


    @connection.command("app")
    @click.argument("provider")
    @click.option("--client-id", required=True, help="The client id of your app registration.")
    @click.option("--public", is_flag=True, help="The app has no client secret (PKCE only).")
    @click.option("--tenant", help="Microsoft: the directory (tenant) id or 'organizations'.")
    @click.option("--issuer", help="oidc:NAME: the issuer URL whose discovery document names the endpoints.")
    @click.option("--host", "hosts", multiple=True, metavar="NAME=URL",
                  help="Point a provider host elsewhere (GitHub Enterprise: web=..., api=...).")
    @click.option("--auth-method", type=click.Choice(AUTH_METHODS),
                  help="How the app authenticates at the token endpoint, as registered at the provider "
                       "(default: the first the provider lists that the app can do, basic before post).")
    @click.option("--private-key", "key_file", metavar="FILE",
                  help="PEM private key of the app, for private_key_jwt (kept in the vault; the file is not needed after).")
    @pass_state
    def app(state: CliState, provider: str, client_id: str, public: bool, tenant: str | None,
            issuer: str | None, hosts: tuple[str, ...], auth_method: str | None, key_file: str | None) -> None:
        """Register your OAuth app at PROVIDER (client secret from $TBX_OAUTH_CLIENT_SECRET or a prompt)."""
        from console.services import connections as svc

        overrides = {}
        for pair in hosts:
            key, sep, value = pair.partition("=")
            if not sep or not key or not value:
                raise UsageError(f"bad --host {pair!r}: use NAME=URL, e.g. web=https://github.example.com")
            overrides[key] = value
        private_key = None
        if key_file:
            from console.oauth.client_auth import read_private_key

            private_key = read_private_key(key_file)
        secret = None if private_key is not None or auth_method == "none" else _client_secret(public)
        created = svc.set_app(state.workspace(), provider, client_id, secret, hosts=overrides, tenant=tenant,
                              issuer=issuer, auth_method=auth_method, private_key=private_key)
        click.echo(f"app registration for {created.provider} saved (client id {created.client_id})")
        if private_key is not None:
            from console.oauth.client_auth import public_jwk

            click.echo("register this public key (JWK) with the app at the provider:")
            click.echo(json.dumps(public_jwk(private_key)))
        click.echo(f"next: 'tbx connection add {created.provider}'")

    @connection.command("add")
    @click.argument("provider")
    @click.option("--scope", "scopes", multiple=True,
                  help="Scope to ask for, on top of what tbx needs to name the account and refresh (repeatable).")
    @click.option("--for", "for_entry", metavar="CATALOG_ID", help="Ask for the scopes this catalog server needs.")
    @click.option("--device", is_flag=True, help="Sign in on another device with a code (SSH sessions, headless).")
    @click.option("--no-browser", is_flag=True, help="Print the sign-in address instead of opening a browser.")
    @json_option
    @pass_state
    def add(state: CliState, provider: str, scopes: tuple[str, ...], for_entry: str | None, device: bool,
            no_browser: bool, as_json: bool) -> None:
        """Sign in to PROVIDER and keep the account's tokens in the vault."""
        from console.services import connections as svc

        ws = state.workspace()
        wanted = list(scopes)
        if for_entry:
            from console.catalog import load_catalog

            wanted = [*svc.default_scopes(ws, provider, load_catalog(ws.paths).get(for_entry)), *wanted]
        created, is_new = svc.add_connection(ws, provider, wanted or None, _sign_in(device, no_browser))
        if as_json:
            emit_json(svc.describe(created))
            return
        verb = "connected" if is_new else "reconnected"
        click.echo(f"{verb} {created.provider}/{created.account} as {created.id} (scopes: {' '.join(created.scopes) or '-'})")

    @connection.command("reconnect")
    @click.argument("connection_ref", metavar="ID")
    @click.option("--device", is_flag=True, help="Sign in on another device with a code.")
    @click.option("--no-browser", is_flag=True, help="Print the sign-in address instead of opening a browser.")
    @pass_state
    def reconnect(state: CliState, connection_ref: str, device: bool, no_browser: bool) -> None:
        """Sign in again for a connection that needs consent."""
        from console.services import connections as svc

        from console.services.connection_upkeep import renew_bound

        ws = state.workspace()
        done = svc.reconnect(ws, connection_ref, _sign_in(device, no_browser))
        click.echo(f"reconnected {done.provider}/{done.account}")
        for label in renew_bound(ws, done.id, lambda line: click.echo(f"  {line}", err=True)):
            click.echo(f"server {label} has the new token")

    @connection.command("list")
    @json_option
    @pass_state
    def list_(state: CliState, as_json: bool) -> None:
        """List connections: account, scopes, expiry, health."""
        from console.services import connections as svc

        ws = state.workspace()
        rows = [svc.describe(c) for c in ws.repos.connections]
        used = {c.id: [s.name for s in svc.bound_servers(ws, c.id)] for c in ws.repos.connections}
        if as_json:
            emit_json([{**row, "servers": used[str(row["id"])]} for row in rows])
            return
        print_table(
            ["ID", "PROVIDER", "ACCOUNT", "HEALTH", "EXPIRES IN", "SCOPES", "SERVERS"],
            [[r["id"], r["provider"], r["account"], r["health"], _left(r["expires_in_seconds"]),
              " ".join(r["scopes"]), ",".join(used[str(r["id"])]) or "-"] for r in rows],
            empty="no connections yet: 'tbx connection app PROVIDER --client-id ID', then 'tbx connection add PROVIDER'",
        )

    @connection.command()
    @click.argument("connection_ref", metavar="ID")
    @pass_state
    def refresh(state: CliState, connection_ref: str) -> None:
        """Refresh the token now; servers using it are handed it (no new container)."""
        from console.services import connections as svc

        from console.services.connection_upkeep import refresh_and_renew

        ws = state.workspace()
        recreated = refresh_and_renew(ws, connection_ref, lambda line: click.echo(f"  {line}", err=True))
        done = svc.describe(svc.resolve(ws, connection_ref))
        click.echo(f"refreshed {done['provider']}/{done['account']}; expires in {_left(done['expires_in_seconds'])}")
        for label in recreated:
            click.echo(f"server {label} has the new token")

    @connection.command()
    @click.argument("connection_ref", metavar="ID")
    @click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
    @pass_state
    def remove(state: CliState, connection_ref: str, yes: bool) -> None:
        """Revoke the tokens at the provider (where it can) and forget the connection."""
        from console.services import connections as svc

        ws = state.workspace()
        target = svc.resolve(ws, connection_ref)
        confirm_or_yes(yes, f"Remove connection {target.provider}/{target.account}?")
        revoked = svc.remove(ws, target.id)
        if revoked:
            click.echo(f"revoked and removed {target.provider}/{target.account}")
        else:
            click.echo(f"removed {target.provider}/{target.account}")
            note("the provider did not confirm revocation; revoke the app's access in your account settings too")


def _left(seconds: object) -> str:
    if seconds is None:
        return "never"
    value = int(seconds)  # type: ignore[call-overload]
    if value <= 0:
        return "expired"
    if value < 3600:
        return f"{value // 60}m"
    if value < 86400:
        return f"{value // 3600}h{value % 3600 // 60:02d}m"
    return f"{value // 86400}d"
