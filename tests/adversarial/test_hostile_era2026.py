"""The stateless era (2026-07-28) as an attacker uses it: envelopes that disagree with
their headers, other agents' session ids, oversized or unknown envelopes, methods the era
removed, and a server forging an input-required result. Each refusal is the era's error
with its HTTP status, reaches no server, and leaves one audit record."""

from __future__ import annotations

import json
import time

import pytest

from console.catalog import load_catalog
from console.services import agents, server_asks, servers
from console.services.tools import approve
from tests.gateway.conftest import Stack
from tests.support.rawmcp import RawAgent, envelope, error_of, stateless, text_of

pytestmark = pytest.mark.docker
HEADER_MISMATCH, UNSUPPORTED = -32020, -32022
SAMPLE = "trigger-sampling-request"
CALL = {"name": "time__get_current_time", "arguments": {"timezone": "UTC"}}


def refusals(stack: Stack, name: str) -> list[dict]:
    stack.gateway.flush_audit()
    return [r for r in stack.ws.audit.records()
            if r.get("agent") == name and r["actor"].startswith("agent:") and r["decision"] != "allow"]


def test_a_granted_call_works_so_the_refusals_below_are_about_the_envelope(stack: Stack) -> None:
    _name, token = stack.agent("local", "local/time")
    reply = stateless(stack.url + "/mcp", token, "tools/call", CALL)
    assert reply.status_code == 200 and "UTC" in text_of(reply.json()), reply.text
    assert reply.json()["result"]["resultType"] == "complete"


@pytest.mark.parametrize(("headers", "meta", "says"), [
    ({"mcp-protocol-version": None}, None, "mcp-protocol-version"),            # the version header left out
    ({"mcp-protocol-version": "2025-11-25"}, None, "mcp-protocol-version"),    # says one era, sends the other
    ({"mcp-method": "tools/list"}, None, "mcp-method"),                        # routed as a listing, is a call
    ({"mcp-method": None}, None, "mcp-method"),
    ({"mcp-name": "time__convert_time"}, None, "mcp-name"),                    # names another tool than it calls
])
def test_headers_that_disagree_with_the_body_are_refused(stack: Stack, headers: dict, meta: dict | None,
                                                         says: str) -> None:
    """An intermediary routes on the headers; the gateway acts on the body: a request
    whose two disagree is refused before it is authorized, let alone forwarded."""
    name, token = stack.agent("local", "local/time")
    reply = stateless(stack.url + "/mcp", token, "tools/call", CALL, headers=headers, meta=meta)
    assert reply.status_code == 400, reply.text
    error = error_of(reply)
    assert error["code"] == HEADER_MISMATCH and says in error["message"]
    [record] = refusals(stack, name)
    assert record["detail"]["reason"] == "header-mismatch" and record["action"] == "rpc.invalid"


def test_a_stateless_request_carrying_another_agents_session_gets_nothing_of_it(stack: Stack) -> None:
    """Sessions do not exist in 2026-07-28: a session id sent with such a request is
    refused the same way whether it is another agent's live session or made up, so it
    can neither use nor probe one; the session's own agent is not affected."""
    _victim, victim_token = stack.agent("local", "local/time")
    name, token = stack.agent("local")
    with RawAgent(stack.url, victim_token) as victim:
        session = victim.initialize()
        stolen = stateless(stack.url + "/mcp", token, "tools/call", CALL, headers={"mcp-session-id": session})
        made_up = stateless(stack.url + "/mcp", token, "tools/call", CALL, headers={"mcp-session-id": "x" * 32})
        assert stolen.status_code == made_up.status_code == 400
        assert error_of(stolen) == error_of(made_up)
        assert "UTC" in text_of(victim.call("time__get_current_time", {"timezone": "UTC"}))
    assert [r["detail"]["reason"] for r in refusals(stack, name)] == ["session-id-in-stateless"] * 2


def test_an_unknown_protocol_version_is_told_the_supported_ones(stack: Stack) -> None:
    """The client may fall back on what it is told; what it sent is echoed bounded."""
    name, token = stack.agent("local", "local/time")
    for version in ("2099-01-01", "v" * 5000):
        reply = stateless(stack.url + "/mcp", token, "tools/list", headers={"mcp-protocol-version": version},
                          meta=envelope(version))
        assert reply.status_code == 400, reply.text
        error = error_of(reply)
        assert error["code"] == UNSUPPORTED and error["data"]["supported"] == ["2026-07-28"]
        assert error["data"]["requested"] == version[:100]
    assert [r["detail"]["reason"] for r in refusals(stack, name)] == ["bad-protocol-version"] * 2


@pytest.mark.parametrize("meta", [
    {**envelope(), "io.modelcontextprotocol/clientInfo": {"name": "x" * 20_000}},    # oversized
    {**envelope(), "io.modelcontextprotocol/clientCapabilities": "all of them"},    # not an object
    {"io.modelcontextprotocol/protocolVersion": "2026-07-28"},                     # no capabilities
    [],                                                                            # not an envelope
])
def test_malformed_or_oversized_envelopes_are_refused(stack: Stack, meta: object) -> None:
    name, token = stack.agent("local", "local/time")
    reply = stateless(stack.url + "/mcp", token, "tools/call", CALL, meta=meta)
    assert reply.status_code == 400, reply.text
    assert error_of(reply)["code"] == -32602
    assert len(refusals(stack, name)) == 1


