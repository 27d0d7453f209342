from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from console.oauth.discovery import discover
from console.services import connections as svc
from console.workspace import Workspace
from tests.support.mcp_protected import ProtectedMcpServer
from tests.support.oauth_provider import LocalOAuthProvider
from tests.support.oauth_provider.routes_mcp import McpSettings

CLIENT_SECRET = "client-secret-canary-3c9e"
SCOPES = ["repo", "read:user", "https://www.googleapis.com/auth/drive.readonly", "User.Read", "offline_access",
          "channels:read", "chat:write", "channels:history", "reactions:write", "users:read", "users.profile:read"]


@pytest.fixture(scope="module")
def provider() -> Iterator[LocalOAuthProvider]:
    with LocalOAuthProvider() as p:
        for client in ("github-app", "google-app", "ms-app", "slack-app", "oidc-app"):
            p.register_client(client, CLIENT_SECRET, SCOPES)
        p.register_client("public-app", None, SCOPES)
        p.register_client("basic-app", CLIENT_SECRET, SCOPES, auth_method="client_secret_basic")
        p.register_client("post-app", CLIENT_SECRET, SCOPES, auth_method="client_secret_post")
        yield p


@pytest.fixture(autouse=True)
def _reset(provider: LocalOAuthProvider) -> None:
    provider.user, provider.consent, provider.down = "alice@example.test", "approve", False
    provider.access_token_ttl, provider.refresh_token_ttl, provider.refresh_delay = 3600, 86400, 0.0
    provider.rotate_refresh_tokens = True
    provider.id_token_fault = None
    provider.oidc_auth_methods = ["client_secret_basic", "client_secret_post", "none"]
    provider.oidc_scopes = ["openid", "email", "profile", "offline_access"]
    provider.requests.clear()
    discover.cache_clear()  # each test may publish another discovery document at the same issuer



@dataclass(frozen=True)
class Shape:
    provider: str
    client_id: str
    hosts: dict[str, str]
    account: str
    tenant: str | None = None


def shapes(base: str) -> dict[str, Shape]:
    return {
        "github": Shape("github", "github-app", {"web": f"{base}/github", "api": f"{base}/github/api"}, "alice"),
        "google": Shape("google", "google-app", {"accounts": f"{base}/google", "oauth2": f"{base}/google",
                                                 "oidc": f"{base}/google"}, "alice@example.test"),
        "microsoft": Shape("microsoft", "ms-app", {"login": f"{base}/microsoft", "graph": f"{base}/microsoft/graph"},
                           "alice@example.test", tenant="contoso"),
        "slack": Shape("slack", "slack-app", {"web": f"{base}/slack"}, "alice@Example"),
    }


def register(ws: Workspace, provider: LocalOAuthProvider, name: str) -> Shape:
    shape = shapes(provider.base)[name]
    svc.set_app(ws, shape.provider, shape.client_id, CLIENT_SECRET, hosts=shape.hosts, tenant=shape.tenant)
    return shape


@pytest.fixture
def server(provider: LocalOAuthProvider) -> Iterator[ProtectedMcpServer]:
    """A remote MCP server (the SDK's) behind the provider's MCP authorization server."""
    provider.mcp = McpSettings()
    with ProtectedMcpServer(provider) as running:
        yield running
