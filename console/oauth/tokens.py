"""The token set of a connection, as kept (encrypted) in the vault.

A token response is normalised into a ``TokenSet`` as soon as it arrives, so nothing
past the client module knows that Slack nests the user token or that GitHub writes its
scopes with commas.
"""

from __future__ import annotations

import json
import time
from typing import Any

from pydantic import BaseModel, ConfigDict

from console.model import Secret

TOKEN_SET_PREFIX = "oauth/"
"""Secrets named ``oauth/<connection id>`` hold a token set (JSON), not a single value."""


class TokenSet(BaseModel):
    model_config = ConfigDict(extra="forbid")

    access_token: str
    token_type: str = "Bearer"
    refresh_token: str | None = None
    expires_at: float | None = None
    """Unix time the access token stops working; ``None`` when the provider gave no expiry."""
    refresh_expires_at: float | None = None
    scopes: list[str] = []
    issued_at: float | None = None
    """Unix time the access token was issued (None in token sets kept before it was recorded)."""
    subject: str | None = None
    """OpenID Connect: the ``sub`` of the verified ID token, the account's stable id."""

    def __repr__(self) -> str:
        return f"TokenSet(expires_at={self.expires_at!r}, scopes={self.scopes!r}, tokens=<hidden>)"

    __str__ = __repr__

    def expires_within(self, seconds: float, now: float | None = None) -> bool:
        if self.expires_at is None:
            return False
        return self.expires_at - (time.time() if now is None else now) <= seconds

    def refresh_margin(self, wanted: float, fraction: float = 0.25) -> float:
        """How long before expiry to refresh: ``wanted``, but never more than ``fraction``
        of the token's lifetime, or a token shorter-lived than the margin would be
        refreshed on every use."""
        if self.expires_at is None or self.issued_at is None:
            return wanted
        return max(0.0, min(wanted, (self.expires_at - self.issued_at) * fraction))

    @classmethod
    def from_response(
        cls, token: dict[str, Any], separator: str = " ", previous: TokenSet | None = None, now: float | None = None
    ) -> TokenSet:
        """``previous`` fills what a refresh response leaves out (the refresh token at
        providers that do not rotate it, the scopes at those that do not repeat them)."""
        now = time.time() if now is None else now
        raw_scope = token.get("scope")
        if isinstance(raw_scope, list):
            scopes = [str(s) for s in raw_scope]
        elif isinstance(raw_scope, str) and raw_scope:
            scopes = [s for s in raw_scope.replace(",", " ").split() if s] if separator == "," else raw_scope.split()
        else:
            scopes = list(previous.scopes) if previous else []
        expires_at = _deadline(token.get("expires_in"), now)
        if expires_at is None and token.get("expires_at") is not None:
            expires_at = float(token["expires_at"])
        refresh = token.get("refresh_token") or (previous.refresh_token if previous else None)
        refresh_expires_at = _deadline(token.get("refresh_token_expires_in"), now)
        if refresh_expires_at is None and previous and refresh == previous.refresh_token:
            refresh_expires_at = previous.refresh_expires_at
        return cls(
            access_token=str(token["access_token"]),
            token_type=str(token.get("token_type") or "Bearer"),
            refresh_token=refresh,
            expires_at=expires_at,
            refresh_expires_at=refresh_expires_at,
            scopes=scopes,
            issued_at=now,
            subject=previous.subject if previous else None,
        )

    def to_secret_value(self) -> str:
        return self.model_dump_json()

    @classmethod
    def from_secret(cls, secret: Secret) -> TokenSet:
        return cls.model_validate_json(secret.value)


def _deadline(seconds: Any, now: float) -> float | None:
    try:
        return now + float(seconds) if seconds is not None else None
    except (TypeError, ValueError):
        return None


def secret_pairs(secret: Secret) -> list[tuple[str, str]]:
    """(name, value) pairs a redactor must hide for one vault secret: a token set stands
    for its tokens, which is what could turn up in a server's output."""
    if not secret.name.startswith(TOKEN_SET_PREFIX):
        return [(secret.name, secret.value)]
    try:
        data = json.loads(secret.value)
    except ValueError:
        return [(secret.name, secret.value)]
    return [
        (f"{secret.name}/{part}", data[part])
        for part in ("access_token", "refresh_token")
        if isinstance(data.get(part), str) and data[part]
    ]
