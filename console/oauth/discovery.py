"""OpenID Connect discovery (the issuer's ``/.well-known/openid-configuration``)."""

from __future__ import annotations

import functools
from typing import Any

import requests

from console.errors import TbxError
from console.oauth.providers import require_secure


@functools.lru_cache(maxsize=32)
def discover(issuer: str, timeout: float = 15.0) -> dict[str, Any]:
    url = require_secure(issuer.rstrip("/")) + "/.well-known/openid-configuration"
    try:
        response = requests.get(url, timeout=timeout, headers={"Accept": "application/json"})
        response.raise_for_status()
        document = response.json()
    except (requests.RequestException, ValueError) as exc:
        raise TbxError(f"cannot read the OpenID configuration at {url} ({type(exc).__name__}); check the issuer URL") from None
    if not isinstance(document, dict):
        raise TbxError(f"{url} is not an OpenID configuration document; check the issuer URL")
    return document
