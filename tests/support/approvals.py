"""The owner's side of held calls in tests: the gateway's approvals as ``tbx approvals`` reaches them."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from console.gateway.approvals_client import GatewayApprovals, gateways
from tests.gateway.conftest import Stack
from tests.support.gateway import eventually

Listing = Callable[[Stack], Awaitable[list[dict[str, Any]]]]


def owner(stack: Stack) -> GatewayApprovals:
    return gateways(stack.ws, "local", who="test")[0]


async def pending(stack: Stack) -> list[dict[str, Any]]:
    return (await asyncio.to_thread(owner(stack).pending))[1]


async def held(stack: Stack, agent_name: str, count: int = 1, listing: Listing = pending) -> list[dict[str, Any]]:
    """The agent's held calls once there are ``count`` of them (``listing`` says which are held)."""
    found: list[dict[str, Any]] = []

    async def check() -> bool:
        nonlocal found
        found = [p for p in await listing(stack) if p["agent"] == agent_name]
        return len(found) == count

    await eventually(check, 20, 0.05)
    return found
