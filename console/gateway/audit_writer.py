"""Gateway decisions into the audit log without slowing calls down.

Calls only append an event to a list. A background task appends whatever accumulated
every ``flush_seconds`` in one locked, fsynced write, and moves the vault's checkpoint
to the log's head every ``checkpoint_seconds`` (the vault is rewritten then, so not on
every flush).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from console.audit import AuditEvent, Checkpoint
from console.workspace import Workspace

log = logging.getLogger(__name__)


class AuditWriter:
    def __init__(self, ws: Workspace, flush_seconds: float, checkpoint_seconds: float) -> None:
        self.ws = ws
        self.flush_seconds = flush_seconds
        self.checkpoint_seconds = checkpoint_seconds
        self._pending: list[AuditEvent] = []
        self._head: Checkpoint | None = None
        self._checkpointed_at = time.monotonic()
        self._task: asyncio.Task[None] | None = None
        self.written = 0

    def record(self, event: AuditEvent) -> None:
        self._pending.append(event)

    async def __aenter__(self) -> AuditWriter:
        self._task = asyncio.create_task(self._run(), name="gateway:audit")
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.flush(checkpoint=True)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.flush_seconds)
            due = time.monotonic() - self._checkpointed_at >= self.checkpoint_seconds
            try:
                await self.flush(checkpoint=due)
            except Exception:  # keep recording; the next flush retries what is pending
                log.exception("writing gateway audit records failed")

    async def flush(self, checkpoint: bool = False) -> None:
        batch, self._pending = self._pending, []
        if batch:
            try:
                head = await asyncio.to_thread(self.ws.audit.append, batch)
            except BaseException:
                self._pending[:0] = batch
                raise
            self.written += len(batch)
            self._head = head or self._head
        if checkpoint and self._head is not None:
            await asyncio.to_thread(self.ws.advance_checkpoint, self._head)
            self._checkpointed_at = time.monotonic()
            self._head = None
