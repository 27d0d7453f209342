"""Finding out how a remote MCP server wants to be signed in to (MCP authorization, 2026-07-28).

The server's 401 points at its protected resource metadata (RFC 9728), which names the
authorization server; that server's own metadata (RFC 8414, or OpenID discovery) names
its endpoints. The SDK builds the candidate URLs in the order the specification gives
and holds the document models; what this module adds is distrust: every document is
read with a size cap, without following redirects, only from https:// (or this
machine), and checked before it is used — the resource must be the server we asked,
the issuer the one we looked up, the endpoints https, PKCE S256 offered.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx2
from pydantic import ValidationError

from console.errors import UsageError
from console.oauth.client import OAuthFlowError
from console.oauth.providers import require_secure

MAX_DOCUMENT = 64 * 1024
"""Metadata documents are a few KiB; a bigger one is refused, not read into memory."""
ENDPOINTS = ("authorization_endpoint", "token_endpoint", "registration_endpoint", "revocation_endpoint",
             "device_authorization_endpoint")


class DiscoveryError(OAuthFlowError):
    """The server or its authorization server described itself in a way tbx does not trust."""


@dataclass(frozen=True)
class Challenge:
    """What a server's 401 said (RFC 6750 §3, RFC 9728 §5.1)."""

    resource_metadata: str | None
    scope: str | None


@dataclass(frozen=True)
class Discovered:
    """A server's authorization, checked: the resource to ask tokens for, the scopes to ask
    for, and its authorization server's metadata (with the raw document for fields the
    SDK's model leaves out, such as the device endpoint)."""

    resource: str
    scopes: list[str]
    issuer: str
    metadata: Any  # mcp.shared.auth.OAuthMetadata
    document: dict[str, Any]

    def endpoint(self, name: str) -> str | None:
        value = self.document.get(name)
        return value if isinstance(value, str) and value else None


def secure(url: str, what: str) -> str:
    try:
        return require_secure(url)
    except UsageError:
        # repr: a hostile document's control characters never reach the terminal; cut: nor its bulk
        raise DiscoveryError(f"{what} {_cut(url)!r} is not https:// (plain http only to this machine); "
                             "refused") from None


def _cut(text: str, most: int = 200) -> str:
    return text if len(text) <= most else text[:most] + "…"


async def read_json(client: httpx2.AsyncClient, method: str, url: str, what: str, **kwargs: Any) -> tuple[int, Any]:
    """(status, parsed JSON or None) of one request, reading at most ``MAX_DOCUMENT`` bytes."""
    secure(url, what)
    try:
        async with client.stream(method, url, **kwargs) as response:
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > MAX_DOCUMENT:
                    raise DiscoveryError(f"the {what} at {url} is larger than {MAX_DOCUMENT // 1024} KiB; refused")
            status = response.status_code
    except httpx2.HTTPError as exc:
        raise DiscoveryError(f"could not read the {what} at {url} ({type(exc).__name__}); check the address") from None
    try:
        return status, json.loads(bytes(body)) if body else None
    except ValueError:
        return status, None


async def fetch_document(client: httpx2.AsyncClient, url: str, what: str) -> dict[str, Any] | None:
    """A JSON object, or None when the URL does not serve one (try the next candidate)."""
    from mcp.client.auth.utils import create_oauth_metadata_request

    headers = dict(create_oauth_metadata_request(url).headers) | {"Accept": "application/json"}
    status, body = await read_json(client, "GET", url, what, headers=headers)
    if status >= 500:
        raise DiscoveryError(f"the {what} at {url} answered HTTP {status}; try again later")
    if status != 200:
        return None
    if not isinstance(body, dict):
        raise DiscoveryError(f"the {what} at {url} is not a JSON object; refused")
    return body


async def first_documents(client: httpx2.AsyncClient, urls: list[str], what: str,
                          model: type[Any]) -> AsyncIterator[tuple[str, dict[str, Any], Any]]:
    """(url, document, parsed) of each candidate URL that serves a document, in order: the
    caller returns at the first it accepts. A malformed one ends the search: it is not
    skipped for the next, or a server could steer discovery by breaking its own."""
    for url in urls:
        document = await fetch_document(client, url, what)
        if document is None:
            continue
        try:
            parsed = model.model_validate(document)
        except ValidationError:
            raise DiscoveryError(f"the {what} at {url} is malformed; refused") from None
        yield url, document, parsed


