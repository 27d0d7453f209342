"""Raw JSON-RPC forwarding over a server's attach channel, shared by all agents.

The gateway's upstream session with a server is the supervisor's: the SDK did the
handshake and keeps pinging. Calls from agents do not go through the SDK's models:
the request is written as one JSON line with an id in the gateway's own namespace
(``tbxg-<nonce>-<n>``), and the response line is matched by a byte search for that id,
so a large tool result is never parsed — only its id literal is swapped back to the
agent's. Lines that are not ours are left to the SDK transport on the same channel.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from console.gateway.jsonrpc import JsonId, dumps, splice_id
from console.runtime.attach import ChannelClosed, StdioChannel


_CANCELLED = b'"notifications/cancelled"'


class UpstreamFailed(Exception):
    """The server went away (or the call timed out) before answering."""


class Cancelled(UpstreamFailed):
    """The request was cancelled (by the server, or by its agent) before an answer."""


@dataclass(frozen=True)
class RawResponse:
    line: bytes
    id_span: tuple[int, int] | None
    """Where the id literal sits in ``line``; None when the line had to be decoded."""
    decoded: dict[str, Any] | None = None

    def for_caller(self, request_id: JsonId) -> bytes:
        """The response line with the caller's id in place of ours."""
        if self.id_span is not None:
            return splice_id(self.line, self.id_span, request_id)
        assert self.decoded is not None
        return dumps({**self.decoded, "id": request_id})


class Forwarder:
    def __init__(self, channel: StdioChannel, envelope: dict[str, Any] | None = None) -> None:
        self.channel = channel
        self.envelope = envelope
        """What every request carries in ``_meta`` to a server of the 2026-07-28 era
        (None: the handshake era, whose session says it once)."""
        self.namespace = f"tbxg-{secrets.token_hex(4)}-"
        self._marker = self.namespace.encode("ascii")
        self._id_pattern = re.compile(rb'"id"\s*:\s*"' + re.escape(self._marker) + rb'(\d+)"')
        self._counter = itertools.count(1)
        self._pending: dict[int, asyncio.Future[RawResponse]] = {}
        self._on_notification: Callable[[bytes], None] | None = None
        self._on_request: Callable[[bytes], None] | None = None
        channel.on_stdout(self._inbound)
        channel.on_close(self._closed)
        refusals = getattr(channel, "on_refused", None)  # a remote server's channel only
        if refusals is not None:
            refusals(self._refused)

    def on_notification(self, listener: Callable[[bytes], None]) -> None:
        """Told every notification line the server writes (not the SDK session's replies)."""
        self._on_notification = listener

    def on_request(self, listener: Callable[[bytes], None]) -> None:
        """Told every request line the server writes (the SDK session answers them)."""
        self._on_request = listener

    @property
    def alive(self) -> bool:
        return not self.channel.closed.is_set()

    @property
    def in_flight(self) -> int:
        return len(self._pending)

    def _inbound(self, line: bytes) -> None:
        if self._marker not in line:
            if b'"method"' not in line:
                return
            if b'"notifications/' in line:
                if self._on_notification is not None:
                    self._on_notification(line)
            elif self._on_request is not None and b'"id"' in line:
                self._on_request(line)
            return
        matches = list(self._id_pattern.finditer(line))
        if not matches:
            if _CANCELLED in line:
                self._server_cancelled(line)
            elif b'"notifications/' in line and self._on_notification is not None:
                # A frame of our own listen stream (2026-07-28): it names our request in
                # its _meta, not as its id.
                self._on_notification(line)
            return
        if len(matches) == 1:
            match = matches[0]
            number = int(match.group(1))
            response = RawResponse(line, (match.start(0) + match.group(0).index(b":") + 1, match.end(0)))
        else:
            # Our id text also occurs inside the result (vanishingly rare): decode to be sure.
            try:
                decoded = json.loads(line)
                rid = decoded["id"]
            except (ValueError, KeyError, TypeError):
                return
            if (found := self._number(rid)) is None:
                return
            number = found
            response = RawResponse(line, None, decoded)
        future = self._pending.pop(number, None)
        if future is not None and not future.done():
            future.set_result(response)

    def _server_cancelled(self, line: bytes) -> None:
        """The server gave up one of our requests: its caller is told now, not at the timeout."""
        try:
            params = json.loads(line).get("params") or {}
            rid, reason = params.get("requestId"), params.get("reason")
        except (ValueError, AttributeError):
            return
        if (number := self._number(rid)) is not None:
            why = f"the server cancelled it ({str(reason)[:200]})" if reason else "the server cancelled it"
            self._fail(number, Cancelled(why))

    def _number(self, request_id: object) -> int | None:
        """Which of our requests an upstream id names, if it names one."""
        if isinstance(request_id, str) and request_id.startswith(self.namespace) \
                and request_id[len(self.namespace):].isdigit():
            return int(request_id[len(self.namespace):])
        return None

    def _refused(self, request_id: object, why: str) -> None:
        """The channel refused the answer to one of our requests (a protocol violation)."""
        if (number := self._number(request_id)) is not None:
            self._fail(number, UpstreamFailed(why))

    def _fail(self, number: int, error: UpstreamFailed) -> None:
        future = self._pending.pop(number, None)
        if future is not None and not future.done():
            future.set_exception(error)

    def _closed(self, reason: str) -> None:
        pending, self._pending = self._pending, {}
        for future in pending.values():
            if not future.done():
                future.set_exception(UpstreamFailed(reason))

    async def request(
        self,
        method: str,
        params: dict[str, Any] | None,
        timeout: float | None,
        track: Callable[[int], None] | None = None,
    ) -> RawResponse:
        """Send one request and wait for its response line (``timeout`` None: as long as
        it takes, for a stream the gateway ends itself). ``track`` learns the request's
        number first, so the caller can cancel it if its agent gives up."""
        number = next(self._counter)
        if track is not None:
            track(number)
        message: dict[str, Any] = {"jsonrpc": "2.0", "id": f"{self.namespace}{number}", "method": method}
        if self.envelope is not None:
            params = {**(params or {}), "_meta": {**((params or {}).get("_meta") or {}), **self.envelope}}
        if params is not None:
            message["params"] = params
        future: asyncio.Future[RawResponse] = asyncio.get_running_loop().create_future()
        self._pending[number] = future
        try:
            await self.channel.send(json.dumps(message, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))
            async with asyncio.timeout(timeout):  # no extra task per call, unlike wait_for
                return await future
        except ChannelClosed as exc:
            raise UpstreamFailed(str(exc)) from None
        except TimeoutError:
            await self.cancel(number, f"no answer within {timeout:g}s")
            raise UpstreamFailed(f"no answer within {timeout:g}s") from None
        except asyncio.CancelledError:
            # The caller went away (its agent disconnected): the server should stop too.
            asyncio.get_running_loop().create_task(self.cancel(number, "the agent went away"))
            raise
        finally:
            self._pending.pop(number, None)

    def upstream_id(self, number: int) -> str:
        return f"{self.namespace}{number}"

    async def cancel(self, number: int, reason: str) -> None:
        """Tell the server to stop working on a request whose caller gave up (a caller
        still waiting for it is answered now: the server will not)."""
        self._fail(number, Cancelled(reason))
        note = {"jsonrpc": "2.0", "method": "notifications/cancelled",
                "params": {"requestId": self.upstream_id(number), "reason": reason}}
        with contextlib.suppress(ChannelClosed):  # a server that is gone has nothing to cancel
            await self.channel.send(json.dumps(note, separators=(",", ":")).encode("utf-8"))
