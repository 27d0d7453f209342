"""The attach channel as the transport of an ``mcp`` client session.

Docker gives every attached client the container's whole stdout, so two clients
attached to one server (the gateway's long-lived session and a ``tbx call`` from a
terminal) would each see the other's responses. Each transport therefore rewrites the
ids of the requests it sends into its own namespace (``tbx-<nonce>-<n>``), takes back
only responses in that namespace, and restores the SDK's own ids on the way in.
"""

from __future__ import annotations

import json
import logging
import math
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import mcp_types as types
from mcp.client._transport import TransportStreams
from mcp.shared.message import SessionMessage

from console.runtime.attach import ChannelClosed, StdioChannel

log = logging.getLogger(__name__)


def new_namespace() -> str:
    return f"tbx-{secrets.token_hex(4)}-"


def is_response(message: dict[str, Any]) -> bool:
    return "id" in message and "method" not in message


@asynccontextmanager
async def channel_transport(channel: StdioChannel) -> AsyncIterator[TransportStreams]:
    namespace = new_namespace()
    read_send, read_recv = anyio.create_memory_object_stream[SessionMessage | Exception](math.inf)
    write_send, write_recv = anyio.create_memory_object_stream[SessionMessage](math.inf)

    marker = namespace.encode("ascii")

    def inbound(line: bytes) -> None:
        if marker not in line and b'"method"' not in line:
            return  # another client's response: skip it without decoding a possibly large result
        try:
            raw = json.loads(line)
        except ValueError:
            log.warning("server %s wrote a non-JSON line to stdout; ignored", channel.container[:12])
            return
        if not isinstance(raw, dict):
            return
        if is_response(raw):
            rid = raw.get("id")
            if not (isinstance(rid, str) and rid.startswith(namespace)):
                return  # another client's response
            tail = rid[len(namespace) :]
            raw["id"] = int(tail) if tail.isdigit() else tail
        try:
            message = types.jsonrpc_message_adapter.validate_python(raw, by_name=False)
        except ValueError as exc:
            read_send.send_nowait(exc)
            return
        read_send.send_nowait(SessionMessage(message))

    def closed(reason: str) -> None:
        read_send.close()

    unsubscribe = channel.on_stdout(inbound)
    channel.on_close(closed)

    async def writer() -> None:
        async with write_recv:
            async for session_message in write_recv:
                raw = session_message.message.model_dump(by_alias=True, mode="json", exclude_unset=True)
                if "method" in raw and "id" in raw:
                    raw["id"] = f"{namespace}{raw['id']}"
                try:
                    await channel.send(json.dumps(raw, separators=(",", ":")).encode())
                except ChannelClosed:
                    read_send.close()
                    return

    async with anyio.create_task_group() as tg:
        tg.start_soon(writer)
        try:
            yield read_recv, write_send
        finally:
            unsubscribe()
            write_send.close()
            read_send.close()
            tg.cancel_scope.cancel()
