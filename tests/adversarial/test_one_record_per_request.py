"""Every request of an agent leaves exactly one audit record, whatever the outcome.

An attacker who can make a request leave no trace (a refused read, a malformed call, an
unknown method, a hang-up mid-call) can probe unseen; one who can make it leave many can
fill the disk. Neither is possible.
"""

from __future__ import annotations

import json
import uuid

import pytest

from tests.gateway.conftest import Stack
from tests.support.rawmcp import RawAgent, error_of

pytestmark = pytest.mark.docker


def tool(name: str, description: str = "Does it.") -> dict:
    return {"name": name, "description": description,
            "inputSchema": {"type": "object", "properties": {"text": {"type": "string"}}}}


def records_of(stack: Stack, agent: str) -> list[dict]:
    """The gateway's records of the agent's requests (not the owner's grants to it)."""
    stack.gateway.flush_audit()
    return [r for r in stack.ws.audit.records() if r.get("agent") == agent and r["actor"] == f"agent:{agent}"]


def test_each_request_one_record_with_its_decision_and_reason(stack: Stack) -> None:
    name, token = stack.agent("local", "local/time/get_current_time")
    with RawAgent(stack.url, token) as raw:
        raw.initialize()
        before = len(records_of(stack, name))
        outcomes = [
            raw.request("tools/list"),
            raw.request("ping"),
            raw.request("tools/call", {"name": "time__get_current_time", "arguments": {"timezone": "UTC"}}),
            raw.request("tools/call", {"name": "time__convert_time", "arguments": {}}),     # not granted
            raw.request("tools/call", {"name": "nothing__at_all"}),                      # unknown
            raw.request("tools/call", {"name": ["not", "a", "string"]}),                  # malformed
            raw.request("resources/read", {"uri": "file:///etc/passwd"}),                  # refused read
            raw.request("prompts/get", {"name": "time__nothing"}),                        # refused prompt
            raw.request("resources/list"),
            raw.request("prompts/list"),
            raw.request("resources/templates/list"),
            raw.request("completion/complete", {"ref": {"type": "ref/prompt", "name": "time__x"},
                                                "argument": {"name": "a", "value": "b"}}),
            raw.request("sampling/createMessage", {}),                                     # unsupported
            raw.post(b"{not json"),                                                        # unparseable
            raw.post({"jsonrpc": "2.0", "id": True, "method": "ping"}),                   # bad id
        ]
        assert all(o.status_code in (200, 400) for o in outcomes)
    mine = records_of(stack, name)[before:]
    assert len(mine) == len(outcomes), [(r["action"], r["decision"]) for r in mine]
    summary = [(r["action"], r["decision"], r["detail"].get("reason")) for r in mine]
    assert summary == [
        ("tools.list", "allow", None),
        ("ping", "allow", None),
        ("tool.call", "allow", None),
        ("tool.call", "deny", "no-tool-grant"),
        ("tool.call", "deny", "unknown-tool"),
        ("tool.call", "deny", "invalid-params"),
        ("resource.read", "deny", "unknown-tool"),
        ("prompt.get", "deny", "no-tool-grant"),
        ("resources.list", "allow", None),
        ("prompts.list", "allow", None),
        ("resources.templates.list", "allow", None),
        ("completion.complete", "deny", "no-tool-grant"),
        ("rpc.unsupported", "error", "unsupported-method"),
        ("rpc.invalid", "deny", "malformed-json"),
        ("rpc.invalid", "deny", "bad-id"),
    ]
    denied = mine[3]
    assert denied["target"] == "tool:local/time/convert_time"
    assert "no grant for time/convert_time" in denied["detail"]["why"]
    assert all(r["detail"]["endpoint"] == "/mcp" for r in mine)
    assert stack.ws.audit.verify(stack.ws.audit_checkpoint).ok


def test_a_refused_read_is_a_deny_not_an_allow(stack: Stack) -> None:
    """The old gateway recorded a refused resources/read as allowed."""
    name, token = stack.agent("local", "local/time")
    with RawAgent(stack.url, token) as raw:
        raw.initialize()
        error = error_of(raw.request("resources/read", {"uri": "file:///root/.ssh/id_rsa"}))
        assert "not available" in error["message"]
    [read] = [r for r in records_of(stack, name) if r["action"] == "resource.read"]
    assert read["decision"] == "deny"


def test_sessions_are_recorded_open_and_closed(stack: Stack) -> None:
    name, token = stack.agent("local", "local/time")
    with RawAgent(stack.url, token) as raw:
        raw.initialize(client_info={"name": "probe", "version": "9"})
        response = raw.http.delete(stack.url + "/mcp", headers={"authorization": f"Bearer {token}",
                                                                "mcp-session-id": raw.session or ""})
        assert response.status_code == 200
    actions = [(r["action"], r["decision"]) for r in records_of(stack, name)]
    assert actions == [("session.open", "allow"), ("session.close", "allow")]


def test_unauthenticated_floods_are_summarised_not_recorded_one_by_one(stack: Stack) -> None:
    marker = uuid.uuid4().hex
    with RawAgent(stack.url, f"tbx_{marker}") as raw:
        for _ in range(200):
            assert raw.post({"jsonrpc": "2.0", "id": 1, "method": "ping"}).status_code == 401
    stack.gateway.flush_audit()
    import time

    time.sleep(1.3)  # the summary is written once a second
    stack.gateway.flush_audit()
    records = list(stack.ws.audit.records())
    assert not any(marker in json.dumps(r) for r in records)  # the bad token is never written
    summaries = [r for r in records if r["action"] == "http.refused"]
    assert summaries and sum(r["detail"]["total"] for r in summaries) >= 200
