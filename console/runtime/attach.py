"""A server's MCP stdio stream: its container's Engine API attach connection.

``POST /containers/{id}/attach`` with ``Upgrade: tcp`` hijacks the HTTP connection into
a raw duplex stream: bytes written go to the container's stdin, and its stdout and
stderr come back multiplexed in 8-byte-header frames. No ``docker`` CLI, no ports, and
nothing exposed on a network: whoever can reach the engine socket can talk to the
server, and nobody else.

Containers are created with ``OpenStdin`` and without ``StdinOnce``, so closing this
connection leaves the server running and a later attach picks the stream up again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from console.runtime.enginehttp import (
    STDERR,
    STDOUT,
    Endpoint,
    Response,
    container_path,
    demux,
    expect_ok,
    request,
)

log = logging.getLogger(__name__)

LineHandler = Callable[[bytes], None]
MAX_LINE = 64 * 1024 * 1024
"""A stdout line (one JSON-RPC message) larger than this is a broken server, not a result."""


class ChannelClosed(ConnectionError):
    """The attach stream ended: the container stopped, or the engine went away."""


class ClosingChannel:
    """How a channel ends, whatever carries it (an attach stream here, HTTP for a remote
    server): once, with a reason every close handler hears; ``aclose`` stops its task."""

    def __init__(self) -> None:
        self._close_handlers: list[Callable[[str], None]] = []
        self.closed = asyncio.Event()
        self.close_reason = ""
        self._task: asyncio.Task[None] | None = None

    def on_close(self, handler: Callable[[str], None]) -> None:
        self._close_handlers.append(handler)

    def _release(self) -> None:
        """Let go of what carries the channel (called once, as it closes)."""

    def _finish(self, reason: str) -> None:
        if self.closed.is_set():
            return
        self.close_reason = reason
        self.closed.set()
        self._release()
        for handler in tuple(self._close_handlers):
            try:
                handler(reason)
            except Exception:  # a handler's failure must not hide the close from the others
                log.exception("channel close handler failed")

    async def aclose(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._finish("closed")


class StdioChannel(ClosingChannel):
    """One attach connection: send lines to stdin, receive stdout lines and stderr lines.

    Handlers are plain callables run on the event loop for every complete line; they
    must not block (they hand lines to queues). Several handlers may watch stdout — the
    SDK transport and the gateway's forwarder each take the responses that are theirs.
    """

    def __init__(self, response: Response, container: str, stderr_lines: int = 200) -> None:
        super().__init__()
        self.container = container
        self._response = response
        self._stdout_handlers: list[LineHandler] = []
        self._stderr_handlers: list[LineHandler] = []
        self.recent_stderr: deque[str] = deque(maxlen=stderr_lines)
        self._write_lock = asyncio.Lock()

    def on_stdout(self, handler: LineHandler) -> Callable[[], None]:
        self._stdout_handlers.append(handler)
        return lambda: self._stdout_handlers.remove(handler)

    def on_stderr(self, handler: LineHandler) -> Callable[[], None]:
        self._stderr_handlers.append(handler)
        return lambda: self._stderr_handlers.remove(handler)

    def start(self) -> None:
        self._task = asyncio.create_task(self._pump(), name=f"attach:{self.container[:12]}")

    async def send(self, line: bytes) -> None:
        """Write one message; lines from concurrent callers never interleave."""
        if self.closed.is_set():
            raise ChannelClosed(self.close_reason or "the server's stdio stream is closed")
        writer = self._response.writer
        writer.write(line if line.endswith(b"\n") else line + b"\n")
        if writer.transport.get_write_buffer_size() > 65536:
            async with self._write_lock:
                await writer.drain()

    async def _pump(self) -> None:
        buffers = {STDOUT: bytearray(), STDERR: bytearray()}
        reason = "the container's stdio stream ended (server stopped)"
        try:
            async for stream, payload in demux(self._response.body_chunks()):
                buffer = buffers.get(stream)
                if buffer is None:
                    continue
                buffer += payload
                if b"\n" not in payload:
                    if len(buffer) > MAX_LINE:
                        reason = f"the server wrote a line over {MAX_LINE // 1048576} MiB without a newline"
                        break
                    continue
                *lines, rest = bytes(buffer).split(b"\n")
                buffers[stream] = bytearray(rest)
                for line in lines:
                    self._dispatch(stream, line)
        except (ConnectionError, asyncio.IncompleteReadError, OSError) as exc:
            reason = f"lost the attach connection: {exc}"
        except asyncio.CancelledError:
            reason = "closed"
            raise
        finally:
            self._finish(reason)

    def _dispatch(self, stream: int, line: bytes) -> None:
        if stream == STDOUT:
            if line.strip():
                for handler in tuple(self._stdout_handlers):
                    handler(line)
            return
        text = line.decode("utf-8", "replace").rstrip("\r")
        self.recent_stderr.append(text)
        for handler in tuple(self._stderr_handlers):
            handler(line)

    def _release(self) -> None:
        self._response.close()


async def open_channel(endpoint: Endpoint, container: str) -> StdioChannel:
    response = await request(
        endpoint,
        "POST",
        container_path(container, "attach"),
        {"stream": 1, "stdin": 1, "stdout": 1, "stderr": 1},
        upgrade=True,
    )
    if response.status not in (101, 200):
        await expect_ok(response, f"attaching to container {container[:12]}")
    channel = StdioChannel(response, container)
    channel.start()
    return channel


@asynccontextmanager
async def attached(endpoint: Endpoint, container: str) -> AsyncIterator[StdioChannel]:
    channel = await open_channel(endpoint, container)
    try:
        yield channel
    finally:
        await channel.aclose()
