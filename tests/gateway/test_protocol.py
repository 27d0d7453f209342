"""Protocol abuse gets a clean error; the gateway keeps serving everyone else."""

from __future__ import annotations

import json
import re
from urllib.parse import urlsplit

import httpx2
import pytest

from tests.gateway.conftest import Stack
from tests.support.gateway import agent, tool_names

pytestmark = pytest.mark.docker

INIT = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "raw", "version": "1"}}}
ACCEPT = "application/json, text/event-stream"


def post(stack: Stack, token: str | None, body: bytes | str | dict, *, session: str | None = None,
         headers: dict[str, str] | None = None, path: str = "/mcp") -> httpx2.Response:
    sent = {"content-type": "application/json", "accept": ACCEPT, **(headers or {})}
    if token:
        sent["authorization"] = f"Bearer {token}"
    if session:
        sent["mcp-session-id"] = session
    content = json.dumps(body).encode() if isinstance(body, dict) else body
    return httpx2.post(stack.url + path, content=content, headers=sent, timeout=10)


def initialize(stack: Stack, token: str) -> str:
    response = post(stack, token, INIT)
    assert response.status_code == 200
    session = response.headers["mcp-session-id"]
    post(stack, token, {"jsonrpc": "2.0", "method": "notifications/initialized"}, session=session)
    return session


def rpc_error(response: httpx2.Response) -> dict:
    assert response.headers["content-type"].startswith("application/json")
    return response.json()["error"]


def test_session_ids_are_long_and_random(stack: Stack) -> None:
    _name, token = stack.agent("local", "local/time")
    ids = {initialize(stack, token) for _ in range(20)}
    assert len(ids) == 20
    for session_id in ids:
        assert re.fullmatch(r"[A-Za-z0-9_-]{32,}", session_id)  # 24 random bytes, base64url: 192 bits


def test_authentication_failures(stack: Stack) -> None:
    missing = post(stack, None, INIT)
    assert missing.status_code == 401 and missing.headers["www-authenticate"].startswith("Bearer")
    assert rpc_error(missing)["message"] == "missing or invalid bearer token"
    assert post(stack, "tbx_not-a-real-token", INIT).status_code == 401
    assert post(stack, "tbxo_forged.signature", INIT).status_code == 401
    basic = httpx2.post(stack.url + "/mcp", json=INIT, headers={"authorization": "Basic dXNlcjpwYXNz"})
    assert basic.status_code == 401


def test_transport_rules(stack: Stack) -> None:
    _name, token = stack.agent("local", "local/time")
    session = initialize(stack, token)
    call = {"jsonrpc": "2.0", "id": 7, "method": "tools/list"}
    port = urlsplit(stack.url).port

    malformed = post(stack, token, b'{"jsonrpc": "2.0", "id": 1, "method": ', session=session)
    assert malformed.status_code == 400 and rpc_error(malformed)["code"] == -32700

    wrong_type = post(stack, token, json.dumps(call), session=session, headers={"content-type": "text/plain"})
    assert wrong_type.status_code == 415

    huge = post(stack, token, b'{"pad": "' + b"x" * (5 * 1024 * 1024) + b'"}', session=session)
    assert huge.status_code == 413

    unknown = post(stack, token, {"jsonrpc": "2.0", "id": 8, "method": "tools/smash"}, session=session)
    assert unknown.status_code == 200 and rpc_error(unknown)["code"] == -32601 and unknown.json()["id"] == 8

    batch = post(stack, token, json.dumps([call, call]).encode(), session=session)
    assert batch.status_code == 400 and "batches" in rpc_error(batch)["message"]

    not_rpc = post(stack, token, {"hello": "world"}, session=session)
    assert not_rpc.status_code == 400

    no_session = post(stack, token, call)
    assert no_session.status_code == 400 and "Mcp-Session-Id" in rpc_error(no_session)["message"]

    unknown_session = post(stack, token, call, session="A" * 32)
    assert unknown_session.status_code == 404

    bad_version = post(stack, token, call, session=session, headers={"mcp-protocol-version": "1999-01-01"})
    assert bad_version.status_code == 400 and "unsupported MCP-Protocol-Version" in rpc_error(bad_version)["message"]

    good_version = post(stack, token, call, session=session, headers={"mcp-protocol-version": "2025-06-18"})
    assert good_version.status_code == 200

    foreign_origin = post(stack, token, call, session=session, headers={"origin": "https://evil.example"})
    assert foreign_origin.status_code == 403
    own_origin = post(stack, token, call, session=session, headers={"origin": f"http://127.0.0.1:{port}"})
    assert own_origin.status_code == 200

    rebinding = post(stack, token, call, session=session, headers={"host": f"attacker.example:{port}"})
    assert rebinding.status_code == 421

    get_without_accept = httpx2.get(stack.url + "/mcp", headers={"authorization": f"Bearer {token}",
                                                                 "mcp-session-id": session, "accept": "text/html"})
    assert get_without_accept.status_code == 406
    put = httpx2.put(stack.url + "/mcp", headers={"authorization": f"Bearer {token}"}, content=b"{}")
    assert put.status_code == 405 and "POST" in put.headers["allow"]
    assert httpx2.get(stack.url + "/elsewhere").status_code == 404


def test_sessions_are_per_agent_and_end_with_delete(stack: Stack) -> None:
    _a, token_a = stack.agent("local", "local/time")
    _b, token_b = stack.agent("local", "local/time")
    session = initialize(stack, token_a)
    call = {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}
    assert post(stack, token_b, call, session=session).status_code == 404, "another agent cannot use it"
    assert post(stack, token_a, call, session=session, path="/servers/time/mcp").status_code == 404
    ended = httpx2.delete(stack.url + "/mcp", headers={"authorization": f"Bearer {token_a}", "mcp-session-id": session})
    assert ended.status_code == 200
    replayed = post(stack, token_a, call, session=session)
    assert replayed.status_code == 404 and "initialize a new one" in rpc_error(replayed)["message"]


async def test_abuse_does_not_disturb_other_agents(stack: Stack) -> None:
    _good, good_token = stack.agent("local", "local/time")
    _bad, bad_token = stack.agent("local", "local/time")
    async with agent(stack.url, good_token) as client:
        before = await tool_names(client)
        session = initialize(stack, bad_token)
        for junk in (b"\x00\xff" * 1000, b"[" * 10000, b'{"jsonrpc":"2.0","id":{"nested":1},"method":"ping"}',
                     b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":"not-an-object"}',
                     b'{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":7}}'):
            response = post(stack, bad_token, junk, session=session)
            assert response.status_code in (200, 400) and "error" in response.json()
        assert await tool_names(client) == before
        result = await client.call_tool("time__get_current_time", {"timezone": "UTC"})
        assert not result.is_error
