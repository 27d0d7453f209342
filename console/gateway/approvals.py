"""Calls that wait for the owner: the pipeline step for items granted in ask mode.

A call the policy allows with ``ask`` (``console.policy``) is held here as a ``Pending``:
what it is (agent, item, server, toolbox), the arguments it will forward (masked for
display) and the SHA-256 of their canonical form. The owner decides from the console or
``tbx approvals`` (``approvals_http``); a decision names that hash, so it applies to the
exact call shown: the held request is forwarded as it arrived, and a decision made for
other arguments is refused and leaves the call waiting.

A call not decided within ``approval_timeout_seconds`` is refused, as are all held calls
when the gateway stops. While one waits, an agent that asked for progress is told so
every ``approval_progress_seconds``, which keeps its request alive. The call's own audit
record says how it was decided, by whom and after how long; the request and the decision
each have a record too, so the log shows a call waiting before its outcome is known.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from console.audit import AuditEvent
from console.gateway import jsonrpc as rpc
from console.gateway.exchange import Exchange, Refused
from console.gateway.snapshot import Snapshots
from console.trust.redact import argument_digest

HELD_METHODS = frozenset({"tools/call", "prompts/get", "resources/read"})
"""What an ask grant holds: uses of an item. Listings, completions and subscriptions pass."""
ApprovalGrant = Callable[[str, str, str, timedelta | None], Awaitable[None]]
"""Writes the grant a decision makes: (agent id, server id, ref, allow for) — a duration
for "allow for N minutes", None for "always deny"."""


class DecisionRefused(Exception):
    """A decision that cannot be applied; ``status`` is the HTTP status to answer with."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Verdict:
    allow: bool
    decider: str
    outcome: str
    """``allowed``, ``allowed-for``, ``denied``, ``denied-always``, ``timed-out``, ``gateway-stopped``."""
    why: str = ""
    """What the agent is told when it is refused."""


@dataclass
class Pending:
    id: str
    agent_id: str
    agent: str
    toolbox: str
    server: str
    server_id: str
    kind: str
    name: str
    ref: str
    target: str
    arguments: Any
    """The arguments as they will be forwarded, secrets masked: what the owner is shown."""
    sha256: str
    description: str
    caller: tuple[str, Any] | None = None
    """(session id, request id) of the held request: only that session can cancel it."""
    created: float = field(default_factory=time.time)
    future: asyncio.Future[Verdict] = field(default_factory=lambda: asyncio.get_running_loop().create_future())

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "agent": self.agent, "toolbox": self.toolbox, "server": self.server,
                "kind": self.kind, "name": self.name, "ref": self.ref, "target": self.target, "arguments": self.arguments,
                "sha256": self.sha256, "description": self.description, "trust": "approved",
                "created": self.created, "waited": round(time.time() - self.created, 3)}


def shown_arguments(params: dict[str, Any]) -> Any:
    """What of an upstream request the owner decides on: a call's or a prompt's arguments,
    a read's URI. ``_meta`` is the protocol's, not the call's."""
    if "arguments" in params:
        return params["arguments"]
    return {key: value for key, value in params.items() if key not in ("name", "_meta")}


def decision_problem(allow: bool, minutes: float | None, always: bool) -> str | None:
    """What is wrong with a decision's parts, if anything."""
    if minutes is not None and (not allow or not 0 < minutes <= 366 * 24 * 60):
        return "'for' goes with allow, between 1 minute and 366 days"
    if always and allow:
        return "'always' goes with deny"
    return None