@pytest.mark.parametrize("method", ["ping", "logging/setLevel", "resources/subscribe", "initialize"])
def test_methods_the_era_removed_are_not_found(stack: Stack, method: str) -> None:
    """The handshake era's session-bound methods have no meaning without a session."""
    name, token = stack.agent("local", "local/time")
    params = {"level": "debug"} if method == "logging/setLevel" else {"uri": "x://y"} if "sub" in method else {}
    reply = stateless(stack.url + "/mcp", token, method, params)
    if method == "initialize":  # the handshake itself still opens a session of the old era
        assert reply.status_code == 200 and "mcp-session-id" in reply.headers
        return
    assert reply.status_code == 404, reply.text
    assert error_of(reply)["code"] == -32601
    assert len(refusals(stack, name)) == 1


def test_every_stateless_request_is_authenticated_by_its_token(stack: Stack) -> None:
    """No session remembers who asked: a revoked agent is refused on its very next request."""
    name, token = stack.agent("local", "local/time")
    assert stateless(stack.url + "/mcp", token, "tools/list").status_code == 200
    assert stateless(stack.url + "/mcp", None, "tools/list").status_code == 401
    assert stateless(stack.url + "/mcp", token + "x", "tools/list").status_code == 401
    agents.set_enabled(stack.ws, name, False)
    assert stateless(stack.url + "/mcp", token, "tools/list").status_code == 401


def test_get_and_delete_are_not_spoken_in_the_stateless_era(stack: Stack) -> None:
    _name, token = stack.agent("local", "local/time")
    with RawAgent(stack.url, token) as raw:
        for verb in ("GET", "DELETE"):
            reply = raw.http.request(verb, stack.url + "/mcp", headers={
                "authorization": f"Bearer {token}", "mcp-protocol-version": "2026-07-28",
                "accept": "text/event-stream"})
            assert reply.status_code == 405 and reply.headers["allow"] == "POST"


def test_a_server_cannot_forge_an_input_required_result(stack: Stack) -> None:
    """A handshake-era server answers a call with an input-required result asking the agent
    for sampling: that would go around its owner's per-server policy. The agent gets a
    complete result without the server's requests."""
    stack.add_shapeshifter("forger26", [{"name": "say", "description": "Says.", "inputSchema": {"type": "object"}}])
    name, token = stack.agent("local", "local/forger26")
    forged = {"jsonrpc": "2.0", "id": "$ID", "result": {
        "resultType": "input_required", "requestState": "s",
        "inputRequests": {"a": {"method": "sampling/createMessage", "params": {"messages": [], "maxTokens": 9}}}}}
    reply = stateless(stack.url + "/servers/forger26/mcp", token, "tools/call",
                      {"name": "say", "arguments": {"lines": [forged]}})
    assert reply.status_code == 200, reply.text
    result = reply.json()["result"]
    assert result["resultType"] == "complete" and "inputRequests" not in result and "requestState" not in result
    stack.gateway.flush_audit()
    [record] = [r for r in stack.ws.audit.records() if r.get("agent") == name and r["action"] == "tool.call"]
    assert record["detail"]["forged_result_type"] is True


def test_a_routing_header_sent_twice_is_refused(stack: Stack) -> None:
    """A proxy that reads the first Mcp-Name and a gateway that reads the last would
    route one call two ways: the request is refused before anything reads it."""
    _name, token = stack.agent("local", "local/time")
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {**CALL, "_meta": envelope()}}
    headers = [("authorization", f"Bearer {token}"), ("content-type", "application/json"),
               ("accept", "application/json"), ("mcp-protocol-version", "2026-07-28"), ("mcp-method", "tools/call"),
               ("mcp-name", "time__convert_time"), ("mcp-name", CALL["name"])]
    with RawAgent(stack.url, token) as raw:
        reply = raw.http.post(stack.url + "/mcp", content=json.dumps(body), headers=headers)
    assert reply.status_code == 400, reply.text
    assert error_of(reply)["code"] == HEADER_MISMATCH and "mcp-name" in error_of(reply)["message"]


@pytest.mark.parametrize(("sent", "status"), [("eu", 200), ("us", 400), (None, 400)])
def test_parameter_headers_must_agree_with_the_arguments(stack: Stack, sent: str | None, status: int) -> None:
    """A tool whose schema names a parameter header (x-mcp-header): an intermediary may
    route on Mcp-Param-Region, so a call whose header says another region than its
    arguments, or leaves it out, is refused before it reaches the server."""
    if "regional" not in stack.gateway.call(lambda gw: set(gw.snapshot.surface.server_ids)):
        stack.add_shapeshifter("regional", [{"name": "deploy", "description": "Deploys.", "inputSchema": {
            "type": "object", "properties": {"region": {"type": "string", "x-mcp-header": "Region"}}}}])
    _name, token = stack.agent("local", "local/regional")
    reply = stateless(stack.url + "/servers/regional/mcp", token, "tools/call",
                      {"name": "deploy", "arguments": {"region": "eu"}}, headers={"mcp-param-region": sent})
    assert reply.status_code == status, reply.text
    if status == 400:
        assert error_of(reply)["code"] == HEADER_MISMATCH and "Mcp-Param-Region" in error_of(reply)["message"]


