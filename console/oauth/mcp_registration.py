"""Who tbx is at a remote server's authorization server (MCP authorization, client registration).

In the specification's order: a client ID metadata document where the server says it
reads them (the document's URL is the client id), else dynamic client registration
(RFC 7591) where it has a registration endpoint, else the client id the user registered
there by hand. tbx is a public client: it proves itself with PKCE, not a secret, unless
a registration hands it one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx2
from pydantic import ValidationError

from console.oauth.mcp_discovery import Discovered, DiscoveryError, read_json, secure

CLIENT_NAME = "Toolbox Console"
GRANT_TYPES = ["authorization_code", "refresh_token"]
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
LOOPBACK_REDIRECT = "http://127.0.0.1/callback"
"""The redirect a published document names: authorization servers take any port on a
loopback redirect (RFC 8252 §7.3), and each sign-in listens on a port of its own."""


@dataclass(frozen=True)
class Registration:
    client_id: str
    client_secret: str | None = None
    auth_method: str = "none"
    how: str = "pre-registered"
    """cimd, dcr or pre-registered: what the audit and the listing say."""

    def __repr__(self) -> str:
        return f"Registration(client_id={self.client_id!r}, how={self.how!r}, secret=<hidden>)"


def client_metadata(redirect_uri: str, client_id: str | None = None, *, device: bool = False) -> dict[str, Any]:
    """What tbx says about itself: the body of a registration, and the document a client ID
    metadata URL must serve (with ``client_id`` that URL)."""
    document: dict[str, Any] = {
        "client_name": CLIENT_NAME,
        "redirect_uris": [redirect_uri],
        "grant_types": [*GRANT_TYPES, DEVICE_GRANT] if device else GRANT_TYPES,
        "response_types": ["code"],
        "token_endpoint_auth_method": "none",
    }
    return {"client_id": client_id, **document} if client_id else document


async def register(client: httpx2.AsyncClient, found: Discovered, redirect_uri: str, *, device: bool = False,
                   client_metadata_url: str | None, client_id: str | None) -> Registration:
    if client_id:
        return Registration(client_id.strip())
    if client_metadata_url and found.metadata.client_id_metadata_document_supported is True:
        return Registration(check_metadata_url(client_metadata_url), how="cimd")
    endpoint = found.endpoint("registration_endpoint")
    if endpoint:
        return await dynamic(client, endpoint, client_metadata(redirect_uri, device=device), found.issuer)
    raise DiscoveryError(
        f"{found.issuer} takes neither client ID metadata documents (that tbx was given one) nor dynamic client "
        f"registration: register an app there with the redirect URI {LOOPBACK_REDIRECT} and sign in with "
        "--client-id ID")


def published_document(url: str) -> dict[str, Any]:
    """The client ID metadata document to serve at ``url``: browser and device sign-ins."""
    return client_metadata(LOOPBACK_REDIRECT, check_metadata_url(url), device=True)


def check_metadata_url(url: str) -> str:
    """A client ID metadata URL has a path (draft-ietf-oauth-client-id-metadata-document §3)."""
    secure(url, "client metadata document")
    if urlsplit(url).path in ("", "/"):
        raise DiscoveryError(f"the client metadata document URL {url!r} needs a path; refused")
    return url


async def dynamic(client: httpx2.AsyncClient, endpoint: str, metadata: dict[str, Any], issuer: str) -> Registration:
    """RFC 7591. The answer is checked (§3.2.1 leaves that to the client): a registration
    for other redirect URIs would send the code somewhere else, one with a method tbx
    cannot do would fail later at the token endpoint."""
    from mcp.client.auth.oauth2 import check_registration_usable
    from mcp.client.auth.exceptions import OAuthRegistrationError
    from mcp.shared.auth import OAuthClientInformationFull

    status, body = await read_json(client, "POST", endpoint, "client registration",
                                   json=metadata, headers={"Accept": "application/json"})
    if status not in (200, 201) or not isinstance(body, dict):
        error = body.get("error") if isinstance(body, dict) and isinstance(body.get("error"), str) else None
        raise DiscoveryError(f"{issuer} refused to register tbx (HTTP {status}{', ' + error[:80] if error else ''})")
    body.pop("issuer", None)
    try:
        info = OAuthClientInformationFull.model_validate(body)
        check_registration_usable(info)
    except (ValidationError, OAuthRegistrationError):
        raise DiscoveryError(f"{issuer} answered the registration with a client tbx cannot use; refused") from None
    registered = [str(u) for u in info.redirect_uris or []]
    if registered != metadata["redirect_uris"]:
        raise DiscoveryError(f"{issuer} registered tbx with other redirect URIs than the one it asked for; refused")
    return Registration(info.client_id, info.client_secret, info.token_endpoint_auth_method or "none", how="dcr")
