"""Input a server of the 2026-07-28 era asks for in its result, asked of the agent.

A server of that era sends no requests of its own: a call it cannot finish without
input ends with ``resultType: input_required``, its ``inputRequests`` and an opaque
``requestState``, and its client calls again with ``inputResponses`` and that state.
The gateway is that client. Each request is asked of the agent whose call it is, under
the same checks as a request of a handshake-era server (``client_requests``: the
owner's switch for the server, the capability the agent declared, an answer that fits
its schema, one answer, in time); the call then goes again with the answers, until the
server completes it. How the agent is asked is its era's: a request on its session's
stream, or an input-required result of the gateway's own (``mrtr``).

The server's ``requestState`` stays in the gateway: an agent can neither read nor
change what the server keeps between rounds.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

from console.gateway import jsonrpc as rpc
from console.gateway.client_requests import KINDS
from console.gateway.exchange import Refused
from console.gateway.forwarder import RawResponse
from console.runtime.session import AskRefused

MAX_ROUNDS = 16
"""A call that still wants input after this many answers is a server in a loop."""
MAX_REQUESTS = 8
"""Requests in one round (as many as a server may have waiting at once)."""

STATE_ONLY_PAUSE = (0.05, 0.25)
"""First and longest wait before sending again a call the server answered with only its state."""

Resend = Callable[[dict[str, Any]], Awaitable[RawResponse]]
"""The call again, with these extra params (``inputResponses``, ``requestState``)."""
Ask = Callable[[str, dict[str, Any]], Awaitable[dict[str, Any]]]
"""Asks the call's agent for one request of a kind; raises ``AskRefused``."""


def input_wanted(response: RawResponse) -> dict[str, Any] | None:
    """The input-required result in the response, if it is one (most are not: a byte
    search decides without parsing a large result)."""
    if b'"input_required"' not in response.line:
        return None
    message = response.decoded or json.loads(response.line)
    result = message.get("result") if isinstance(message, dict) else None
    return result if isinstance(result, dict) and result.get("resultType") == "input_required" else None


async def complete(server: str, first: RawResponse, resend: Resend, ask: Ask) -> RawResponse:
    """The call's final response: each round's requests asked (at once, so an agent of the
    new era is asked for them in one result), the answers sent back."""
    response = first
    pause = STATE_ONLY_PAUSE[0]
    for _round in range(MAX_ROUNDS):
        wanted = input_wanted(response)
        if wanted is None:
            return response
        requests = wanted.get("inputRequests") or {}
        state = wanted.get("requestState")
        if not isinstance(requests, dict) or len(requests) > MAX_REQUESTS or not (requests or isinstance(state, str)):
            raise Refused(f"server {server} asked for input with {_count(requests)} requests (at most "
                          f"{MAX_REQUESTS}, or none with a requestState)", code=rpc.SERVER_UNAVAILABLE,
                          reason="invalid-input-request", decision="error")
        again: dict[str, Any] = {} if state is None else {"requestState": state}
        if requests:
            again["inputResponses"] = await _answers(server, requests, ask)
        else:
            # Only its state: the server is not done yet and says when to ask again by
            # nothing but this (as the SDK's own client does, wait a little longer each time).
            await asyncio.sleep(pause)
            pause = min(pause * 2, STATE_ONLY_PAUSE[1])
        response = await resend(again)
    raise Refused(f"server {server} still asked for input after {MAX_ROUNDS} rounds of answers",
                  code=rpc.SERVER_UNAVAILABLE, reason="too-many-input-rounds", decision="error")


async def _answers(server: str, requests: dict[str, Any], ask: Ask) -> dict[str, Any]:
    keys = list(requests)
    try:
        answers = await asyncio.gather(*(_ask_one(server, requests[key], ask) for key in keys))
    except AskRefused as refused:
        raise Refused(f"server {server} needs input the gateway did not get: {refused}",
                      code=refused.code, reason=f"input-{refused.reason}",
                      decision="error" if refused.reason in ("timeout", "agent-error", "invalid-answer")
                      else "deny") from None
    return dict(zip(keys, answers, strict=True))


async def _ask_one(server: str, request: Any, ask: Ask) -> dict[str, Any]:
    method = request.get("method") if isinstance(request, dict) else None
    kind = KINDS.get(method) if isinstance(method, str) else None
    if kind is None:
        raise AskRefused(f"server {server} asked for {str(method)[:60]!r}, which is not a request an agent answers",
                         "unknown-request")
    params = request.get("params")
    return await ask(kind, params if isinstance(params, dict) else {})


def _count(requests: Any) -> int | str:
    return len(requests) if isinstance(requests, dict) else "malformed"
