"""A real gateway in a background thread, and agents that talk to it with the mcp SDK."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from console.gateway.service import Gateway
from console.paths import Paths
from console.workspace import Workspace


class RunningGateway:
    """``tbx gateway serve`` in a thread: its own event loop and its own vault handle,
    exactly as a separate process would have."""

    def __init__(self, paths: Paths, toolbox: str = "local", control_socket: str | None = None) -> None:
        self.paths, self.toolbox, self.control_socket = paths, toolbox, control_socket
        self.gateway: Gateway | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.thread: threading.Thread | None = None
        self.error: BaseException | None = None

    @property
    def url(self) -> str:
        assert self.gateway is not None
        return self.gateway.url

    def start(self, timeout: float = 60.0) -> RunningGateway:
        def run() -> None:
            self.loop = asyncio.new_event_loop()
            try:
                self.gateway = Gateway(Workspace.open(self.paths), self.toolbox, port=0,
                                       control_socket=self.control_socket)
                self.loop.run_until_complete(self.gateway.run())
            except BaseException as exc:  # noqa: BLE001 - surfaced to the test
                self.error = exc
            finally:
                self.loop.close()

        self.thread = threading.Thread(target=run, name="test-gateway", daemon=True)
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not (self.gateway and self.gateway.started.is_set()):
            if self.error or time.monotonic() > deadline:
                raise RuntimeError(f"the gateway did not start: {self.error!r}")
            time.sleep(0.02)
        return self

    def call(self, fn: Callable[[Gateway], Any]) -> Any:
        """Run ``fn(gateway)`` on the gateway's loop and return its result."""
        assert self.loop is not None and self.gateway is not None
        done = threading.Event()
        box: dict[str, Any] = {}

        def run() -> None:
            try:
                box["value"] = fn(self.gateway)
            except BaseException as exc:  # noqa: BLE001
                box["error"] = exc
            done.set()

        self.loop.call_soon_threadsafe(run)
        done.wait(10)
        if "error" in box:
            raise box["error"]
        return box.get("value")

    def flush_audit(self) -> None:
        assert self.loop is not None and self.gateway is not None
        asyncio.run_coroutine_threadsafe(self.gateway.writer.flush(checkpoint=True), self.loop).result(10)

    def stop(self) -> None:
        if self.gateway is not None and self.loop is not None and self.thread is not None:
            self.loop.call_soon_threadsafe(self.gateway.stop)
            self.thread.join(30)


@asynccontextmanager
async def agent(url: str, token: str, endpoint: str = "/mcp",
                on_message: Callable[[Any], Any] | None = None, verify: Any = True,
                mode: str = "legacy", **callbacks: Any) -> AsyncIterator[Client]:
    """An MCP client of an agent, the way agents connect: Streamable HTTP, bearer token;
    ``mode`` as the SDK's Client takes it (``"2026-07-28"``, ``"auto"``: the stateless era)."""

    async def handler(message: Any) -> None:
        if on_message is not None:
            on_message(message)

    async with (
        httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=30.0, verify=verify) as http,
        Client(streamable_http_client(url + endpoint, http_client=http), mode=mode,
               message_handler=handler, **callbacks) as client,
    ):
        yield client


async def tool_names(client: Client) -> list[str]:
    return sorted(tool.name for tool in (await client.list_tools(cache_mode="bypass")).tools)


async def eventually(check: Callable[[], Any], within: float, step: float = 0.05) -> float:
    """Wait until ``await check()`` is truthy; return how long it took."""
    started = time.monotonic()
    while True:
        if await check():
            return time.monotonic() - started
        if time.monotonic() - started > within:
            raise AssertionError(f"not true within {within}s")
        await asyncio.sleep(step)
