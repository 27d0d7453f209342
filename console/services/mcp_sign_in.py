"""Signing the gateway in to a remote MCP server's authorization server.

``sign_in`` goes from the server's 401 to a connection in the vault: discovery (RFC 9728,
RFC 8414), registration (client ID metadata document, RFC 7591, or the user's client id),
then the same browser (PKCE S256, loopback redirect, ``state`` and RFC 9207 ``iss``
checked) or device sign-in every other connection uses, with RFC 8707's ``resource`` on
the authorization and every token request so the tokens are good for this server alone.

The result is an ordinary connection of provider ``mcp`` whose app record holds the
authorization server's endpoints (as the provider "hosts" the endpoint templates name)
and the resource: the token broker refreshes and revokes it like any other.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from console.model import Connection, OAuthApp, Secret
from console.oauth.client import Credentials, DeviceGrant, OAuthClient, OAuthFlowError
from console.oauth.providers import ProviderSpec

if TYPE_CHECKING:
    from console.oauth.mcp_discovery import Discovered
    from console.oauth.mcp_registration import Registration
    from console.oauth.tokens import TokenSet
    from console.workspace import Workspace

MCP = "mcp"
"""The provider of every connection to a remote MCP server's authorization server."""
RESOURCE = "resource"
_ENDPOINTS = {"authorize": "authorization_endpoint", "token": "token_endpoint", "revoke": "revocation_endpoint",
              "device": "device_authorization_endpoint"}


def spec_for(issuer: str, hosts: dict[str, str], auth_method: str, *, iss_required: bool = False) -> ProviderSpec:
    """The provider an MCP authorization server is, from its endpoints and the resource."""
    resource = hosts[RESOURCE]
    return ProviderSpec(
        id=MCP,
        title=urlsplit(issuer).netloc or issuer,
        hosts=hosts,
        authorize="{authorize}",
        token="{token}",
        revoke="{revoke}" if "revoke" in hosts else None,
        device="{device}" if "device" in hosts else None,
        revocation="rfc7009" if "revoke" in hosts else "none",
        account="",
        account_fields=(),
        auth_methods=(auth_method,),
        authorize_extra={RESOURCE: resource},
        token_extra={RESOURCE: resource},
        redirect_issuer=issuer,
        redirect_iss_required=iss_required,
    )


def mcp_spec(app: OAuthApp) -> ProviderSpec:
    """The spec of a kept connection's app (refresh and revoke need no discovery)."""
    return spec_for(app.issuer or "", dict(app.hosts), app.auth_method or "none")


def resource_of(app: OAuthApp) -> str:
    return app.hosts[RESOURCE]


def _hosts(found: Discovered) -> dict[str, str]:
    hosts = {name: url for name, key in _ENDPOINTS.items() if (url := found.endpoint(key))}
    return {**hosts, RESOURCE: found.resource}


async def sign_in(
    ws: Workspace,
    server_url: str,
    *,
    device: bool,
    open_browser: Callable[[str], bool],
    show_code: Callable[[DeviceGrant], None] | None = None,
    client_id: str | None = None,
    client_metadata_url: str | None = None,
    on_url: Callable[[str], None] | None = None,
    cancelled: Callable[[], bool] = lambda: False,
    sleep: Callable[[float], None] | None = None,
) -> Connection:
    """Sign in to the authorization of the MCP server at ``server_url`` and keep the tokens
    as a connection (the same one again when this server was signed in to before).
    ``on_url`` hears the browser address once its listener is up; ``cancelled`` is asked
    while waiting (the console's Cancel), ``sleep`` waits between device-code polls."""
    import httpx2

    from console.oauth.flows import LoopbackListener
    from console.oauth.mcp_discovery import discover
    from console.oauth.mcp_registration import register

    timeout = ws.settings.oauth.http_timeout
    listener = LoopbackListener(state="")
    try:
        async with httpx2.AsyncClient(timeout=timeout, follow_redirects=False) as http:
            found = await discover(http, server_url)
            if device and not found.endpoint("device_authorization_endpoint"):
                raise OAuthFlowError(f"{found.issuer} has no device sign-in; sign in in the browser instead")
            registration = await register(
                http, found, listener.redirect_uri, device=device, client_id=client_id,
                client_metadata_url=client_metadata_url or ws.settings.oauth.client_metadata_url)
        spec = spec_for(found.issuer, _hosts(found), registration.auth_method,
                        iss_required=found.metadata.authorization_response_iss_parameter_supported is True)
        client = OAuthClient(spec, Credentials(registration.client_id, registration.client_secret,
                                               auth_method=registration.auth_method), timeout=timeout)
        if cancelled():
            raise OAuthFlowError(f"{found.issuer} sign-in cancelled; nothing was saved")
    except BaseException:
        listener.discard()
        raise
    wait = _Wait(open_browser, show_code, on_url, cancelled, sleep)
    tokens = await asyncio.to_thread(_flow, ws, client, found.scopes, listener, device, wait)
    return _keep(ws, found, registration, tokens)


@dataclass(frozen=True)
class _Wait:
    """How the flow talks to the person signing in, and how they give up."""

    open_browser: Callable[[str], bool]
    show_code: Callable[[DeviceGrant], None] | None
    on_url: Callable[[str], None] | None
    cancelled: Callable[[], bool]
    sleep: Callable[[float], None] | None


def _flow(ws: Workspace, client: OAuthClient, scopes: list[str], listener: object, device: bool,
          wait: _Wait) -> TokenSet:
    from console.oauth.flows import LoopbackListener, browser_flow, device_flow

    assert isinstance(listener, LoopbackListener)
    if device:
        listener.discard()
        paced = {"sleep": wait.sleep} if wait.sleep is not None else {}
        return device_flow(client, scopes, show=wait.show_code or (lambda _grant: None), cancelled=wait.cancelled,
                           **paced)
    return browser_flow(client, scopes, opener=wait.open_browser, listener=listener, on_url=wait.on_url,
                        timeout=ws.settings.oauth.browser_timeout, cancelled=wait.cancelled)


def _keep(ws: Workspace, found: Discovered, registration: Registration, tokens: TokenSet) -> Connection:
    """One app record per connection (client ids belong to one authorization server and,
    registered dynamically, to one sign-in); signing in again replaces both."""
    from console.services.connections import keep_tokens

    existing = next((c for c in ws.repos.connections if c.provider == MCP and c.account == found.resource), None)
    old_app = ws.repos.oauth_apps.get(existing.app or "") if existing else None
    with ws.change() as change:
        app = OAuthApp(provider=MCP, client_id=registration.client_id, issuer=found.issuer, hosts=_hosts(found),
                       auth_method=registration.auth_method)
        if registration.client_secret:
            secret = change.repos.secrets.put(Secret(name=f"oauth-app/mcp/{app.id}/client-secret",
                                                     value=registration.client_secret))
            app.client_secret = secret.id
        change.repos.oauth_apps.put(app)
        change.record("connection.app", f"provider:{MCP}", detail={
            "issuer": found.issuer, "resource": found.resource, "registration": registration.how,
            "client_id": registration.client_id, "auth_method": registration.auth_method})
    connection = keep_tokens(ws, app, found.resource, tokens, found.scopes, existing)
    if old_app is not None:
        forget_app(ws, old_app)
    return connection


def forget_app(ws: Workspace, app: OAuthApp) -> None:
    """An MCP connection's app goes with it (nothing else can use its client id)."""
    with ws.change() as change:
        change.repos.secrets.delete([app.client_secret] if app.client_secret else [])
        change.repos.oauth_apps.delete([app.id])
