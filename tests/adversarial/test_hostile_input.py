"""A hostile agent's strings: they are refused cleanly or recorded safely, never fatal.

Lone surrogates, NULs, control characters and megabytes of text in every field an agent
controls. None may crash a request into a 500, and none may switch the audit trail off:
after each of them the next ordinary call is still recorded and the chain verifies.
"""

from __future__ import annotations

import json

import httpx2
import pytest

from tests.gateway.conftest import Stack
from tests.support.rawmcp import RawAgent, error_of, text_of

pytestmark = pytest.mark.docker

LONE = '"\\ud800"'
"""A lone high surrogate as JSON escapes it: valid JSON, not valid Unicode."""


def raw_body(method: str, params_json: str, request_id: str = "1") -> bytes:
    return f'{{"jsonrpc":"2.0","id":{request_id},"method":"{method}","params":{params_json}}}'.encode()


def assert_audit_alive(stack: Stack, raw: RawAgent, name: str) -> None:
    """An ordinary call after the attack is still recorded, and the chain is intact."""
    reply = raw.call("time__get_current_time", {"timezone": "UTC"})
    assert "result" in reply, reply
    stack.gateway.flush_audit()
    stack.ws.refresh()
    mine = [r for r in stack.ws.audit.records() if r.get("agent") == name]
    assert mine[-1]["action"] == "tool.call" and mine[-1]["decision"] == "allow"
    verdict = stack.ws.audit.verify(stack.ws.audit_checkpoint)
    assert verdict.ok, verdict.message


def test_lone_surrogates_are_a_400_and_recorded(stack: Stack) -> None:
    name, token = stack.agent("local", "local/time")
    with RawAgent(stack.url, token) as raw:
        raw.initialize()
        for body in (
            raw_body("tools/call", '{"name":"time__get_current_time","arguments":{"timezone":' + LONE + "}}"),
            raw_body("tools/call", '{"name":"time__get_current_time"}', request_id=LONE),
            raw_body("tools/call", '{"name":' + LONE + "}"),
            raw_body("tools/call", '{"name":"time__get_current_time","_meta":{' + LONE + ":1}}"),
        ):
            response = raw.post(body)
            assert response.status_code == 400, response.text
            assert "surrogate" in error_of(response)["message"]
        assert_audit_alive(stack, raw, name)
    stack.gateway.flush_audit()
    reasons = [r["detail"].get("reason") for r in stack.ws.audit.records()
               if r.get("agent") == name and r["action"] == "rpc.invalid"]
    assert reasons == ["invalid-unicode"] * 4


def test_nul_control_characters_and_megabytes_are_recorded_safely(stack: Stack) -> None:
    name, token = stack.agent("local", "local/time")
    huge = "A" * (3 * 1024 * 1024)
    with RawAgent(stack.url, token, timeout=30) as raw:
        raw.initialize(client_info={"name": "\x00\x1b[31mred\x07" + "x" * 100_000, "version": "\u202e1"})
        hostile = [
            {"name": "time__get_current_time\x00", "arguments": {"timezone": "UTC\x00\x1b[2J"}},
            {"name": "time__get_current_time", "arguments": {"timezone": huge}},
            {"name": "time__get_current_time", "arguments": {"timezone": "UTC"}, "_meta": {"x\x00": huge}},
            {"name": "time__get_current_time", "arguments": {"\x00" * 10: ["\x01"] * 1000, "timezone": "UTC"}},
            {"name": "t" * 100_000},
        ]
        for params in hostile:
            response = raw.request("tools/call", params)
            assert response.status_code == 200, response.text[:300]
        deep = '{"a":' * 5000 + "1" + "}" * 5000
        response = raw.post(raw_body("tools/call", '{"name":"time__get_current_time","arguments":' + deep + "}"))
        assert response.status_code in (200, 400)
        assert_audit_alive(stack, raw, name)
    stack.gateway.flush_audit()
    written = stack.ws.paths.audit_log.read_bytes()
    assert b"\x00" not in written and b"\x1b" not in written
    longest = max(len(line) for line in written.splitlines())
    assert longest < 256 * 1024, "one record must not carry megabytes of an agent's text"


def test_owner_tokens_with_non_ascii_signatures_are_401(stack: Stack) -> None:
    for forged in ("tbxo_eyJhIjoiYWdfeCJ9.é", "tbxo_é.é", "tbxo_\u202e.x", "tbxo_" + "é" * 5000):
        response = httpx2.post(stack.url + "/mcp", content=json.dumps({"jsonrpc": "2.0", "id": 1, "method": "ping"}),
                               headers={"content-type": "application/json",
                                        "authorization": ("Bearer " + forged).encode("utf-8")})
        assert response.status_code == 401, (forged[:20], response.status_code)


def test_healthz_is_behind_the_host_check(stack: Stack) -> None:
    ok = httpx2.get(stack.url + "/healthz")
    assert ok.status_code == 200
    rebound = httpx2.get(stack.url + "/healthz", headers={"host": "evil.example:80"})
    assert rebound.status_code == 421


def test_batches_and_wrong_shapes_are_refused_before_any_server(stack: Stack) -> None:
    _name, token = stack.agent("local", "local/time")
    with RawAgent(stack.url, token) as raw:
        raw.initialize()
        assert raw.post(json.dumps([{"jsonrpc": "2.0", "id": 1, "method": "ping"}])).status_code == 400
        for method, params in (
            ("tools/call", {"name": "time__get_current_time", "arguments": "UTC"}),
            ("tools/call", {"name": "time__get_current_time", "_meta": ["x"]}),
            ("tools/call", {}),
            ("prompts/get", {"name": "time__x", "arguments": {"a": 1}}),
            ("resources/read", {"uri": 7}),
            ("completion/complete", {"ref": {"type": "ref/other"}, "argument": {}}),
            ("logging/setLevel", {"level": "loud"}),
        ):
            error = error_of(raw.request(method, params))
            assert error["code"] == -32602 and error["message"].startswith(f"invalid {method} request"), error
        # A valid call still works afterwards.
        assert "UTC" in text_of(raw.call("time__get_current_time", {"timezone": "UTC"}))