class Approvals:
    def __init__(self, snapshots: Snapshots, record: Callable[[AuditEvent], None], grant: ApprovalGrant, *,
                 timeout: float, progress_every: float, max_pending: int) -> None:
        self.snapshots = snapshots
        self.record = record
        self.grant = grant
        self.timeout = timeout
        self.progress_every = progress_every
        self.max_pending = max_pending
        self.pending: dict[str, Pending] = {}
        self.version = 0
        """Counts changes to ``pending``; a watcher waits for it to pass what it saw."""
        self._changed = asyncio.Event()
        self.closed: str | None = None

    # -- the pipeline step ---------------------------------------------------------------

    def asks(self, x: Exchange) -> bool:
        """Does this authorized request wait for the owner? One look-up for agents with
        no grant in ask mode (nearly every call)."""
        if x.item is None or x.upstream is None or x.upstream[0] not in HELD_METHODS:
            return False
        policy = x.snapshot.surface.policy
        entry = policy.agents.get(x.identity.agent_id)  # type: ignore[union-attr]
        if entry is None or not entry.modes.get(x.item.server_id):
            return False
        return policy.check(entry.id, x.item.server_id, x.item.ref, time.time()).ask

    async def hold(self, x: Exchange) -> None:
        """Wait for the owner's decision on ``x``; returns when allowed, else raises ``Refused``."""
        if self.closed is not None:
            raise Refused(f"the call needs the owner's approval and {self.closed}; try again later",
                          code=rpc.CALL_BLOCKED, reason="approval-unavailable")
        if len(self.pending) >= self.max_pending:
            raise Refused(f"too many calls are waiting for the owner's approval (at most {self.max_pending}); "
                          f"try again later", code=rpc.CALL_BLOCKED, reason="too-many-approvals")
        pending = self._pending(x)
        self.pending[pending.id] = pending
        self._bump()
        self.record(AuditEvent(f"agent:{pending.agent}", "approval.request", pending.target, "ok", pending.agent,
                               {"id": pending.id, "sha256": pending.sha256,
                                "preview": argument_digest(pending.arguments, x.snapshot.redactor)["preview"]}))
        keepalive = self._keep_alive(x, pending)
        try:
            verdict = await asyncio.wait_for(asyncio.shield(pending.future), self.timeout)
        except TimeoutError:
            verdict = self._settle(pending, Verdict(False, "gateway", "timed-out",
                                                    f"the owner did not decide within {self.timeout:g}s"))
        finally:
            if keepalive is not None:
                keepalive.cancel()
            if self.pending.pop(pending.id, None) is not None:
                self._bump()
            if not pending.future.done():  # the agent went away while it waited
                pending.future.cancel()
                self.record(self._event(pending, "approval.abandoned", "error", "agent", "the agent hung up"))
        waited = round((time.time() - pending.created) * 1000, 1)
        x.detail["approval"] = {"id": pending.id, "outcome": verdict.outcome, "decider": verdict.decider,
                                "waited_ms": waited}
        if not verdict.allow:
            raise Refused(f"the owner's approval was not given: {verdict.why}", code=rpc.CALL_BLOCKED,
                          reason=f"approval-{verdict.outcome}")
        self._still_allowed(x)

    def _pending(self, x: Exchange) -> Pending:
        item, snapshot = x.item, x.snapshot
        assert item is not None and x.upstream is not None and x.identity is not None
        arguments = shown_arguments(x.upstream[1])
        digest = argument_digest(arguments, snapshot.redactor)["sha256"]
        masked, _found = snapshot.redactor.mask_json(json.dumps(arguments, ensure_ascii=False).encode())
        policy = snapshot.surface.policy
        wire = snapshot.surface.wire.get((item.server_id, item.ref)) or {}
        return Pending(id="apr_" + secrets.token_urlsafe(9), agent_id=x.identity.agent_id,
                       agent=policy.names(x.identity.agent_id, item.server_id)[0], toolbox=snapshot.toolbox,
                       server=item.server, server_id=item.server_id, kind=item.kind.value, name=item.name,
                       ref=item.ref, target=item.label(snapshot.toolbox), arguments=json.loads(masked),
                       sha256=digest, description=str(wire.get("description") or "")[:2000],
                       caller=(x.session.id, x.request_id) if x.session is not None else None)

    def cancelled(self, session_id: str, request_id: Any) -> None:
        """The agent cancelled a call of its session while it waited: it is refused, never
        forwarded, whatever the owner would have decided."""
        for pending in list(self.pending.values()):
            if pending.caller == (session_id, request_id) and not pending.future.done():
                self._settle(pending, Verdict(False, "agent", "cancelled", "the agent cancelled the call"))

    def _still_allowed(self, x: Exchange) -> None:
        """A grant revoked (or the agent disabled) while the call waited wins over the approval."""
        current = self.snapshots.current
        assert x.item is not None and x.identity is not None
        if not current.surface.policy.check(x.identity.agent_id, x.item.server_id, x.item.ref, time.time()).allowed:
            raise Refused(f"{x.item.kind.value} {x.item.name!r} is not granted to this agent", code=rpc.INVALID_PARAMS,
                          reason="revoked-while-waiting")

    def _keep_alive(self, x: Exchange, pending: Pending) -> asyncio.Task[None] | None:
        meta = x.params.get("_meta")
        token = meta.get("progressToken") if isinstance(meta, dict) else None
        if token is None or x.events is None:
            return None
        events = x.events

        async def tell() -> None:
            beat = 0
            while True:
                await asyncio.sleep(self.progress_every)
                beat += 1
                events(rpc.notification("notifications/progress", {
                    "progressToken": token, "progress": beat,
                    "message": f"waiting for the owner's approval ({pending.id})"}))

        return asyncio.get_running_loop().create_task(tell(), name=f"approval:{pending.id}")

    # -- the owner's side ----------------------------------------------------------------

    def listing(self) -> list[dict[str, Any]]:
        return [pending.to_json() for pending in sorted(self.pending.values(), key=lambda p: p.created)]

    async def changed(self, since: int, wait: float) -> int:
        """The version once it passes ``since``, or after ``wait`` seconds."""
        if self.version == since and self.closed is None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), wait)
        return self.version

    async def decide(self, approval_id: str, *, allow: bool, sha256: str, decider: str,
                     minutes: float | None = None, always: bool = False) -> Verdict:
        pending = self.pending.get(approval_id)
        if pending is None or pending.future.done():
            raise DecisionRefused(f"no call {approval_id[:40]!r} is waiting (decided, timed out or never held)", 404)
        if not secrets.compare_digest(sha256.encode(), pending.sha256.encode()):
            raise DecisionRefused("the decision names other arguments than the call's: it was not applied; "
                                  "look at the call again ('tbx approvals list') and decide on what it shows", 409)
        if (problem := decision_problem(allow, minutes, always)) is not None:
            raise DecisionRefused(problem, 400)
        if minutes is not None or always:
            await self.grant(pending.agent_id, pending.server_id, pending.ref,
                             timedelta(minutes=minutes) if minutes is not None else None)
            await self.snapshots.reload()
        outcome = ("allowed-for" if minutes is not None else "allowed") if allow else \
            ("denied-always" if always else "denied")
        verdict = Verdict(allow, decider, outcome, "" if allow else "the owner denied the call")
        if pending.future.done():  # timed out or abandoned while the grant was written
            raise DecisionRefused(f"the call {approval_id[:40]!r} stopped waiting before the decision", 404)
        extra = {"minutes": minutes} if minutes is not None else {}
        self._settle(pending, verdict, extra)
        return verdict

    def close(self, why: str) -> None:
        """Refuse every held call (the gateway stops) and every call from now on."""
        self.closed = why
        for pending in list(self.pending.values()):
            if not pending.future.done():
                self._settle(pending, Verdict(False, "gateway", "gateway-stopped", why))
        self._bump()  # watchers waiting for a change are answered now, not when the server gives up on them

    # -- helpers -------------------------------------------------------------------------

    def _settle(self, pending: Pending, verdict: Verdict, extra: dict[str, Any] | None = None) -> Verdict:
        pending.future.set_result(verdict)
        action = "approval.allow" if verdict.allow else "approval.deny"
        self.record(self._event(pending, action, "allow" if verdict.allow else "deny", verdict.decider,
                                verdict.outcome, extra))
        return verdict

    def _event(self, pending: Pending, action: str, decision: str, decider: str, outcome: str,
               extra: dict[str, Any] | None = None) -> AuditEvent:
        actor = "owner" if decider.startswith("owner") else decider
        return AuditEvent(actor, action, pending.target, decision, pending.agent,
                          {"id": pending.id, "sha256": pending.sha256, "decider": decider, "outcome": outcome,
                           "waited_ms": round((time.time() - pending.created) * 1000, 1), **(extra or {})})

    def _bump(self) -> None:
        self.version += 1
        self._changed.set()
        self._changed = asyncio.Event()
