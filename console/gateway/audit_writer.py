"""Gateway decisions into the audit log without slowing calls down, and never silently.

Calls only append an event to a list. A background task appends whatever accumulated
every ``flush_seconds`` in one locked, fsynced write (off the event loop), which also
moves the log's head anchor, and moves the vault's checkpoint to the head every
``checkpoint_seconds`` (the vault is rewritten then, so not on every flush).

Fail closed: when records cannot be written (disk full, permissions, read-only
filesystem, the log replaced by a directory, a cut log), ``failure`` says why and what
to do, ``on_state_change`` is told, and the gateway refuses tool calls until a retry
(every flush) succeeds. Pending events are kept meanwhile, compacted to bounded
records; past ``max_pending`` events (or ``max_pending_bytes``) new ones are counted,
not kept, and an ``audit.gap`` record with the count is written where they belong once
the log can be written again. Events that cannot be recorded at all become
``audit.unrecordable`` records (``AuditLog.append``): one request never stops the log.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from console.audit import (
    AuditAnchorError,
    AuditEvent,
    AuditLog,
    Checkpoint,
    timestamp,
    canonical,
    event_body,
    printable_text,
    unrecordable,
)
from console.errors import AuditError
from console.workspace import Workspace

log = logging.getLogger(__name__)

REFUSING = " — tool calls are refused until it can"
_GAP_KINDS = 20
"""Distinct actions a gap record counts by name; the rest are counted as ``other``."""


@dataclass
class _Gap:
    """Events counted instead of kept while the log could not be written."""

    first: str
    last: str = ""
    count: int = 0
    actions: Counter[str] = field(default_factory=Counter)
    decisions: Counter[str] = field(default_factory=Counter)

    def add(self, event: AuditEvent) -> None:
        self.count += 1
        self.last = timestamp()
        action = printable_text(getattr(event, "action", "?"), 64)
        self.actions[action if action in self.actions or len(self.actions) < _GAP_KINDS else "other"] += 1
        decision = printable_text(getattr(event, "decision", "?"), 16)
        self.decisions[decision if decision in self.decisions or len(self.decisions) < _GAP_KINDS else "other"] += 1

    def merge(self, later: _Gap | None) -> _Gap:
        if later is not None:
            self.count += later.count
            self.last = later.last
            self.actions.update(later.actions)
            self.decisions.update(later.decisions)
        return self

    def event(self, log_path: str, why: str | None) -> AuditEvent:
        return AuditEvent("gateway", "audit.gap", log_path, "error", None, {
            "dropped": self.count, "first": self.first, "last": self.last,
            "actions": dict(self.actions), "decisions": dict(self.decisions),
            "why": why or "the audit log could not be written",
        })


def _compact(event: AuditEvent) -> tuple[AuditEvent, int]:
    """``event`` reduced to what its record will hold, and about how many bytes that is."""
    try:
        body = event_body(event)
    except Exception as exc:  # noqa: BLE001 - the same placeholder append would write
        body = event_body(unrecordable(event, exc))
    compact = AuditEvent(body["actor"], body["action"], body["target"], body["decision"], body["agent"],
                         body["detail"])
    return compact, len(canonical(body)) + 200


def _describe(exc: BaseException, log_path: object) -> str:
    if isinstance(exc, AuditError):
        return str(exc) + REFUSING
    reason = printable_text(str(exc), 200)
    return (f"cannot write the audit log {log_path}: unexpected {type(exc).__name__}: {reason}; "
            f"report this as a bug{REFUSING}")


class AuditWriter:
    def __init__(
        self,
        ws: Workspace,
        flush_seconds: float,
        checkpoint_seconds: float,
        *,
        max_pending: int = 10_000,
        max_pending_bytes: int = 32 * 1024 * 1024,
        stop_seconds: float = 10.0,
        stall_seconds: float = 5.0,
        on_state_change: Callable[[str | None], None] | None = None,
    ) -> None:
        self.ws = ws
        self.log: AuditLog = ws.audit
        self.flush_seconds = flush_seconds
        self.checkpoint_seconds = checkpoint_seconds
        self.max_pending = max_pending
        self.max_pending_bytes = max_pending_bytes
        self.stop_seconds = stop_seconds
        """``__aexit__`` gives up writing what is left after this long (and says so)."""
        self.stall_seconds = stall_seconds
        """A write still running after this long sets ``failure`` (a stuck disk)."""
        self.on_state_change = on_state_change
        """Called with ``failure`` whenever it changes (``None``: writing works again)."""
        self._pending: list[tuple[AuditEvent, int]] = []
        self._pending_bytes = 0
        self._gap: _Gap | None = None
        self._counting = False
        self._failure: str | None = None
        self._head: Checkpoint | None = None
        self._checkpointed_at = time.monotonic()
        self._checkpoint_problem: str | None = None
        self._lock = asyncio.Lock()
        self._inflight: asyncio.Future[None] | None = None
        self._task: asyncio.Task[None] | None = None
        self.written = 0
        """Records this writer appended (placeholders and gap records included)."""
        self.dropped = 0
        """Events counted in gap records instead of kept, since the start."""

    # -- state ----------------------------------------------------------------------

    @property
    def failure(self) -> str | None:
        """Why records cannot be written and what to do, in one line; ``None`` when they can."""
        return self._failure

    @property
    def healthy(self) -> bool:
        return self._failure is None

    @property
    def pending(self) -> int:
        return len(self._pending)

    def _set_failure(self, failure: str | None) -> None:
        if failure == self._failure:
            return
        before, self._failure = self._failure, failure
        if failure is None:
            log.warning("the audit log can be written again")
        else:
            log.error("%s", failure)
            if before is None:  # from now on events wait: keep them small
                self._pending = [_compact(event) for event, _ in self._pending]
                self._pending_bytes = sum(size for _, size in self._pending)
        if self.on_state_change is not None:
            try:
                self.on_state_change(failure)
            except Exception:
                log.exception("the audit writer's state callback failed")

    # -- recording ------------------------------------------------------------------

    def record(self, event: AuditEvent) -> None:
        """Queue ``event``; never raises, never blocks."""
        full = len(self._pending) >= self.max_pending or self._pending_bytes >= self.max_pending_bytes
        if self._gap is not None or full:
            if self._gap is None:
                self._gap = _Gap(first=timestamp())
            if not self._counting:
                self._counting = True
                log.error("audit events are counted, not kept, until the %d waiting are written", len(self._pending))
            self._gap.add(event)
            self.dropped += 1
            return
        size = 0
        if self._failure is not None:
            event, size = _compact(event)
        self._pending.append((event, size))
        self._pending_bytes += size

    # -- running --------------------------------------------------------------------

    async def __aenter__(self) -> AuditWriter:
        self._task = asyncio.create_task(self._run(), name="gateway:audit")
        return self

    async def __aexit__(self, *exc: object) -> None:
        """Stop the flush task, then write everything and move the checkpoint, for at most
        ``stop_seconds``: safe from a signal-triggered shutdown, never hangs."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        try:
            await asyncio.wait_for(self._drain(), self.stop_seconds)
        except TimeoutError:
            left = len(self._pending) + (self._gap.count if self._gap else 0)
            log.error("stopped with %d audit events not written after %gs: %s", left, self.stop_seconds,
                      self._failure or "the last write did not finish")

    async def _drain(self) -> None:
        while not await self.flush(checkpoint=True):
            await asyncio.sleep(self.flush_seconds)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.flush_seconds)
            due = time.monotonic() - self._checkpointed_at >= self.checkpoint_seconds
            try:
                await self.flush(checkpoint=due)
            except Exception:  # flush reports through failure; this is only a net for bugs
                log.exception("the audit writer's flush failed")

    async def flush(self, checkpoint: bool = False) -> bool:
        """Write what is pending (or, when failing with nothing pending, probe the log);
        with ``checkpoint``, move the vault's checkpoint to the head. True when nothing is
        left to write (and the checkpoint, if asked, moved). Failures set ``failure``."""
        async with self._lock:
            if self._inflight is not None:  # left by a flush that was cancelled mid-write
                await asyncio.wait({self._inflight})
            count = len(self._pending)
            gap, self._gap = self._gap, None
            batch = [event for event, _ in self._pending[:count]]
            if gap is not None:
                batch.append(gap.event(str(self.log.path), self._failure))
            if batch or self._failure is not None:
                self._inflight = task = asyncio.ensure_future(self._write(batch, count, gap))
                done, _ = await asyncio.wait({task}, timeout=self.stall_seconds)
                if not done:
                    self._set_failure(f"writing the audit log {self.log.path} has not finished after "
                                      f"{self.stall_seconds:g}s; check its disk or filesystem{REFUSING}")
                    await asyncio.wait({task})
            if self._failure is not None or self._pending:
                return False
            if checkpoint:
                return await self._checkpoint()
            return True

    async def _write(self, batch: list[AuditEvent], count: int, gap: _Gap | None) -> None:
        """One append off the loop and its bookkeeping, which a cancelled flush cannot skip."""
        try:
            try:
                if batch:
                    head = await asyncio.to_thread(self.log.append, batch)
                else:  # failing with nothing pending: probe by writing the anchor again
                    head = await asyncio.to_thread(self.log.reanchor)
                problem = None
            except AuditAnchorError as exc:  # the records are written; only the anchor is behind
                head, problem = exc.head, str(exc) + REFUSING
        except Exception as exc:  # noqa: BLE001 - whatever it is, keep the events and say so
            if not isinstance(exc, AuditError):
                log.exception("writing audit records failed unexpectedly")
            self._gap = gap.merge(self._gap) if gap is not None else self._gap
            self._set_failure(_describe(exc, self.log.path))
            return
        finally:
            self._inflight = None
        del self._pending[:count]
        self._pending_bytes = sum(size for _, size in self._pending)
        self.written += len(batch)
        if gap is not None:
            self._counting = False
        self._head = head or self._head
        self._set_failure(problem)

    async def _checkpoint(self) -> bool:
        if self._head is None:
            self._checkpointed_at = time.monotonic()
            return True
        head = self._head
        try:
            await asyncio.to_thread(self.ws.advance_checkpoint, head)
        except Exception as exc:  # noqa: BLE001 - the anchor still marks the head; retried next time
            problem = printable_text(str(exc), 300)
            if problem != self._checkpoint_problem:
                log.warning("cannot move the audit checkpoint in the vault (retrying): %s", problem)
            self._checkpoint_problem = problem
            return False
        self._checkpoint_problem = None
        self._checkpointed_at = time.monotonic()
        if self._head == head:
            self._head = None
        return True


def counted(counts: Counter[str], actor: str, action: str, decision: str) -> AuditEvent | None:
    """One record for what was counted instead of recorded one by one (floods, strays),
    and the count starts again; None when nothing was counted."""
    if not counts:
        return None
    tally = dict(counts)
    counts.clear()
    return AuditEvent(actor, action, "gateway", decision, None, {"counts": tally, "total": sum(tally.values())})
