"""Server-to-client requests (sampling, elicitation, roots) relayed to the agent that caused them.

A server shares one upstream session among agents, so its ``sampling/createMessage``
names nobody; the gateway decides who, if anyone, is asked:

1. the owner allowed the server this kind of request (``ServerInstance.may_ask``, read
   from the snapshot at the moment it arrives: a switch turned off counts at once);
2. it belongs to exactly one agent's call: the call whose gateway progress token the
   request carries (a token no call in flight holds is refused), else the server's only
   call in flight. No call, or several and no way to tell, is refused: a guess could show
   one agent what another one's call is about;
3. that agent's session declared the capability, may still use the server, and is
   streaming its call's response (the request travels on that stream, like progress).

The agent answers with a POST of a JSON-RPC response to the id the gateway gave the
request (``tbxa-<nonce>-<n>``). Only the session the request went to may answer it,
once, within the call timeout; the answer is checked against the kind's result schema
before it goes upstream. Every request is recorded (server, agent, kind, outcome),
refused ones too; past ``records_per_minute`` per server the rest are counted instead,
so a flooding server cannot fill the audit log.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import secrets
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import mcp_types as types

from console.audit import AuditEvent
from console.gateway import jsonrpc as rpc
from console.gateway.audit_writer import counted
from console.gateway.relay import uses_server
from console.gateway.sessions import AgentSession
from console.gateway.snapshot import Snapshots
from console.runtime.session import ASK_RESULTS, AskRefused

METHODS = {"sampling": "sampling/createMessage", "elicitation": "elicitation/create", "roots": "roots/list"}
KINDS = {method: kind for kind, method in METHODS.items()}
Sink = Callable[[bytes], None]


@dataclass(eq=False)
class _Call:
    """An agent's call in flight on a server: who may be asked on its behalf."""

    session: AgentSession
    sink: Sink | None
    progress_token: str | None


@dataclass(eq=False)
class _Pending:
    call: _Call
    kind: str
    answer: asyncio.Future[dict[str, Any]] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future())


