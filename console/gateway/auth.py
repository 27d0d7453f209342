"""Who is calling: an agent's bearer token, or the owner acting as an agent.

Agent tokens are checked against the compiled policy's token hashes. The owner (the CLI's
``tbx call --as AGENT``, the console's Try screen) does not know agents' tokens — only
their hashes are kept — so it mints a short-lived token signed with a key from the vault:
the gateway then applies exactly that agent's grants, and the audit log says the owner
made the call.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import time
from dataclasses import dataclass

from console.policy import CompiledPolicy
from console.workspace import OWNER_META, Workspace

OWNER_PREFIX = "tbxo_"
OWNER_TOKEN_TTL = 300.0


@dataclass(frozen=True)
class Identity:
    agent_id: str
    on_behalf: bool = False
    """True when the owner is acting as the agent (an owner token)."""


def owner_key(ws: Workspace) -> bytes:
    """The vault's key for owner tokens, created the first time it is needed."""
    meta = ws.repos.meta.get(OWNER_META)
    if meta is None:
        with ws.change() as change:
            meta = change.repos.meta.get(OWNER_META)
            if meta is None:
                meta = {"key": base64.b64encode(os.urandom(32)).decode()}
                change.repos.meta.set(OWNER_META, meta)
                change.record("gateway.owner_key", "gateway")
    return base64.b64decode(meta["key"])


def _sign(key: bytes, payload: bytes) -> str:
    return base64.urlsafe_b64encode(hmac.new(key, payload, hashlib.sha256).digest()).decode().rstrip("=")


def mint_owner_token(key: bytes, agent_id: str, ttl: float = OWNER_TOKEN_TTL) -> str:
    payload = json.dumps({"a": agent_id, "e": int(time.time() + ttl), "n": os.urandom(8).hex()},
                         separators=(",", ":")).encode()
    body = base64.urlsafe_b64encode(payload).decode().rstrip("=")
    return f"{OWNER_PREFIX}{body}.{_sign(key, payload)}"


def verify_owner_token(key: bytes, token: str, now: float) -> str | None:
    try:
        body, mac = token[len(OWNER_PREFIX) :].split(".", 1)
        payload = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    except (ValueError, TypeError):
        return None
    # Compared as bytes: a forged signature may hold any character, which compare_digest
    # refuses as str (a TypeError, once a 500 with a traceback).
    if not hmac.compare_digest(mac.encode("utf-8", "replace"), _sign(key, payload).encode()):
        return None
    try:
        claims = json.loads(payload)
        if float(claims["e"]) < now:
            return None
        return str(claims["a"])
    except (ValueError, KeyError, TypeError):
        return None


def identify(authorization: str | None, policy: CompiledPolicy, key: bytes, now: float) -> Identity | None:
    """The identity behind an ``Authorization: Bearer ...`` header, or None."""
    if not authorization:
        return None
    scheme, _sep, token = authorization.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return None
    if token.startswith(OWNER_PREFIX):
        agent_id = verify_owner_token(key, token, now)
        entry = policy.agents.get(agent_id or "")
        return Identity(agent_id, on_behalf=True) if agent_id and entry and entry.enabled else None
    agent_id = policy.authenticate(token)
    return Identity(agent_id) if agent_id else None
