"""The ID token of an OpenID Connect sign-in, checked as OIDC Core §3.1.3.7 says.

The ID token is the provider's signed statement of who signed in, for which app, in
answer to which request: the issuer is the one discovered, the audience is this app,
it has not expired, its signature verifies with a key the issuer publishes (its JWKS,
fetched again once when a key id is unknown: providers rotate keys), and the nonce is
the one this sign-in sent. A sign-in whose ID token fails any of that is refused: the
code may have come from another provider or another request (mix-up, injection).
"""

from __future__ import annotations

import secrets
import threading
import time
from typing import Any

from console.oauth.client import OAuthFlowError
from console.oauth.providers import ProviderSpec

LEEWAY = 120
"""Seconds of clock difference tolerated for exp and iat (the user's laptop clock drifts)."""


class IdTokenInvalid(OAuthFlowError):
    """The provider's ID token did not prove this sign-in; nothing was kept."""


class _KeySets:
    """The issuers' published keys, fetched once and again only when a key is unknown."""

    def __init__(self) -> None:
        self._documents: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

    def get(self, uri: str, timeout: float, fresh: bool = False) -> dict[str, Any]:
        with self._lock:
            if not fresh and uri in self._documents:
                return self._documents[uri]
        import requests

        try:
            response = requests.get(uri, timeout=timeout, headers={"Accept": "application/json"})
            response.raise_for_status()
            document = response.json()
        except (requests.RequestException, ValueError) as exc:
            raise OAuthFlowError(f"cannot read the provider's signing keys at {uri} ({type(exc).__name__}); "
                                 "try again") from None
        if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
            raise OAuthFlowError(f"{uri} is not a JSON Web Key Set; check the provider's discovery document")
        with self._lock:
            self._documents[uri] = document
        return document


_KEY_SETS = _KeySets()


def check(spec: ProviderSpec, id_token: str, client_id: str, *, nonce: str | None, timeout: float = 15.0,
          now: float | None = None) -> dict[str, Any]:
    """The ID token's claims once every check passed; ``IdTokenInvalid`` otherwise.
    ``nonce`` is None where the flow sends none (device flow, refresh)."""
    from joserfc import jwt
    from joserfc.errors import JoseError
    from joserfc.jwk import KeySet

    assert spec.issuer is not None and spec.jwks_uri is not None
    title = spec.title

    def decode(document: dict[str, Any]) -> Any:
        return jwt.decode(id_token, KeySet.import_key_set(document), algorithms=list(spec.id_token_algs))

    try:
        try:
            token = decode(_KEY_SETS.get(spec.jwks_uri, timeout))
        except JoseError:  # a key we have not seen: the provider may have rotated its keys
            token = decode(_KEY_SETS.get(spec.jwks_uri, timeout, fresh=True))
    except (JoseError, ValueError) as exc:
        raise IdTokenInvalid(
            f"{title}'s ID token is not signed by a key the issuer publishes ({type(exc).__name__}); "
            "nothing was saved, start the sign-in again"
        ) from None
    claims = token.claims
    moment = time.time() if now is None else now
    problem = _problem(claims, spec.issuer, client_id, nonce, moment)
    if problem:
        raise IdTokenInvalid(f"{title}'s ID token {problem}; nothing was saved, start the sign-in again")
    return claims


def _problem(claims: dict[str, Any], issuer: str, client_id: str, nonce: str | None, now: float) -> str | None:
    if claims.get("iss") != issuer:
        return f"names issuer {claims.get('iss')!r}, not {issuer!r}"
    audience = claims.get("aud")
    audiences = audience if isinstance(audience, list) else [audience]
    if client_id not in audiences:
        return "is for another app (its audience is not this client id)"
    if len(audiences) > 1 and claims.get("azp") != client_id:
        return "has several audiences and does not name this app as the authorized party"
    if not isinstance(claims.get("sub"), str) or not claims["sub"]:
        return "names no subject"
    for name in ("exp", "iat"):
        if not isinstance(claims.get(name), int | float):
            return f"has no {name}"
    if claims["exp"] + LEEWAY < now:
        return "has expired (check this computer's clock)"
    if claims["iat"] - LEEWAY > now:
        return "was issued in the future (check this computer's clock)"
    if nonce is not None and not secrets.compare_digest(str(claims.get("nonce", "")), nonce):
        return "does not answer this sign-in (its nonce differs)"
    return None
