"""A hostile server leaks its secrets every way it can; the agent decodes none of them.

The leaking server (the shapeshifter) writes JSON with Python's default encoder, which
escapes every non-ASCII character (``\\u00e9``) and every quote and newline: the secret
as the agent decodes it never appears as such in the bytes that cross the gateway.
"""

from __future__ import annotations

import json

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from tests.gateway.conftest import Stack
from tests.support.rawmcp import RawAgent

pytestmark = pytest.mark.docker

PEM = ed25519.Ed25519PrivateKey.generate().private_bytes(
    serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()
SECRETS = {
    "quotes": 'pa"ss\\word-7Hq2"x',
    "newline": "line-one-Zx81\nline-two-Kq22",
    "accents": "mot-de-passe-éçà-Ωλ-9931",
    "emoji": "key-🔑-🗝️-4471xx",
    "pem": PEM,
}


def tool(name: str, description: str = "Does it.") -> dict:
    return {"name": name, "description": description, "inputSchema": {"type": "object"}}


def every_string(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in (k, *every_string(v))]
    if isinstance(value, list):
        return [s for v in value for s in every_string(v)]
    return []


def assert_clean(decoded: object, secret: str) -> None:
    text = "\n".join(every_string(decoded))
    assert secret not in text
    for line in secret.splitlines():
        if len(line.strip()) >= 16:
            assert line not in text, "a line of a multi-line secret got through"


@pytest.mark.parametrize("kind", sorted(SECRETS))
def test_secrets_are_masked_in_everything_an_agent_decodes(stack: Stack, kind: str) -> None:
    secret = SECRETS[kind]
    server = f"leaky-{kind}"
    stack.add_shapeshifter(server, {
        "tools": [tool("leak"), tool("fail")],
        "resources": [{"uri": "leak://one", "name": "one", "description": "A resource."}],
        "prompts": [{"name": "hint", "description": "A prompt."}],
    }, secrets={"LEAK_VALUE": secret})
    _name, token = stack.agent("local", f"local/{server}")
    with RawAgent(stack.url, token) as raw:
        raw.initialize()
        replies = [
            raw.call(f"{server}__leak"),                                   # a tool result
            raw.call(f"{server}__fail"),                                   # an error message
            raw.request("resources/read", {"uri": "leak://one"}).json(),   # resource contents
            raw.request("prompts/get", {"name": f"{server}__hint"}).json(),  # a prompt's text
        ]
    assert "result" in replies[0] and "error" in replies[1], replies
    assert "result" in replies[2] and "result" in replies[3], replies
    for reply in replies:
        assert_clean(reply, secret)
    assert "LEAK_VALUE›" in json.dumps(replies[0], ensure_ascii=False)


def test_a_secret_in_a_definition_is_masked_in_listings(stack: Stack) -> None:
    secret = SECRETS["accents"]
    stack.add_shapeshifter("describer", [tool("peek", f"Uses the key {secret} internally.")],
                           secrets={"LEAK_VALUE": secret}, approve_all=False)
    from console.services.tools import approve

    approve(stack.ws, "local", "describer", "peek", accept=["sensitive-reference", "instructions"])
    _name, token = stack.agent("local", "local/describer")
    with RawAgent(stack.url, token) as raw:
        raw.initialize()
        listing = raw.request("tools/list").json()
    assert [t["name"] for t in listing["result"]["tools"]] == ["describer__peek"]
    assert_clean(listing, secret)


def test_notifications_on_the_event_stream_are_masked(stack: Stack) -> None:
    secret = SECRETS["quotes"]
    stack.add_shapeshifter("streamer", [tool("noop")], secrets={"LEAK_VALUE": secret})
    _name, token = stack.agent("local", "local/streamer")
    with RawAgent(stack.url, token) as raw:
        session_id = raw.initialize()
        note = json.dumps({"jsonrpc": "2.0", "method": "notifications/message",
                           "params": {"level": "info", "data": f"the key is {secret}"}}).encode()
        stack.gateway.call(lambda gw: next(s for s in gw.sessions if s.id == session_id).notify(note))
        headers = {"authorization": f"Bearer {token}", "mcp-session-id": session_id, "accept": "text/event-stream"}
        with raw.http.stream("GET", stack.url + "/mcp", headers=headers, timeout=5) as stream:
            data = ""
            for line in stream.iter_lines():
                # Other notifications may come first (list_changed after the agent's grant).
                if line.startswith("data: ") and "notifications/message" in line:
                    data = line[len("data: "):]
                    break
    assert_clean(json.loads(data), secret)
    assert "LEAK_VALUE›" in data and "‹secret:" in data
