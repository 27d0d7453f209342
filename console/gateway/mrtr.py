"""Input-required results (2026-07-28): a server's request to the agent, across requests.

A stateless agent cannot be sent a request in the middle of its call. When a server
asks (sampling, elicitation, roots: ``client_requests`` decides whether it may, and
whom) during such a call, the gateway answers the agent's call with an input-required
result naming the server's requests, and keeps the call running upstream. The agent
retries the same call with its answers and the ``requestState`` it was given; the
gateway hands the answers to the waiting server and answers the retry with whatever
comes next: the result, or more requests.

A ``requestState`` is a random name that belongs to one agent and one call (endpoint,
item, arguments): another agent's, a made-up one, or one for another call all get the
same refusal. A call nobody comes back for ends as any call whose agent does not
answer: the server's request times out, and the call is forgotten soon after.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from console.gateway import jsonrpc as rpc
from console.gateway.exchange import Exchange, Refused
from console.gateway.forwarder import RawResponse
from console.gateway.sessions import AgentSession

Answer = Callable[[AgentSession, dict[str, Any], int], str | None]


class FollowingSink:
    """Where a stateless call's progress and log messages go: the response stream of the
    request that waits for the call now. A call parked for its agent's input outlives the
    request that started it; the agent's retry takes its messages over from then on."""

    def __init__(self, target: Callable[[bytes], None] | None) -> None:
        self.target = target

    def __call__(self, message: bytes) -> None:
        if self.target is not None:
            self.target(message)


class InputRequired(Exception):
    """The call waits for the agent: ``result`` is the input-required result to send."""

    def __init__(self, result: dict[str, Any]) -> None:
        super().__init__("input required")
        self.result = result


@dataclass(eq=False)
class _Parked:
    agent_id: str
    key: str
    session: AgentSession
    task: asyncio.Task[RawResponse]
    asked: asyncio.Queue[bytes]
    events: Callable[[bytes], None] | None


class InputRequests:
    def __init__(self, keep_seconds: float) -> None:
        self.keep_seconds = keep_seconds
        self._parked: dict[str, _Parked] = {}

    async def call(self, x: Exchange, session: AgentSession, asked: asyncio.Queue[bytes],
                   upstream: Awaitable[RawResponse]) -> RawResponse:
        task = asyncio.ensure_future(upstream)
        parked = _Parked(x.identity.agent_id, _key(x), session, task, asked, x.events)  # type: ignore[union-attr]
        return await self._wait(x, parked)

    async def resume(self, x: Exchange, answer: Answer) -> RawResponse:
        """A retry with ``inputResponses``: hand them over, then wait as the call did."""
        state, responses = x.params.get("requestState"), x.params.get("inputResponses")
        if not isinstance(state, str) or len(state) > 100 or not isinstance(responses, dict | None):
            raise Refused("requestState must be the string the gateway gave, inputResponses an object",
                          code=rpc.INVALID_PARAMS, reason="invalid-params")
        parked = self._parked.get(state)
        if parked is None or parked.agent_id != x.identity.agent_id or parked.key != _key(x):  # type: ignore[union-attr]
            # Looked at, never taken: another agent presenting it cannot end the owner's call.
            raise Refused("requestState names no call of this agent waiting for input; call again without it",
                          code=rpc.INVALID_PARAMS, reason="unknown-request-state")
        del self._parked[state]
        if isinstance(parked.events, FollowingSink):
            parked.events.target = x.events
        if responses is not None:
            for request_id, response in responses.items():
                message = {"jsonrpc": "2.0", "id": request_id, "result": response}
                why = answer(parked.session, message, len(rpc.dumps(response)))
                if why is not None:  # the server's request stays unanswered and times out
                    x.detail.setdefault("answers_refused", []).append(why)
        x.detail["resumed"] = True
        return await self._wait(x, parked)

    async def _wait(self, x: Exchange, parked: _Parked) -> RawResponse:
        getter = asyncio.ensure_future(parked.asked.get())
        try:
            await asyncio.wait({parked.task, getter}, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            parked.task.cancel()  # the agent hung up: its call ends upstream too
            raise
        finally:
            if not getter.done():
                getter.cancel()
        if parked.task.done():
            if getter.done():
                parked.asked.put_nowait(getter.result())
            return parked.task.result()
        lines = [getter.result()]
        while not parked.asked.empty():
            lines.append(parked.asked.get_nowait())
        requests = {}
        for line in lines:
            message = json.loads(line)
            requests[str(message["id"])] = {"method": message["method"], "params": message.get("params") or {}}
        state = secrets.token_urlsafe(24)
        self._parked[state] = parked
        parked.task.add_done_callback(lambda task: self._forget(state, task))
        x.detail["input_required"] = sorted(r["method"] for r in requests.values())
        raise InputRequired({"resultType": "input_required", "inputRequests": requests, "requestState": state})

    async def close(self) -> None:
        """The gateway stops: calls parked for their agents end upstream too (their agents,
        coming back, would find nothing to resume anyway)."""
        parked, self._parked = list(self._parked.values()), {}
        for waiting in parked:
            waiting.task.cancel()
        await asyncio.gather(*(waiting.task for waiting in parked), return_exceptions=True)

    def _forget(self, state: str, task: asyncio.Task[RawResponse]) -> None:
        """A parked call ended: its agent may still come back for the result a moment."""
        if not task.cancelled():
            task.exception()  # retrieved here: a call nobody came back for is not an error to log
        asyncio.get_running_loop().call_later(self.keep_seconds, self._parked.pop, state, None)


def _key(x: Exchange) -> str:
    """The call a ``requestState`` belongs to: the same endpoint, item and arguments."""
    item = x.item
    assert item is not None
    text = json.dumps([x.endpoint, item.server_id, item.ref, x.params.get("arguments") or {}], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()
