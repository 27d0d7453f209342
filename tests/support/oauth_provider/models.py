"""In-memory records of the local OAuth provider, shaped for authlib's model mixins.

Pure data: no HTTP, no authlib server. Everything is reached under ``Store.lock``.
"""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from authlib.oauth2.rfc6749 import AuthorizationCodeMixin, ClientMixin, TokenMixin, scope_to_list
from authlib.oauth2.rfc8628 import DeviceCredentialMixin

#: Scopes every client may ask for on top of the ones it was registered with (OIDC's own).
STANDARD_SCOPES = frozenset({"openid", "email", "profile", "offline_access"})
#: Methods a confidential client may use at the token, device and revocation endpoints.
SECRET_METHODS = frozenset({"client_secret_basic", "client_secret_post"})
GRANT_TYPES = frozenset({"authorization_code", "refresh_token", "urn:ietf:params:oauth:grant-type:device_code"})
#: RFC 6749 §4.1.2 recommends at most ten minutes for an authorization code.
CODE_TTL = 600.0


@dataclass(frozen=True)
class User:
    """The account that logs in; only its e-mail matters here."""

    email: str

    def get_user_id(self) -> str:
        return self.email


@dataclass
class Client(ClientMixin):
    client_id: str
    client_secret: str | None
    scopes: tuple[str, ...]
    auth_method: str | None = None
    """The one client authentication method this app was registered for; None: either
    secret method (as providers that treat basic and post alike)."""

    def __repr__(self) -> str:  # never the secret
        kind = "public" if self.client_secret is None else "confidential"
        return f"Client({self.client_id!r}, {kind})"

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> str | None:
        return None  # loopback clients always send their own redirect_uri

    def get_allowed_scope(self, scope: str | None) -> str | None:
        if not scope:
            return " ".join(self.scopes)
        allowed = set(self.scopes) | STANDARD_SCOPES
        wanted = scope_to_list(scope)
        if any(s not in allowed for s in wanted):
            return None  # authlib turns this into invalid_scope
        return " ".join(wanted)

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        # RFC 8252 §7.3: a native app's loopback redirect may use any port, so the host
        # and scheme are what is registered.
        parts = urlsplit(redirect_uri)
        return parts.scheme == "http" and parts.hostname in ("127.0.0.1", "::1") and not parts.fragment

    def check_client_secret(self, client_secret: str) -> bool:
        return self.client_secret is not None and secrets.compare_digest(self.client_secret, client_secret)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        if method in ("token_owner", "device_client_id"):  # shape-specific, decided by the method itself
            return True
        if self.client_secret is None:
            return method == "none"
        if self.auth_method is not None:
            return method == self.auth_method
        return method in SECRET_METHODS

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code"

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in GRANT_TYPES


@dataclass
class AuthCode(AuthorizationCodeMixin):
    code: str = field(repr=False)
    client_id: str
    redirect_uri: str
    scope: str
    user: User
    shape: str
    family: str
    offline: bool
    code_challenge: str | None = field(default=None, repr=False)
    code_challenge_method: str | None = None
    nonce: str | None = None
    expires_at: float = field(default_factory=lambda: time.time() + CODE_TTL)
    used: bool = False

    def get_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope


@dataclass
class Token(TokenMixin):
    access_token: str
    refresh_token: str | None
    client_id: str
    scope: str
    user: User
    shape: str
    family: str
    access_expires_at: float | None  # None: a token that never expires (GitHub OAuth app, Slack)
    refresh_expires_at: float | None
    access_revoked: bool = False
    refresh_revoked: bool = False

    def __repr__(self) -> str:
        return f"Token({self.shape}, client={self.client_id!r}, family={self.family!r})"

    def check_client(self, client: Client) -> bool:
        return self.client_id == client.client_id

    def get_scope(self) -> str:
        return self.scope

    def get_expires_in(self) -> int:
        return 0 if self.access_expires_at is None else max(0, int(self.access_expires_at - time.time()))

    def is_expired(self) -> bool:
        return self.access_expires_at is not None and self.access_expires_at <= time.time()

    def is_revoked(self) -> bool:
        return self.access_revoked

    def access_live(self) -> bool:
        return not self.access_revoked and not self.is_expired()

    def refresh_live(self) -> bool:
        if self.refresh_token is None or self.refresh_revoked:
            return False
        return self.refresh_expires_at is None or self.refresh_expires_at > time.time()

    def get_user(self) -> User:
        return self.user


@dataclass
class DeviceCode(DeviceCredentialMixin):
    device_code: str = field(repr=False)
    user_code: str
    client_id: str
    scope: str
    shape: str
    offline: bool
    expires_at: float
    interval: float
    last_poll: float | None = None
    decision: tuple[User, bool] | None = None  # set by the verification page
    used: bool = False

    def get_client_id(self) -> str:
        return self.client_id

    def get_scope(self) -> str:
        return self.scope

    def get_user_code(self) -> str:
        return self.user_code

    def is_expired(self) -> bool:
        return self.expires_at <= time.time()


@dataclass
class Store:
    """Every record the provider holds. Callers hold ``lock`` while they read or write."""

    lock: threading.RLock = field(default_factory=threading.RLock)
    clients: dict[str, Client] = field(default_factory=dict)
    codes: dict[str, AuthCode] = field(default_factory=dict)
    tokens: list[Token] = field(default_factory=list)
    devices: dict[str, DeviceCode] = field(default_factory=dict)  # by device_code
    #: (shape, client_id, user) that already granted offline access once (Google's rule)
    offline_consents: set[tuple[str, str, str]] = field(default_factory=set)
    revoked: set[str] = field(default_factory=set)  # token strings killed by a revocation endpoint

    def by_access(self, access_token: str, shape: str) -> Token | None:
        return next((t for t in self.tokens if t.access_token == access_token and t.shape == shape), None)

    def by_refresh(self, refresh_token: str, shape: str) -> Token | None:
        return next((t for t in self.tokens if t.refresh_token == refresh_token and t.shape == shape), None)

    def by_user_code(self, user_code: str) -> DeviceCode | None:
        wanted = user_code.strip().upper()
        return next((d for d in self.devices.values() if d.user_code == wanted), None)

    def kill_family(self, family: str) -> list[str]:
        """Revoke every token of one grant (one code or one device authorization)."""
        killed: list[str] = []
        for t in self.tokens:
            if t.family != family:
                continue
            t.access_revoked = True
            killed.append(t.access_token)
            if t.refresh_token is not None:
                t.refresh_revoked = True
                killed.append(t.refresh_token)
        return killed