class AgentAsks:
    def __init__(self, snapshots: Snapshots, record: Callable[[AuditEvent], None], *, timeout: float,
                 per_server: int = 8, records_per_minute: int = 60) -> None:
        self.snapshots = snapshots
        self._record = record
        self.timeout = timeout
        self.per_server = per_server
        """Requests of one server waiting for agents at once; more are refused."""
        self.records_per_minute = records_per_minute
        self.namespace = f"tbxa-{secrets.token_hex(4)}-"
        self._numbers = itertools.count(1)
        self._calls: dict[str, dict[int, _Call]] = {}
        self._pending: dict[str, _Pending] = {}
        self._waiting: Counter[str] = Counter()
        self._recorded: dict[str, tuple[int, int]] = {}
        """Server id -> (minute, records written in it)."""
        self.counts: Counter[str] = Counter()
        """What was not recorded one by one (floods, stray answers), until ``summary``."""

    # -- calls in flight (the pipeline's forward step) ---------------------------------

    def may_ask(self, server_id: str) -> bool:
        """Whether calls to the server need tracking (the owner allowed it to ask)."""
        return bool(self.snapshots.current.surface.may_ask.get(server_id))

    def call_started(self, server_id: str, session: AgentSession | None, sink: Sink | None,
                     progress_token: str | None) -> int | None:
        if session is None:
            return None
        key = next(self._numbers)
        self._calls.setdefault(server_id, {})[key] = _Call(session, sink, progress_token)
        return key

    def call_ended(self, server_id: str, key: int | None) -> None:
        calls = self._calls.get(server_id)
        if calls is None or key is None:
            return
        call = calls.pop(key, None)
        if not calls:
            del self._calls[server_id]
        for pending in self._pending.values():
            if pending.call is call and not pending.answer.done():
                # The server is still waiting: it hears now, not at the timeout.
                pending.answer.set_result({"error": {"code": types.INTERNAL_ERROR,
                                                     "message": "the agent's call ended before it answered"}})

    # -- a server asks -----------------------------------------------------------------

    def asker(self, server_id: str) -> Callable[[str, dict[str, Any]], Any]:
        """What the server's upstream session calls with each request (``ask_callbacks``)."""
        async def ask(kind: str, params: dict[str, Any]) -> dict[str, Any]:
            return await self.ask(server_id, kind, params)
        return ask

    async def ask(self, server_id: str, kind: str, params: dict[str, Any],
                  call_key: int | None = None) -> dict[str, Any]:
        """Ask the agent whose call this is; ``call_key`` names the call (what ``call_started``
        returned) where the gateway knows it: a server of the 2026-07-28 era asks in the
        result of the very call (``upstream_input``)."""
        started = time.perf_counter()
        detail: dict[str, Any] = {"kind": kind}
        agent: str | None = None
        try:
            call = self._attribute(server_id, kind, params, call_key)
            agent = call.session.agent_id
            self._check_agent(server_id, kind, params, call)
            answer = await self._relay(server_id, kind, params, call, detail)
        except AskRefused as refusal:
            # The message may quote the agent's own error: masked like anything recorded.
            detail.update(outcome=refusal.reason, error=self.snapshots.current.redactor.redact(str(refusal)[:300]))
            decision = "error" if detail["outcome"] in ("timeout", "agent-error", "invalid-answer") else "deny"
            self._audit(server_id, agent, decision, detail, started)
            raise
        except asyncio.CancelledError:  # the server's session went away while the agent was asked
            detail["outcome"] = "cancelled"
            self._audit(server_id, agent, "error", detail, started)
            raise
        detail["outcome"] = "answered"
        self._audit(server_id, agent, "allow", detail, started)
        return answer

    def _attribute(self, server_id: str, kind: str, params: dict[str, Any], call_key: int | None) -> _Call:
        surface = self.snapshots.current.surface
        name = surface.server_names.get(server_id, "?")
        if kind not in surface.may_ask.get(server_id, ()):
            raise _refused(f"the owner has not allowed server {name} to ask agents for {kind}", "not-allowed")
        if call_key is not None:
            known = self._calls.get(server_id, {}).get(call_key)
            if known is None:
                raise _refused(f"the call that needs {kind} has ended", "unattributed")
            return known
        calls = list(self._calls.get(server_id, {}).values())
        meta = params.get("_meta")
        token = meta.get("progressToken") if isinstance(meta, dict) else None
        if token is not None:
            calls = [c for c in calls if c.progress_token == token]
            if not calls:  # it names a call, and not one in flight here: no other is a safe guess
                raise _refused(f"the {kind} request names progress token {str(token)[:60]!r}, no call in flight "
                               f"on server {name}", "unattributed")
        if not calls:
            raise _refused(f"no agent's call is in flight on server {name}: nobody to ask for {kind}", "unattributed")
        if len(calls) > 1:
            raise _refused(f"{len(calls)} agents' calls are in flight on server {name} and the request does not "
                           f"say which one it is for: nobody is asked", "unattributed")
        return calls[0]

    def _check_agent(self, server_id: str, kind: str, params: dict[str, Any], call: _Call) -> None:
        session = call.session
        declared = session.capabilities.get(kind)
        if not isinstance(declared, dict):
            raise _refused(f"the agent's client did not declare the {kind} capability", "not-declared")
        if kind == "elicitation" and params.get("mode") == "url" and "url" not in declared:
            raise _refused("the agent's client did not declare URL elicitation", "not-declared")
        if kind == "sampling" and params.get("tools") and "tools" not in declared:
            raise _refused("the agent's client did not declare sampling with tools", "not-declared")
        if session.ended.is_set() or not uses_server(self.snapshots, session.agent_id, server_id, time.time()):
            raise _refused("the agent's session ended or it may no longer use this server", "not-entitled")
        if call.sink is None:
            raise _refused(f"the agent's call is not answered as an event stream, so it cannot be asked for {kind}",
                           "no-stream")
        if self._waiting[server_id] >= self.per_server:
            raise _refused(f"the server already waits for {self.per_server} answers from agents", "too-many")

    async def _relay(self, server_id: str, kind: str, params: dict[str, Any], call: _Call,
                     detail: dict[str, Any]) -> dict[str, Any]:
        request_id = f"{self.namespace}{next(self._numbers)}"
        pending = _Pending(call, kind)
        self._pending[request_id] = pending
        self._waiting[server_id] += 1
        try:
            # The server's _meta (our progress token, its own keys) is not the agent's business.
            shown = {k: v for k, v in params.items() if k != "_meta"}
            call.sink(rpc.dumps({"jsonrpc": "2.0", "id": request_id, "method": METHODS[kind],  # type: ignore[misc]
                                 "params": shown}))
            try:
                message = await asyncio.wait_for(pending.answer, self.timeout)
            except TimeoutError:
                raise _refused(f"the agent did not answer within {self.timeout:g}s", "timeout") from None
        finally:
            self._pending.pop(request_id, None)
            self._waiting[server_id] -= 1
            if self._waiting[server_id] <= 0:
                del self._waiting[server_id]
        error = message.get("error")
        if error is not None:
            text = error.get("message") if isinstance(error, dict) else None
            code = error.get("code") if isinstance(error, dict) else None
            raise _refused(f"the agent declined: {str(text)[:200]}", "agent-error",
                           code if isinstance(code, int) and not isinstance(code, bool) else types.INTERNAL_ERROR)
        result = message.get("result")
        if not _valid(kind, result, tools=bool(params.get("tools"))):
            raise _refused(f"the agent's {kind} answer does not match its schema", "invalid-answer",
                           types.INTERNAL_ERROR)
        if kind == "elicitation":
            detail["action"] = result.get("action")  # type: ignore[union-attr]
        return result  # type: ignore[return-value]

    # -- an agent answers --------------------------------------------------------------

    def answered(self, session: AgentSession, message: dict[str, Any], size: int, cap: int) -> str | None:
        """An agent's POSTed response; None when it was taken, else why not (for the agent)."""
        request_id = message.get("id")
        pending = self._pending.get(request_id) if isinstance(request_id, str) else None
        if pending is None or pending.call.session is not session or pending.answer.done():
            # Another agent's id, an answer given already, or one nobody asked for: all
            # look alike to the sender, so no id can be probed.
            self.counts["answer.unknown"] += 1
            return "no request of this session is waiting for that answer"
        if size > cap:
            self.counts["answer.too-large"] += 1
            pending.answer.set_result({"error": {"code": types.INTERNAL_ERROR,
                                                 "message": f"the agent's answer was over {cap} bytes"}})
            return f"the answer is over {cap} bytes"
        if ("result" in message) == ("error" in message):
            self.counts["answer.malformed"] += 1
            return "a response holds exactly one of result and error"
        pending.answer.set_result(message)
        return None

    # -- a server asks for what its session never declared -----------------------------

    def undeclared(self, server_id: str, line: bytes) -> None:
        """A request line the server sent that its session did not declare a capability
        for (the SDK refuses it upstream): recorded, as a refusal, like any other."""
        try:
            method = json.loads(line).get("method")
        except (ValueError, UnicodeDecodeError, RecursionError, AttributeError):
            return
        kind = KINDS.get(method) if isinstance(method, str) else None
        if kind is None:
            return
        self._audit(server_id, None, "deny", {"kind": kind, "outcome": "not-allowed",
                                              "error": "the server's session does not declare it"}, None)

    # -- records -----------------------------------------------------------------------

    def _audit(self, server_id: str, agent_id: str | None, decision: str, detail: dict[str, Any],
               started: float | None) -> None:
        minute = int(time.monotonic() // 60)
        at, used = self._recorded.get(server_id, (minute, 0))
        used = used if at == minute else 0
        if used >= self.records_per_minute:
            self.counts[f"{detail['kind']}.{detail['outcome']}"] += 1
            return
        self._recorded[server_id] = (minute, used + 1)
        snapshot = self.snapshots.current
        name = snapshot.surface.server_names.get(server_id, server_id)
        agent = snapshot.surface.policy.agents.get(agent_id) if agent_id else None
        if started is not None:
            detail["latency_ms"] = round((time.perf_counter() - started) * 1000, 2)
        self._record(AuditEvent(f"server:{snapshot.toolbox}/{name}", f"server.{detail['kind']}",
                                f"server:{snapshot.toolbox}/{name}", decision,
                                agent.name if agent else agent_id, detail))

    def summary(self) -> AuditEvent | None:
        """One record for what was counted instead of recorded, if anything."""
        return counted(self.counts, "gateway", "server.asks.counted", "deny")


def _refused(message: str, reason: str, code: int = types.INVALID_REQUEST) -> AskRefused:
    return AskRefused(message, reason, code)


def _valid(kind: str, result: Any, *, tools: bool) -> bool:
    """The result fits the kind; a sampling answer uses tools only when it was offered them."""
    if not isinstance(result, dict):
        return False
    for model in ASK_RESULTS[kind] if tools or kind != "sampling" else ASK_RESULTS[kind][:1]:
        try:
            model.model_validate(result)
        except ValueError:
            continue
        return True
    return False
