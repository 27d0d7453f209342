"""What differs between the providers the product talks to, as policy the core consults.

The wire format of each shape lives in its routes module; this module only answers
"does this grant get a refresh token", "does a refresh rotate it", "do tokens expire".
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol


class Settings(Protocol):
    """The provider's knobs, read at the moment a token is minted."""

    base: str
    access_token_ttl: float
    refresh_token_ttl: float
    rotate_refresh_tokens: bool
    device_interval: float
    device_code_ttl: float
    slow_down_increment: float
    id_token_fault: str | None


@dataclass(frozen=True)
class Shape:
    """Generic OIDC: a refresh token with every grant, rotated when the provider says so."""

    name: str
    access_prefix: str
    refresh_prefix: str
    verification_path: str | None  # None: no device flow
    pkce: bool = True
    #: revoking an access token kills its whole grant (refresh token included)
    revoke_whole_grant: bool = False
    #: the device flow takes a client_id alone, even from a client that has a secret (GitHub)
    device_flow_without_secret: bool = False
    #: signs ID tokens (OpenID Connect) for grants that include the openid scope
    id_tokens: bool = False

    def offline_for_code(self, params: Mapping[str, str], scope: str, first_consent: bool) -> bool:
        """Whether the authorize request asked for offline access (a refresh token)."""
        return True

    def offline_for_device(self, scope: str) -> bool:
        return True

    def include_refresh(self, settings: Settings, offline: bool) -> bool:
        return offline

    def rotates(self, settings: Settings) -> bool:
        return settings.rotate_refresh_tokens

    def expiring(self, settings: Settings) -> bool:
        return True


@dataclass(frozen=True)
class OidcShape(Shape):
    """OpenID Connect Core §11: a refresh token only for ``offline_access``, and from the
    authorization endpoint only when the user was asked (``prompt=consent``); ID tokens."""

    def offline_for_code(self, params: Mapping[str, str], scope: str, first_consent: bool) -> bool:
        return "offline_access" in scope.split() and "consent" in params.get("prompt", "").split()

    def offline_for_device(self, scope: str) -> bool:
        return "offline_access" in scope.split()


@dataclass(frozen=True)
class GoogleShape(Shape):
    """Google: a refresh token only for access_type=offline, and then only on the first
    consent of this user to this client or when prompt=consent forces a new one; never rotated."""

    def offline_for_code(self, params: Mapping[str, str], scope: str, first_consent: bool) -> bool:
        if params.get("access_type") != "offline":
            return False
        return first_consent or "consent" in params.get("prompt", "").split()

    def rotates(self, settings: Settings) -> bool:
        return False


@dataclass(frozen=True)
class MicrosoftShape(Shape):
    """Entra ID: a refresh token only when offline_access was asked for; always rotated."""

    def offline_for_code(self, params: Mapping[str, str], scope: str, first_consent: bool) -> bool:
        return "offline_access" in scope.split()

    def offline_for_device(self, scope: str) -> bool:
        return "offline_access" in scope.split()

    def rotates(self, settings: Settings) -> bool:
        return True


@dataclass(frozen=True)
class ExpiringTokensShape(Shape):
    """GitHub and Slack: ``rotate_refresh_tokens`` stands for the app's "expiring tokens"
    setting. On: short-lived access tokens with a rotating refresh token. Off: one access
    token that never expires and no refresh token."""

    def include_refresh(self, settings: Settings, offline: bool) -> bool:
        return settings.rotate_refresh_tokens

    def expiring(self, settings: Settings) -> bool:
        return settings.rotate_refresh_tokens


OIDC = OidcShape("oidc", "at-", "rt-", "/oidc/device/verify", id_tokens=True)
GOOGLE = GoogleShape("google", "at-", "rt-", "/google/device", revoke_whole_grant=True)
GITHUB = ExpiringTokensShape("github", "gho_", "ghr_", "/github/login/device", revoke_whole_grant=True,
                             device_flow_without_secret=True)
MICROSOFT = MicrosoftShape("microsoft", "at-", "rt-", "/microsoft/devicelogin")
SLACK = ExpiringTokensShape("slack", "xoxp-", "xoxe-1-", None, pkce=False, revoke_whole_grant=True)
