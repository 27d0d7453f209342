"""``UpstreamAuth``: the gateway's requests to a remote MCP server carry the user's token
for that server, and nothing else.

Whatever ``Authorization`` a request arrives with (an agent's token, forwarded by
mistake) is replaced. The token goes only to the origin of the resource it was issued
for. An expired token is refreshed first; a refused one is refreshed once and the
request sent again; refused again, the user has to sign in again and the error says how.

Callers at the same moment share one refresh: they queue on one lock per connection in
this process (the token broker adds the lock file for other processes), and whoever
comes second finds the new token and uses it.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncGenerator, Generator
from urllib.parse import urlsplit

import httpx2

from console.errors import NotFound, TbxError
from console.oauth.client import OAuthFlowError, ProviderUnavailable
from console.oauth.tokens import TokenSet
from console.remote.policy import SIGN_IN_HEADER
from console.services.connection_tokens import ConnectionNeedsConsent, TokenBroker
from console.services.connections import bound_servers
from console.workspace import Workspace

_locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, asyncio.Lock]] = weakref.WeakKeyDictionary()


class SignInRequired(TbxError):
    """The remote server refuses the connection's tokens even fresh: only a new sign-in helps."""


def _lock(connection_id: str) -> asyncio.Lock:
    per_loop = _locks.setdefault(asyncio.get_running_loop(), {})
    return per_loop.setdefault(connection_id, asyncio.Lock())


class UpstreamAuth(httpx2.Auth):
    requires_request_body = True  # a refused request is sent again, body and all

    def __init__(self, ws: Workspace, connection_id: str) -> None:
        self.ws, self.connection_id = ws, connection_id
        self._tokens: TokenSet | None = None

    def sync_auth_flow(self, request: httpx2.Request) -> Generator[httpx2.Request, httpx2.Response, None]:
        raise TbxError("UpstreamAuth serves the gateway's asynchronous client only")
        yield request  # pragma: no cover - makes this a generator

    async def async_auth_flow(self, request: httpx2.Request) -> AsyncGenerator[httpx2.Request, httpx2.Response]:
        if self.ws.repos.connections.get(self.connection_id) is None:
            # Not kept in this vault: a droplet's gateway, whose mirror hands the access
            # token alone as the server's Authorization (console/remote/policy.py); the
            # console refreshes it and pushes it again, so it is read at every request.
            # Nothing here can refresh it: a refusal asks for a new sign-in.
            handed = self._handed()
            if handed is None:
                raise self._kept_elsewhere("has no live sign-in")
            request.headers[SIGN_IN_HEADER] = handed
            response = yield request
            if response.status_code == 401:
                raise self._kept_elsewhere("refused the access token of its sign-in")
            return
        resource = await self._resource()
        if _origin(str(request.url)) != _origin(resource):
            raise TbxError(f"refusing to send the token for {resource} to {request.url.scheme}://{request.url.host}")
        used = await self._current()
        request.headers["Authorization"] = f"Bearer {used.access_token}"
        response = yield request
        if response.status_code != 401:
            return
        fresh = await self._current(refused=used)
        request.headers["Authorization"] = f"Bearer {fresh.access_token}"
        response = yield request
        if response.status_code == 401:
            raise await self._sign_in_required(resource, "refused the connection's token again after a refresh")

    async def _resource(self) -> str:
        from console.services.mcp_sign_in import resource_of

        connection = self.ws.repos.connections.get(self.connection_id)
        app = self.ws.repos.oauth_apps.get(connection.app or "") if connection else None
        if app is None:
            raise SignInRequired(f"connection {self.connection_id} is gone; sign in to the server again "
                                 "('tbx server login TOOLBOX/SERVER')")
        return resource_of(app)

    async def _current(self, refused: TokenSet | None = None) -> TokenSet:
        """A token good for a while (``refused``: one other than the server just refused)."""
        async with _lock(self.connection_id):
            held = self._tokens
            if held is not None and refused is None and not held.expires_within(held.refresh_margin(30)):
                return held
            if held is not None and refused is not None and held.access_token != refused.access_token:
                return held  # another caller refreshed while this one waited
            try:
                self._tokens = await asyncio.to_thread(self._fetch, refused)
            except ProviderUnavailable:
                raise  # says to try again later, which is right
            except (ConnectionNeedsConsent, NotFound, OAuthFlowError) as exc:
                if refused is None and not isinstance(exc, ConnectionNeedsConsent | NotFound):
                    raise
                raise await self._sign_in_required(await self._resource(), f"could not be given a new token ({exc})") from None
            return self._tokens

    def _fetch(self, refused: TokenSet | None) -> TokenSet:
        """In a thread: the broker reads the vault and may call the provider."""

        broker = TokenBroker(self.ws, ahead=30)
        return broker.tokens(self.connection_id) if refused is None else broker.refresh(self.connection_id, refused)

    async def _sign_in_required(self, resource: str, why: str) -> SignInRequired:
        def mark() -> str:
            TokenBroker(self.ws).needs_consent(self.connection_id, f"{resource} {why}")
            return self._bound_label() or resource

        target = await asyncio.to_thread(mark)
        self._tokens = None
        return SignInRequired(f"{resource} {why}: sign in again with 'tbx server login {target}'")

    def _kept_elsewhere(self, why: str) -> SignInRequired:
        target = self._bound_label() or "TOOLBOX/SERVER"
        return SignInRequired(f"{target} {why}: sign in again with 'tbx server login {target}'")

    def _handed(self) -> str | None:
        """The ``Authorization`` the console last pushed for the servers bound to the connection."""
        for server in bound_servers(self.ws, self.connection_id):
            secret = self.ws.repos.secrets.get(server.secret_refs.get(SIGN_IN_HEADER) or "")
            if secret is not None:
                return secret.value
        return None

    def _bound_label(self) -> str | None:
        """``TOOLBOX/SERVER`` of the one server bound to the connection, if just one is."""
        boxes = {b.id: b.name for b in self.ws.repos.toolboxes}
        names = [f"{boxes.get(s.toolbox, '?')}/{s.name}" for s in bound_servers(self.ws, self.connection_id)]
        return names[0] if len(names) == 1 else None


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme.lower(), parts.netloc.lower()
