"""What each OAuth provider is: endpoints, scopes, capabilities and response quirks.

Endpoints are templates over named hosts (``{web}/login/oauth/authorize``) so a user's
app registration can point a provider at another deployment of it — GitHub Enterprise
Server, a sovereign Microsoft cloud, or the local provider the tests run — without a
second code path. Any OpenID Connect provider comes in through its discovery document.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field, replace
from typing import Literal
from urllib.parse import urlsplit

from console.errors import UsageError

Revocation = Literal["rfc7009", "github", "slack", "none"]
Shape = Literal["standard", "github", "slack"]

AUTH_METHODS = ("client_secret_basic", "client_secret_post", "private_key_jwt", "none")
"""How tbx can authenticate an app at a token endpoint, in the order it prefers them."""
OFFLINE_ACCESS = "offline_access"


@dataclass(frozen=True)
class ProviderSpec:
    id: str
    title: str
    hosts: dict[str, str]
    authorize: str
    token: str
    account: str
    """The endpoint that names the signed-in account (userinfo, /user, /me, auth.test)."""
    account_fields: tuple[str, ...]
    """Fields of the account response tried in order for a display name."""
    revoke: str | None = None
    device: str | None = None
    revocation: Revocation = "rfc7009"
    shape: Shape = "standard"
    pkce: bool = True
    refresh: bool = True
    identity_scopes: tuple[str, ...] = ()
    """Scopes asked for on top of a server's, so the account can be named."""
    default_scopes: tuple[str, ...] = ()
    scope_param: str = "scope"
    scope_separator: str = " "
    authorize_extra: dict[str, str] = field(default_factory=dict)
    confidential: bool = False
    """The provider insists on a client secret even with PKCE (GitHub, Slack)."""
    tenant: str | None = None
    auth_methods: tuple[str, ...] = ("client_secret_post", "none")
    """Client authentication the token endpoint takes, in the order tbx tries them."""
    key_algs: tuple[str, ...] = ("RS256", "ES256")
    """Signing algorithms the token endpoint takes for private_key_jwt."""
    issuer: str | None = None
    """OpenID Connect: the issuer ID tokens must name; with ``jwks_uri``, ID tokens are checked."""
    jwks_uri: str | None = None
    id_token_algs: tuple[str, ...] = ("RS256",)
    token_extra: dict[str, str] = field(default_factory=dict)
    """Parameters every token and device request carries (RFC 8707's ``resource``)."""
    redirect_issuer: str | None = None
    """RFC 9207: the issuer an ``iss`` in the sign-in's redirect must name exactly."""
    redirect_iss_required: bool = False
    """The provider says it always sends ``iss`` (its metadata's
    ``authorization_response_iss_parameter_supported``): a redirect without it is refused."""

    def url(self, template: str | None, **extra: str) -> str | None:
        if template is None:
            return None
        return template.format(**self.hosts, tenant=self.tenant or "common", **extra)

    def with_hosts(self, overrides: dict[str, str]) -> ProviderSpec:
        unknown = set(overrides) - set(self.hosts)
        if unknown:
            raise UsageError(
                f"provider {self.id} has no host named {', '.join(sorted(unknown))}; "
                f"its hosts are {', '.join(sorted(self.hosts))}"
            )
        for url in overrides.values():
            require_secure(url)
        return replace(self, hosts={**self.hosts, **{k: v.rstrip("/") for k, v in overrides.items()}})

    def with_tenant(self, tenant: str | None) -> ProviderSpec:
        return replace(self, tenant=tenant) if tenant else self

    @property
    def supports_device(self) -> bool:
        return self.device is not None

    @property
    def supports_revocation(self) -> bool:
        return self.revocation != "none" and self.revoke is not None

    @property
    def checks_id_tokens(self) -> bool:
        return self.issuer is not None and self.jwks_uri is not None

    def scopes_for(self, requested: list[str] | tuple[str, ...] | None) -> list[str]:
        """What a sign-in asks for: the requested scopes (the provider's defaults when none)
        plus what tbx needs to name the account and to refresh: requested scopes add to
        those, never replace them."""
        wanted = list(requested) if requested else list(self.default_scopes)
        return list(dict.fromkeys([*wanted, *self.identity_scopes]))

    def authorize_params(self, scopes: list[str]) -> dict[str, str]:
        """Extra authorization request parameters. OIDC Core §11: a refresh token for
        ``offline_access`` is issued only when the user was asked for consent."""
        extra = dict(self.authorize_extra)
        if OFFLINE_ACCESS in scopes and self.shape == "standard" and self.checks_id_tokens:
            extra["prompt"] = "consent"
        return extra


def require_secure(url: str) -> str:
    """OAuth endpoints must be HTTPS; plain HTTP only to this machine (RFC 8252 loopback)."""
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return url
    if parts.scheme == "http" and parts.hostname and _is_loopback(parts.hostname):
        return url
    raise UsageError(f"OAuth endpoint {url!r} must use https:// (plain http only to 127.0.0.1 or localhost)")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


