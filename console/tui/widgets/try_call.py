"""One call made from the Try screen, and what it brought back (no Textual).

As the owner the call goes straight to the server over its stdio stream; as an agent it
goes through the running gateway, so what comes back — refusals included — is exactly
what that agent gets. Either way the JSON-RPC exchange is captured where it crosses the
transport: the lines on the attach stream, or the HTTP bodies.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from console.errors import TbxError
from console.workspace import Workspace

OWNER = "@owner"
"""The caller value that means: directly, as the owner, no grants."""


class Cancelled(Exception):
    """The user cancelled the call before it finished."""


@dataclass
class Exchange:
    direction: str
    """``sent`` or ``received``"""
    body: bytes


@dataclass
class TryOutcome:
    target: str
    """TOOLBOX/SERVER/TOOL"""
    caller: str
    """``OWNER`` or an agent's name."""
    result: dict[str, Any] | None = None
    """The CallToolResult as JSON (``content``, ``structuredContent``, ``isError``)."""
    refusal: str | None = None
    """Why there is no result: the gateway refused, or the server could not be reached."""
    elapsed_ms: float = 0.0
    exchange: list[Exchange] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.result is not None and not self.result.get("isError")

    @property
    def via(self) -> str:
        return "as the owner (direct)" if self.caller == OWNER else f"as agent {self.caller} (through the gateway)"


def _describe(exc: BaseException) -> str:
    if isinstance(exc, BaseExceptionGroup):
        return "; ".join(_describe(e) for e in exc.exceptions)
    return str(exc) or type(exc).__name__


def _dump(result: Any) -> dict[str, Any]:
    return result.model_dump(by_alias=True, mode="json", exclude_none=True)


def call_as_owner(ws: Workspace, target: str, arguments: dict[str, Any]) -> TryOutcome:
    from console.services.server_status import call_tool

    outcome = TryOutcome(target, OWNER)
    started = time.perf_counter()
    try:
        called = call_tool(ws, target, arguments,
                           capture=lambda way, body: outcome.exchange.append(Exchange(way, bytes(body))))
        outcome.result = _dump(called.result)
    except TbxError as exc:
        outcome.refusal = str(exc)
    outcome.elapsed_ms = (time.perf_counter() - started) * 1000
    return outcome


def call_as_agent(ws: Workspace, url: str, agent: str, target: str, arguments: dict[str, Any],
                  cancelled: Callable[[], bool]) -> TryOutcome:
    """Through the gateway at ``url``; raises ``Cancelled`` as soon as ``cancelled()``."""
    import httpx2

    from console.gateway.agentcall import call_as

    outcome = TryOutcome(target, agent)

    async def run() -> None:
        call = asyncio.ensure_future(call_as(
            ws, url, agent, target, arguments,
            capture=lambda way, body: outcome.exchange.append(Exchange(way, bytes(body)))))
        while not call.done():
            await asyncio.wait({call}, timeout=0.1)
            if cancelled() and not call.done():
                call.cancel()
                raise Cancelled
        outcome.result = _dump(call.result())

    started = time.perf_counter()
    try:
        asyncio.run(run())
    except TbxError as exc:
        outcome.refusal = str(exc).removeprefix(f"as {agent}: ")
    except (OSError, httpx2.HTTPError, ExceptionGroup) as exc:
        outcome.refusal = f"could not reach the gateway at {url}: {_describe(exc)}"
    outcome.elapsed_ms = (time.perf_counter() - started) * 1000
    return outcome
