"""The allow-list proxies of one toolbox's servers, run by its gateway.

Each server with egress gets its own proxy (``console.egress.proxy``) on a Unix socket in
its own folder, which its container has mounted: the socket a connection arrives on
says which server asks, so nothing the server sends can claim to be another. The set of
proxies follows the policy: a server given egress gets one, a server whose list changes
gets the new list at once, a server removed loses its proxy.

What they decide is audited: each refused attempt (``egress.blocked``: server, host, port,
why), up to a few a minute per server so a hostile server cannot flood the log, the rest
counted; and the connections let through, counted per host each minute
(``egress.connect``). Never a path, query or header: secrets live there.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from console.audit import AuditEvent
from console.egress.allowlist import AllowList
from console.egress.proxy import EgressEvent, EgressProxy
from console.paths import Paths
from console.runtime.egress_container import SOCKET_NAME
from console.services.egress import gateway_egress_dir

log = logging.getLogger(__name__)

Wanted = dict[str, tuple[str, list[str]]]
BLOCKED_PER_MINUTE = 20
"""Refusals recorded one by one per server and minute; beyond, they are counted."""
SUMMARY_SECONDS = 60.0


@dataclass
class _Hosted:
    label: str
    entries: tuple[str, ...]
    proxy: EgressProxy
    folder_fd: int
    blocked_recorded: int = 0
    connected: Counter[str] = field(default_factory=Counter)
    failed: Counter[str] = field(default_factory=Counter)
    """Allowed, but the host did not answer (or its name did not resolve)."""
    over_share: Counter[str] = field(default_factory=Counter)
    """Refused beyond the minute's share of records."""


class EgressHost:
    def __init__(self, paths: Paths, record: Callable[[AuditEvent], None], *, allow_private: bool = False) -> None:
        self._paths = paths
        self._record = record
        self._allow_private = allow_private
        self._hosted: dict[str, _Hosted] = {}
        self._lock = asyncio.Lock()

    @property
    def servers(self) -> dict[str, str]:
        """Server id -> label of the servers with a proxy now."""
        return {sid: hosted.label for sid, hosted in self._hosted.items()}

    def proxy(self, server_id: str) -> EgressProxy | None:
        hosted = self._hosted.get(server_id)
        return hosted.proxy if hosted else None

    async def follow(self, read: Callable[[], Wanted]) -> None:
        """Make the proxies match what ``read`` (blocking: run in a thread) returns now.
        One at a time, reading inside: an older read never lands after a newer one."""
        async with self._lock:
            await self._apply(await asyncio.to_thread(read))

    async def apply(self, wanted: Wanted) -> None:
        async with self._lock:
            await self._apply(wanted)

    async def _apply(self, wanted: Wanted) -> None:
        """Make the proxies match ``wanted`` (server id -> (label, allow-list entries))."""
        for server_id in [sid for sid in self._hosted if sid not in wanted]:
            await self._close(server_id)
        for server_id, (label, entries) in wanted.items():
            hosted = self._hosted.get(server_id)
            allow = AllowList.parse(entries)
            if hosted is None:
                try:
                    await self._open(server_id, label, allow)
                except OSError as exc:
                    log.error("cannot listen for the egress of server %s: %s", label, exc)
            elif hosted.entries != allow.entries:
                hosted.entries, hosted.label = allow.entries, label
                hosted.proxy.update(allow)

    async def _open(self, server_id: str, label: str, allow: AllowList) -> None:
        folder = gateway_egress_dir(self._paths, server_id)
        folder.mkdir(parents=True, exist_ok=True)
        os.chmod(folder, 0o755)
        # A Unix socket's path is at most 107 bytes, and a TBX_HOME can be deep: the
        # socket is named through the folder's descriptor, which is short and stays valid.
        fd = os.open(folder, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        proxy = EgressProxy(label, f"/proc/self/fd/{fd}/{SOCKET_NAME}", allow,
                            lambda event: self._event(server_id, event), allow_private=self._allow_private)
        try:
            await proxy.start()
        except BaseException:
            os.close(fd)
            raise
        self._hosted[server_id] = _Hosted(label, allow.entries, proxy, fd)

    async def _close(self, server_id: str) -> None:
        hosted = self._hosted.pop(server_id)
        try:
            await hosted.proxy.close()
        finally:
            os.close(hosted.folder_fd)
        self._summarise(hosted)

    async def close(self) -> None:
        async with self._lock:
            for server_id in list(self._hosted):
                with contextlib.suppress(Exception):
                    await self._close(server_id)

    def _event(self, server_id: str, event: EgressEvent) -> None:
        hosted = self._hosted.get(server_id)
        if hosted is None:
            return
        where = f"{event.host}:{event.port}"
        if event.kind == "allowed":
            hosted.connected[where] += 1
        elif event.kind == "blocked" and hosted.blocked_recorded < BLOCKED_PER_MINUTE:
            hosted.blocked_recorded += 1
            self._record(AuditEvent("gateway", "egress.blocked", f"server:{hosted.label}", "deny", None,
                                    {"host": event.host, "port": event.port, "reason": event.reason}))
        elif event.kind == "blocked":
            hosted.over_share[where] += 1
        else:
            hosted.failed[where] += 1

    async def summarise_every(self, seconds: float = SUMMARY_SECONDS) -> None:
        """Runs with the gateway: each minute, what was counted becomes a record."""
        while True:
            await asyncio.sleep(seconds)
            for hosted in list(self._hosted.values()):
                self._summarise(hosted)

    def _summarise(self, hosted: _Hosted) -> None:
        hosted.blocked_recorded = 0
        target = f"server:{hosted.label}"
        if hosted.connected or hosted.failed:
            counts, failed = dict(hosted.connected), dict(hosted.failed)
            hosted.connected.clear()
            hosted.failed.clear()
            self._record(AuditEvent("gateway", "egress.connect", target, "allow", None, {
                "counts": counts, "failed": failed, "total": sum(counts.values()) + sum(failed.values()),
                "until": time.time()}))
        if hosted.over_share:
            counts = dict(hosted.over_share)
            hosted.over_share.clear()
            self._record(AuditEvent("gateway", "egress.blocked", target, "deny", None, {
                "counts": counts, "total": sum(counts.values()), "until": time.time()}))
