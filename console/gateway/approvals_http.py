"""The owner's door to held calls: ``/approvals`` on the gateway's own address.

    GET  /approvals[?since=VERSION&wait=SECONDS]   the held calls (waiting for a change first)
    POST /approvals/ID   {"decision": "allow"|"deny", "sha256": ..., "minutes": N, "always": true}

Only the owner gets in: the bearer token is a control token signed with a key derived
from the vault's owner key (``mint_control_token``), which neither an agent's token nor
an owner token for acting as an agent (``auth``) can stand in for. The caller holds the
vault, so it can mint one; an agent holds neither. Host and Origin were checked before.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs

from console.gateway import jsonrpc as rpc
from console.gateway.approvals import Approvals, DecisionRefused
from console.gateway.auth import OWNER_PREFIX, mint_owner_token, verify_owner_token

Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
PREFIX = "/approvals"
DECIDER = "owner:"
MAX_BODY = 4096
MAX_WAIT = 30.0
_JSON = [(b"content-type", b"application/json"), (b"cache-control", b"no-store")]


def control_key(owner_key: bytes) -> bytes:
    """The key of control tokens: its own, so a token for one purpose is no token for the other."""
    return hmac.new(owner_key, b"tbx approvals control", hashlib.sha256).digest()


def mint_control_token(owner_key: bytes, who: str, ttl: float = 300.0) -> str:
    """A token for deciding held calls; ``who`` names the decider in the audit log."""
    return mint_owner_token(control_key(owner_key), DECIDER + who[:80], ttl)


class ApprovalControl:
    def __init__(self, approvals: Approvals, owner_key: bytes, refused: Callable[[str], None], *,
                 grants_here: bool = True) -> None:
        """``refused`` counts a refusal by its reason (the pipeline's summary of them).
        Without ``grants_here`` (a remote toolbox's gateway, whose vault is a mirror the
        next push replaces) "allow for" and "always deny" are refused: the console writes
        those grants in the owner's vault and pushes them."""
        self.approvals = approvals
        self.key = control_key(owner_key)
        self.refused = refused
        self.grants_here = grants_here

    @staticmethod
    def handles(path: str) -> bool:
        return path == PREFIX or path.startswith(PREFIX + "/")

    async def __call__(self, scope: dict[str, Any], headers: dict[bytes, bytes], receive: Receive,
                       send: Send) -> None:
        decider = self.decider(headers)
        if decider is None:
            self.refused("approvals-unauthenticated")
            await answer(send, 401, {"error": "the approvals are the owner's: send a control token"})
            return
        path, method = scope["path"].rstrip("/"), scope["method"]
        if path == PREFIX and method == "GET":
            query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
            since, wait = _number(query, "since", -1), min(_number(query, "wait", 0), MAX_WAIT)
            version = await self.approvals.changed(int(since), wait) if wait > 0 else self.approvals.version
            await answer(send, 200, {"version": version, "pending": self.approvals.listing()})
        elif path.startswith(PREFIX + "/") and method == "POST":
            await self._decide(path[len(PREFIX) + 1:], decider, receive, send)
        else:
            await answer(send, 405, {"error": f"{method} {path[:80]} is not an approvals request"})

    def decider(self, headers: dict[bytes, bytes]) -> str | None:
        """Who the control token names, or None: the one check of the owner's door."""
        scheme, _sep, token = headers.get(b"authorization", b"").decode("latin-1").partition(" ")
        if scheme.lower() != "bearer" or not token.startswith(OWNER_PREFIX):
            return None
        who = verify_owner_token(self.key, token.strip(), time.time())
        return who if who and who.startswith(DECIDER) else None

    async def _decide(self, approval_id: str, decider: str, receive: Receive, send: Send) -> None:
        body = await _body(receive)
        try:
            request = json.loads(body) if body is not None else None
        except ValueError:
            request = None
        if not isinstance(request, dict) or request.get("decision") not in ("allow", "deny") \
                or not isinstance(request.get("sha256"), str):
            await answer(send, 400, {"error": 'send {"decision": "allow" or "deny", "sha256": the call\'s hash}'})
            return
        minutes = request.get("minutes")
        if not self.grants_here and (minutes is not None or request.get("always") is not None):
            await answer(send, 400, {"error": "this toolbox's grants are kept by the console: decide allow or deny "
                                              "here and write the grant in the owner's vault"})
            return
        if minutes is not None and (isinstance(minutes, bool) or not isinstance(minutes, int | float)):
            await answer(send, 400, {"error": "minutes is a number"})
            return
        try:
            verdict = await self.approvals.decide(approval_id, allow=request["decision"] == "allow",
                                                  sha256=request["sha256"], decider=decider, minutes=minutes,
                                                  always=request.get("always") is True)
        except DecisionRefused as refused:
            await answer(send, refused.status, {"error": str(refused)})
            return
        await answer(send, 200, {"id": approval_id, "outcome": verdict.outcome})


def _number(query: dict[str, list[str]], name: str, default: float) -> float:
    try:
        return float(query[name][0])
    except (KeyError, IndexError, ValueError):
        return default


async def _body(receive: Receive) -> bytes | None:
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY:
            return None
        chunks.append(chunk)
        if not message.get("more_body"):
            return b"".join(chunks)


async def answer(send: Send, status: int, value: Any) -> None:
    body = rpc.dumps(value)
    await send({"type": "http.response.start", "status": status,
                "headers": [*_JSON, (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
