"""Bytes both ways between a proxy client and the host it reached.

Each direction reads a bounded chunk and waits until the other side took it before
reading more, so a peer that stops reading holds at most one chunk in the proxy. An end
of stream on one side is passed on as a half-close and the other direction carries on
(a client may finish its request before the answer comes). The tunnel ends when both
directions have ended, when either side fails, or when no byte has moved either way
for ``idle_timeout`` seconds.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

CHUNK = 64 * 1024

Streams = tuple[asyncio.StreamReader, asyncio.StreamWriter]


async def pipe(
    client: Streams,
    upstream: Streams,
    idle_timeout: float,
    count: Callable[[int, int], None],
) -> None:
    """Carry bytes until the tunnel ends; ``count(up, down)`` hears every chunk moved."""
    loop = asyncio.get_running_loop()
    last = loop.time()

    async def one_way(src: asyncio.StreamReader, dst: asyncio.StreamWriter, up: bool) -> None:
        nonlocal last
        while data := await src.read(CHUNK):
            dst.write(data)
            count(len(data), 0) if up else count(0, len(data))
            await dst.drain()
            last = loop.time()
        if dst.can_write_eof():
            dst.write_eof()

    pending = {
        asyncio.create_task(one_way(client[0], upstream[1], True)),
        asyncio.create_task(one_way(upstream[0], client[1], False)),
    }
    try:
        while pending:
            quiet = loop.time() - last
            if quiet >= idle_timeout:
                return
            done, pending = await asyncio.wait(
                pending, timeout=idle_timeout - quiet, return_when=asyncio.FIRST_COMPLETED
            )
            if any(not task.cancelled() and task.exception() for task in done):
                return
    finally:
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