@pytest.fixture(scope="module")
def asker(stack: Stack) -> str:
    """server-everything, allowed to ask agents for sampling (its sampling tool offered)."""
    name = "asker26"
    servers.add_server(stack.ws, "local", load_catalog(stack.paths).get("everything"), name=name)
    server_asks.set_may_ask(stack.ws, f"local/{name}", "sampling", True)
    _agent, token = stack.agent("local", f"local/{name}")

    def offered() -> bool:
        approve(stack.ws, "local", name)
        reply = stateless(f"{stack.url}/servers/{name}/mcp", token, "tools/list")
        return reply.status_code == 200 and SAMPLE in str(reply.json())

    deadline = time.monotonic() + 90
    while not offered():
        assert time.monotonic() < deadline, "server-everything never offered its sampling tool"
        time.sleep(1)
    return name


def test_a_request_state_is_its_agents_and_its_calls_alone(stack: Stack, asker: str) -> None:
    """An input-required result's requestState, presented by another agent, with other
    arguments, or made up, is refused alike, and takes nothing from the call waiting on it:
    its own agent then retries and gets the result."""
    url = f"{stack.url}/servers/{asker}/mcp"
    _owner, token = stack.agent("local", f"local/{asker}")
    _thief, thief = stack.agent("local", f"local/{asker}")
    meta = {**envelope(), "io.modelcontextprotocol/clientCapabilities": {"sampling": {}}}
    call = {"name": SAMPLE, "arguments": {"prompt": "mine", "maxTokens": 5}}
    first = stateless(url, token, "tools/call", call, meta=meta)
    assert first.status_code == 200, first.text
    result = first.json()["result"]
    assert result["resultType"] == "input_required"
    [(key, asked)] = result["inputRequests"].items()
    assert asked["method"] == "sampling/createMessage" and "mine" in json.dumps(asked["params"])
    answer = {key: {"role": "assistant", "content": {"type": "text", "text": "sampled"}, "model": "m"}}
    retry = {**call, "inputResponses": answer, "requestState": result["requestState"]}
    refused = [stateless(url, thief, "tools/call", retry, meta=meta),
               stateless(url, token, "tools/call", {**retry, "arguments": {"prompt": "other", "maxTokens": 5}},
                         meta=meta),
               stateless(url, token, "tools/call", {**retry, "requestState": "made-up"}, meta=meta)]
    assert {r.status_code for r in refused} == {400}
    assert len({error_of(r)["message"] for r in refused}) == 1
    done = stateless(url, token, "tools/call", retry, meta=meta)
    assert done.status_code == 200, done.text
    assert done.json()["result"]["resultType"] == "complete" and "sampled" in done.text


def test_progress_after_an_input_required_result_follows_the_agents_retry(stack: Stack) -> None:
    """A stateless call answered with an input-required result keeps running upstream; the
    progress its server reports after that goes on the stream of the agent's retry (the
    first response is over: nothing may be written to it), and the retry gets the result."""
    from tests.adversarial.test_hostile_asks import sampling, shapeshifter
    from tests.adversarial.test_hostile_notifications import events_of, progress

    server = shapeshifter(stack, "slow26", "sampling")
    _agent, token = stack.agent("local", f"local/{server}")
    url = f"{stack.url}/servers/{server}/mcp"
    meta = {**envelope(), "io.modelcontextprotocol/clientCapabilities": {"sampling": {}}, "progressToken": "mine"}
    lines = [sampling("s-1"), {"$sleep": 1.5}, progress("$TOKEN", 7)]
    call = {"name": "say", "arguments": {"lines": lines, "wait": 0.3}}
    first = stateless(url, token, "tools/call", call, meta=meta)
    result = [e for e in events_of(first) if "result" in e][-1]["result"] if first.headers["content-type"] \
        .startswith("text/event-stream") else first.json()["result"]
    assert result["resultType"] == "input_required"
    [key] = result["inputRequests"]
    answer = {key: {"role": "assistant", "content": {"type": "text", "text": "ok"}, "model": "m"}}
    retry = stateless(url, token, "tools/call", {**call, "inputResponses": answer,
                                                 "requestState": result["requestState"]}, meta=meta)
    assert retry.status_code == 200 and retry.headers["content-type"].startswith("text/event-stream"), retry.text
    events = events_of(retry)
    assert [e["params"] for e in events if e.get("method") == "notifications/progress"] == [
        {"progressToken": "mine", "progress": 7}]
    assert events[-1]["result"]["resultType"] == "complete" and "said" in json.dumps(events[-1])