async def probe(client: httpx2.AsyncClient, server_url: str) -> Challenge:
    """Ask the server without a token, as an MCP client's first request would."""
    from mcp.client.auth.utils import extract_resource_metadata_from_www_auth, extract_scope_from_www_auth

    secure(server_url, "MCP server")
    initialize = {"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "tbx", "version": "1"}}}
    try:
        response = await client.post(server_url, json=initialize,
                                     headers={"Accept": "application/json, text/event-stream"})
    except httpx2.HTTPError as exc:
        raise DiscoveryError(f"could not reach {server_url} ({type(exc).__name__}); check the address") from None
    if response.status_code != 401:
        raise DiscoveryError(f"{server_url} answered HTTP {response.status_code}, not 401: it does not ask for "
                             "MCP authorization")
    return Challenge(extract_resource_metadata_from_www_auth(response), extract_scope_from_www_auth(response))


async def protected_resource(client: httpx2.AsyncClient, server_url: str, challenge: Challenge) -> Any:
    """The server's RFC 9728 metadata: from the 401's ``resource_metadata``, else the
    well-known URIs (path, then root). It must describe this very server (§3.3): a
    document about another resource would get us tokens for that one."""
    from mcp.client.auth.utils import build_protected_resource_metadata_discovery_urls
    from mcp.shared.auth import ProtectedResourceMetadata
    from mcp.shared.auth_utils import check_resource_allowed, resource_url_from_server_url

    urls = build_protected_resource_metadata_discovery_urls(challenge.resource_metadata, server_url)
    async for url, _document, metadata in first_documents(client, urls, "protected resource metadata",
                                                          ProtectedResourceMetadata):
        if not check_resource_allowed(resource_url_from_server_url(server_url), str(metadata.resource)):
            raise DiscoveryError(f"the protected resource metadata at {url} describes {metadata.resource}, not "
                                 f"{server_url}; refused")
        return metadata
    raise DiscoveryError(f"{server_url} asked for authorization but publishes no protected resource metadata "
                         "(RFC 9728); tbx cannot find its authorization server")


async def authorization_server(client: httpx2.AsyncClient, issuer: str, resource: str) -> tuple[Any, dict[str, Any]]:
    """The issuer's metadata, tried at RFC 8414 then OpenID discovery URLs in the order the
    specification gives, used only if it names exactly this issuer (RFC 8414 §3.3)."""
    from mcp.client.auth.utils import build_oauth_authorization_server_metadata_discovery_urls, issuers_match
    from mcp.shared.auth import OAuthMetadata

    secure(issuer, "authorization server")
    urls = build_oauth_authorization_server_metadata_discovery_urls(issuer, resource)
    async for url, document, metadata in first_documents(client, urls, "authorization server metadata", OAuthMetadata):
        if not isinstance(document.get("issuer"), str) or not issuers_match(document["issuer"], issuer):
            raise DiscoveryError(f"the metadata at {url} is for issuer {_cut(str(document.get('issuer')))!r}, not {issuer}; "
                                 "refused (RFC 8414 §3.3)")
        check_server(document, issuer, resource)
        return metadata, document
    raise DiscoveryError(f"{issuer} publishes no authorization server metadata (RFC 8414 or OpenID discovery)")


def check_server(document: dict[str, Any], issuer: str, resource: str) -> None:
    for name in ENDPOINTS:
        value = document.get(name)
        if value is not None:
            if not isinstance(value, str):
                raise DiscoveryError(f"{issuer} gives its {name} as {type(value).__name__}; refused")
            secure(value, f"{issuer}'s {name}")
    if "S256" not in (document.get("code_challenge_methods_supported") or []):
        raise DiscoveryError(f"{issuer} does not offer PKCE with S256, which MCP authorization requires; refused")
    listed = document.get("protected_resources")
    if _origin(issuer) != _origin(resource) and isinstance(listed, list) and resource not in listed \
            and resource.rstrip("/") not in listed:
        # RFC 9728 §4: an authorization server may list the resources it serves. One on
        # another origin that lists them without this one does not issue its tokens.
        raise DiscoveryError(f"{resource} names {issuer} as its authorization server, but {issuer} does not list "
                             "it among its protected resources; refused")


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme.lower(), parts.netloc.lower()


async def discover(client: httpx2.AsyncClient, server_url: str) -> Discovered:
    """Everything a sign-in needs to know, from the server's 401 on."""
    from mcp.client.auth.utils import get_client_metadata_scopes

    challenge = await probe(client, server_url)
    prm = await protected_resource(client, server_url, challenge)
    resource = str(prm.resource)
    issuer = str(prm.authorization_servers[0])
    metadata, document = await authorization_server(client, issuer, resource)
    # The 401's scope first, then the resource's scopes_supported (the spec's order);
    # offline_access is added where the server offers it, for a refresh token.
    scope = get_client_metadata_scopes(challenge.scope, prm, metadata, ["authorization_code", "refresh_token"])
    return Discovered(resource, (scope or "").split(), str(document["issuer"]), metadata, document)
