"""ID tokens of the OIDC shape (OIDC Core §2), signed RS256 with a key published at its
JWKS URI, and the faults a hostile or broken provider could put in them."""

from __future__ import annotations

import base64
import json
import time
from typing import Any, Literal

from joserfc import jwt
from joserfc.jwk import RSAKey

Fault = Literal["issuer", "audience", "expired", "nonce", "signature", "missing", "subject", "unsigned",
                "garbage", "azp"]
"""issuer/audience/nonce: another value; expired: exp an hour ago; signature: signed by a
key the JWKS does not hold; missing: no id_token at all; subject: a sub that is not the
userinfo's; unsigned: ``alg: none``; garbage: not a JWT (with a lone surrogate escaped in
it); azp: several audiences and no authorized party."""


class IdTokenSigner:
    def __init__(self) -> None:
        self.key = RSAKey.generate_key(2048, parameters={"kid": "test-sig-1", "use": "sig", "alg": "RS256"})
        self._stranger = RSAKey.generate_key(2048, parameters={"kid": "test-sig-1"})

    def jwks(self) -> dict[str, Any]:
        return {"keys": [self.key.as_dict(private=False)]}

    def mint(self, issuer: str, client_id: str, subject: str, email: str, nonce: str | None,
             fault: Fault | None) -> str | None:
        if fault == "missing":
            return None
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": issuer + "/elsewhere" if fault == "issuer" else issuer,
            "aud": "another-app" if fault == "audience" else client_id,
            "sub": "someone-else" if fault == "subject" else subject,
            "email": email,
            "iat": now - 7200 if fault == "expired" else now,
            "exp": now - 3600 if fault == "expired" else now + 3600,
        }
        if nonce is not None:
            claims["nonce"] = "not-your-nonce" if fault == "nonce" else nonce
        if fault == "azp":
            claims["aud"] = [client_id, "another-app"]
        if fault == "unsigned":
            return ".".join(_b64(part) for part in ({"alg": "none"}, claims)) + "."
        if fault == "garbage":
            return "eyJ\\ud800." + "A" * 70_000
        key = self._stranger if fault == "signature" else self.key
        return jwt.encode({"alg": "RS256", "kid": "test-sig-1"}, claims, key)


def _b64(part: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(part).encode()).rstrip(b"=").decode()