BUILTIN: dict[str, ProviderSpec] = {
    spec.id: spec
    for spec in (
        ProviderSpec(
            id="github",
            title="GitHub",
            hosts={"web": "https://github.com", "api": "https://api.github.com"},
            authorize="{web}/login/oauth/authorize",
            token="{web}/login/oauth/access_token",
            device="{web}/login/device/code",
            account="{api}/user",
            account_fields=("login",),
            revoke="{api}/applications/{client_id}/token",
            revocation="github",
            shape="github",
            default_scopes=("repo",),
            confidential=True,
        ),
        ProviderSpec(
            id="google",
            title="Google",
            hosts={
                "accounts": "https://accounts.google.com",
                "oauth2": "https://oauth2.googleapis.com",
                "oidc": "https://openidconnect.googleapis.com",
            },
            authorize="{accounts}/o/oauth2/v2/auth",
            token="{oauth2}/token",
            device="{oauth2}/device/code",
            revoke="{oauth2}/revoke",
            account="{oidc}/v1/userinfo",
            account_fields=("email", "sub"),
            identity_scopes=("openid", "email"),
            default_scopes=("https://www.googleapis.com/auth/drive.readonly",),
            # Google hands out a refresh token only for offline access asked with consent.
            authorize_extra={"access_type": "offline", "prompt": "consent"},
        ),
        ProviderSpec(
            id="microsoft",
            title="Microsoft Entra",
            hosts={"login": "https://login.microsoftonline.com", "graph": "https://graph.microsoft.com"},
            authorize="{login}/{tenant}/oauth2/v2.0/authorize",
            token="{login}/{tenant}/oauth2/v2.0/token",
            device="{login}/{tenant}/oauth2/v2.0/devicecode",
            account="{graph}/v1.0/me",
            account_fields=("userPrincipalName", "mail", "id"),
            revocation="none",
            identity_scopes=("openid", "offline_access", "User.Read"),
            default_scopes=("User.Read",),
        ),
        ProviderSpec(
            id="slack",
            title="Slack",
            hosts={"web": "https://slack.com"},
            authorize="{web}/oauth/v2/authorize",
            token="{web}/api/oauth.v2.access",
            account="{web}/api/auth.test",
            account_fields=("user", "user_id"),
            revoke="{web}/api/auth.revoke",
            revocation="slack",
            shape="slack",
            pkce=False,
            # The user token (xoxp-) comes from user scopes; "scope" would ask for a bot.
            scope_param="user_scope",
            scope_separator=",",
            default_scopes=("channels:read", "chat:write"),
            confidential=True,
        ),
    )
}


def oidc_spec(provider_id: str, title: str, discovery: dict[str, object], issuer: str) -> ProviderSpec:
    """A provider from its OpenID Connect discovery document."""

    def endpoint(key: str, required: bool = True) -> str | None:
        value = discovery.get(key)
        if isinstance(value, str) and value:
            return require_secure(value)
        if required:
            raise UsageError(f"the discovery document of {issuer} has no {key}; is this an OpenID Connect issuer?")
        return None

    if str(discovery.get("issuer", "")).rstrip("/") != issuer.rstrip("/"):
        raise UsageError(
            f"{issuer} published a discovery document for issuer {discovery.get('issuer')!r}; "
            "use the exact issuer URL"
        )
    methods = discovery.get("code_challenge_methods_supported") or []
    scopes_supported = _strings(discovery.get("scopes_supported"))
    offline = (OFFLINE_ACCESS,) if OFFLINE_ACCESS in scopes_supported else ()
    # OpenID Connect Discovery §3: no list means client_secret_basic only.
    auth = _strings(discovery.get("token_endpoint_auth_methods_supported")) or ["client_secret_basic"]
    return ProviderSpec(
        id=provider_id,
        title=title,
        hosts={},
        authorize=endpoint("authorization_endpoint") or "",
        token=endpoint("token_endpoint") or "",
        device=endpoint("device_authorization_endpoint", required=False),
        revoke=endpoint("revocation_endpoint", required=False),
        revocation="rfc7009" if discovery.get("revocation_endpoint") else "none",
        account=endpoint("userinfo_endpoint") or "",
        account_fields=("email", "preferred_username", "sub"),
        identity_scopes=("openid", "email", *offline),
        # No methods listed means the provider did not say; PKCE is harmless to send then.
        pkce=not methods or "S256" in methods,
        auth_methods=tuple(m for m in AUTH_METHODS if m in auth),
        key_algs=tuple(_strings(discovery.get("token_endpoint_auth_signing_alg_values_supported")))
        or ("RS256", "ES256"),
        issuer=str(discovery["issuer"]),  # exactly as published: ID tokens must carry this very string
        jwks_uri=endpoint("jwks_uri"),
        id_token_algs=tuple(_strings(discovery.get("id_token_signing_alg_values_supported"))) or ("RS256",),
    )


def _strings(value: object) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list) else []


def is_oidc(provider_id: str) -> bool:
    return provider_id.startswith("oidc:")


def check_provider_id(provider_id: str) -> str:
    if provider_id in BUILTIN:
        return provider_id
    if is_oidc(provider_id) and len(provider_id) > 5:
        return provider_id
    if provider_id == "mcp":
        raise UsageError("sign-ins to remote MCP servers start from the server: 'tbx server login TOOLBOX/SERVER' "
                         "(or the server's URL)")
    raise UsageError(
        f"unknown provider {provider_id!r}: use one of {', '.join(BUILTIN)} or oidc:NAME for an OpenID Connect provider"
    )
