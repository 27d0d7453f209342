"""What agents and servers say besides requests, used against the others: forged progress
tokens, cancelling someone else's call, subscribing to what is not granted, a server
flooding log messages or announcing what nobody asked for."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections import Counter
import time

import mcp_types as types
import pytest

from tests.adversarial.test_request_checks import server_log, tool
from tests.gateway.conftest import Stack
from tests.support.gateway import agent, eventually
from tests.support.rawmcp import INIT, RawAgent, error_of, text_of

pytestmark = [pytest.mark.docker, pytest.mark.filterwarnings("ignore::mcp.MCPDeprecationWarning")]
SECRET = "plover-XR4tq8Wn2Lk7"
RESOURCE = {"uri": "note://granted", "name": "granted"}
HIDDEN = {"uri": "note://hidden", "name": "hidden"}
MEMOS = {"uriTemplate": "memo://{id}", "name": "memos"}


@pytest.fixture(scope="module")
def loud(stack: Stack) -> str:
    stack.add_shapeshifter("loud", {"tools": [tool("say"), tool("sleep")], "resources": [RESOURCE, HIDDEN],
                                    "resourceTemplates": [MEMOS]}, secrets={"LEAK_VALUE": SECRET})
    return "loud"


def progress(token: object, step: int) -> dict:
    return {"jsonrpc": "2.0", "method": "notifications/progress", "params": {"progressToken": token, "progress": step}}


def events_of(response) -> list[dict]:  # noqa: ANN001
    return [json.loads(line[len("data: "):]) for line in response.text.splitlines() if line.startswith("data: ")]


class Relayed:
    """What the relay counted while a test ran. Its counts are drained into one audit record
    a minute, which may fall in the middle of a test: the counts are drained on purpose at
    the start and at the end, and the records in between add up to what happened."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.mark = self._drain()

    def _drain(self) -> int:
        def drain(gateway) -> None:  # noqa: ANN001
            event = gateway.relay.summary(every=0)
            if event is not None:
                gateway.writer.record(event)

        self.stack.gateway.call(drain)
        self.stack.gateway.flush_audit()
        return sum(1 for _ in self.stack.ws.audit.records())

    def counts(self) -> Counter[str]:
        end = self._drain()
        total: Counter[str] = Counter()
        for record in itertools.islice(self.stack.ws.audit.records(), self.mark, end):
            if record["action"] == "notifications.relayed":
                total.update(record["detail"]["counts"])
        return total


async def test_progress_goes_to_its_own_call_whatever_tokens_say(stack: Stack, loud: str) -> None:
    """Two agents use the same progress token at once; the server also sends progress for
    the agent's raw token and for guessed gateway tokens. Each call sees only its own."""
    _a, a_token = stack.agent("local", f"local/{loud}")
    _b, b_token = stack.agent("local", f"local/{loud}")
    relayed = Relayed(stack)
    lines = [progress("$TOKEN", 1), progress("same", 99), progress("tbxp-00000000-1", 98),
             progress(1, 97), progress("$TOKEN", 2)]
    with RawAgent(stack.url, a_token) as a, RawAgent(stack.url, b_token) as b:
        a.initialize()
        b.initialize()
        loop = asyncio.get_running_loop()
        slow = loop.run_in_executor(None, lambda: b.request("tools/call", {
            "name": f"{loud}__sleep", "arguments": {"seconds": 1.5}, "_meta": {"progressToken": "same"}}))
        await asyncio.sleep(0.3)
        said = await loop.run_in_executor(None, lambda: a.request("tools/call", {
            "name": f"{loud}__say", "arguments": {"lines": lines}, "_meta": {"progressToken": "same"}}))
        quiet = await slow
    events = events_of(said)
    assert [(e["params"]["progressToken"], e["params"]["progress"]) for e in events[:-1]] == [("same", 1), ("same", 2)]
    assert text_of(events[-1]) == "said"
    # The other call heard nothing, so its answer is plain JSON.
    assert quiet.headers["content-type"] == "application/json" and text_of(quiet.json()) == "slept"
    assert relayed.counts()["progress.unknown"] == 3


def test_an_agent_cannot_cancel_another_agents_call(stack: Stack, loud: str) -> None:
    _a, a_token = stack.agent("local", f"local/{loud}")
    _b, b_token = stack.agent("local", f"local/{loud}")
    with RawAgent(stack.url, a_token) as a, RawAgent(stack.url, b_token) as b:
        a.initialize()
        b.initialize()
        import threading

        box: dict = {}
        thread = threading.Thread(target=lambda: box.update(reply=a.request(
            "tools/call", {"name": f"{loud}__sleep", "arguments": {"seconds": 1.0}}, request_id="victim-1")))
        thread.start()
        time.sleep(0.3)
        for request_id in ("victim-1", 1, "tbxg-00000000-1"):
            cancel = b.post({"jsonrpc": "2.0", "method": "notifications/cancelled",
                             "params": {"requestId": request_id}})
            assert cancel.status_code == 202
        thread.join(10)
    assert text_of(box["reply"].json()) == "slept"
    assert "cancelled" not in server_log(stack, loud)


def test_a_server_ends_only_its_own_requests_and_its_pings_are_answered(stack: Stack, loud: str) -> None:
    """A server's notifications/cancelled for our request ends the agent's call at once; one
    for an id that is not ours changes nothing. Its ping gets an answer."""
    _a, token = stack.agent("local", f"local/{loud}")
    cancel_own = {"jsonrpc": "2.0", "method": "notifications/cancelled",
                  "params": {"requestId": "$ID", "reason": "gave up $LEAK"}}
    cancel_other = {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": "tbxg-0-1"}}
    ping = {"jsonrpc": "2.0", "id": "server-ping-1", "method": "ping"}
    with RawAgent(stack.url, token) as raw:
        raw.initialize()
        ended = raw.call(f"{loud}__say", {"lines": [cancel_own]})
        assert "the server cancelled it" in ended["error"]["message"]
        assert SECRET not in json.dumps(ended)  # its reason is server output: masked
        assert text_of(raw.call(f"{loud}__say", {"lines": [cancel_other, ping]})) == "said"
    assert "answered server-ping-1" in server_log(stack, loud)


async def test_a_server_flooding_log_messages_costs_itself_not_the_gateway(stack: Stack, loud: str) -> None:
    """Thousands of log lines in a burst: agents get a bounded share (rate-limited per
    server), each masked; another agent's calls are answered meanwhile; the audit log
    gets no record per message."""
    name, token = stack.agent("local", f"local/{loud}")
    _t, time_token = stack.agent("local", "local/time")
    heard: list[types.LoggingMessageNotificationParams] = []

    def on_message(message: object) -> None:
        if isinstance(message, types.LoggingMessageNotification):
            heard.append(message.params)

    relayed = Relayed(stack)
    line = {"jsonrpc": "2.0", "method": "notifications/message",
            "params": {"level": "error", "data": "noise $LEAK"}}
    async with agent(stack.url, token, on_message=on_message) as client, agent(stack.url, time_token) as other:
        await client.set_logging_level("debug")
        flood = asyncio.create_task(client.call_tool(f"{loud}__say", {"lines": [line], "repeat": 5000}))
        started = time.monotonic()
        answered = await other.call_tool("time__get_current_time", {"timezone": "UTC"})
        assert not answered.is_error and time.monotonic() - started < 5
        assert not (await flood).is_error

        async def some_heard() -> bool:
            return len(heard) > 0

        await eventually(some_heard, 5)
        await asyncio.sleep(0.5)
    assert 0 < len(heard) <= 256
    assert {p.logger for p in heard} == {loud}  # on /mcp the logger names the server
    assert all(SECRET not in str(p.data) for p in heard)
    assert relayed.counts()["message.dropped"] >= 4000
    stack.gateway.flush_audit()
    mine = [r for r in stack.ws.audit.records() if r.get("agent") == name]
    assert len(mine) < 10, [r["action"] for r in mine]


async def test_subscriptions_only_to_granted_resources_and_no_unsolicited_updates(stack: Stack, loud: str) -> None:
    name, token = stack.agent("local", f"local/{loud}/resource:{RESOURCE['uri']}", f"local/{loud}/say")
    updates: list[str] = []

    def on_message(message: object) -> None:
        if isinstance(message, types.ResourceUpdatedNotification):
            updates.append(str(message.params.uri))

    def updated(uri: str) -> dict:
        return {"jsonrpc": "2.0", "method": "notifications/resources/updated", "params": {"uri": uri}}

    async with agent(stack.url, token, on_message=on_message) as client:
        with pytest.raises(Exception, match="not available"):
            await client.subscribe_resource(HIDDEN["uri"])
        await client.subscribe_resource(RESOURCE["uri"])
        await client.call_tool(f"{loud}__say", {"lines": [updated(HIDDEN["uri"]), updated("note://nobody"),
                                                          updated(RESOURCE["uri"])]})

        async def arrived() -> bool:
            return bool(updates)

        await eventually(arrived, 5)
        await asyncio.sleep(0.3)
        await client.unsubscribe_resource(RESOURCE["uri"])
        await client.call_tool(f"{loud}__say", {"lines": [updated(RESOURCE["uri"])]})
        await asyncio.sleep(0.5)
    assert updates == [RESOURCE["uri"]]
    assert "got resources/subscribe" in server_log(stack, loud)
    assert "got resources/unsubscribe" in server_log(stack, loud)
    stack.gateway.flush_audit()
    decisions = [(r["action"], r["decision"]) for r in stack.ws.audit.records()
                 if r.get("agent") == name and r["action"].startswith("resource.")]
    assert decisions == [("resource.subscribe", "deny"), ("resource.subscribe", "allow"),
                         ("resource.unsubscribe", "allow")]


def test_subscribe_is_declared_only_where_a_server_supports_it(stack: Stack, loud: str) -> None:
    _a, token = stack.agent("local", f"local/{loud}", "local/time")
    for path, declared in ((f"/servers/{loud}/mcp", True), ("/servers/time/mcp", False)):
        with RawAgent(stack.url, token, path) as raw:
            answer = raw.post(INIT, session=False).json()
        assert answer["result"]["capabilities"]["resources"]["subscribe"] is declared, path


def test_subscriptions_per_session_are_bounded(stack: Stack, loud: str) -> None:
    """A template grant matches endless URIs: one session holds at most 256 subscriptions."""
    from console.gateway.shared import MAX_SUBSCRIPTIONS

    _a, token = stack.agent("local", f"local/{loud}/template:{MEMOS['uriTemplate']}")
    with RawAgent(stack.url, token) as raw:
        raw.initialize()
        for i in range(MAX_SUBSCRIPTIONS):
            assert raw.request("resources/subscribe", {"uri": f"memo://{i}"}).json()["result"] == {}
        assert raw.request("resources/subscribe", {"uri": "memo://0"}).json()["result"] == {}  # held already
        refused = raw.request("resources/subscribe", {"uri": "memo://one-too-many"}).json()
        assert "unsubscribe from some first" in refused["error"]["message"]
        assert raw.request("resources/unsubscribe", {"uri": "memo://1"}).json()["result"] == {}
        assert raw.request("resources/subscribe", {"uri": "memo://one-too-many"}).json()["result"] == {}
    assert server_log(stack, loud).count("got resources/subscribe") >= MAX_SUBSCRIPTIONS + 1


def test_malformed_subscriptions_and_tokens_are_refused(stack: Stack, loud: str) -> None:
    _a, token = stack.agent("local", f"local/{loud}")
    with RawAgent(stack.url, token) as raw:
        raw.initialize()
        for method, params in (("resources/subscribe", {"uri": 7}), ("resources/subscribe", {}),
                               ("resources/unsubscribe", {"uri": ["x"]}),
                               ("tools/call", {"name": f"{loud}__say", "_meta": {"progressToken": [1]}}),
                               ("tools/call", {"name": f"{loud}__say", "_meta": {"progressToken": "p" * 600}}),
                               ("tools/call", {"name": f"{loud}__say", "_meta": {"progressToken": True}})):
            error = error_of(raw.request(method, params))
            assert error["code"] == -32602, (method, params, error)


async def test_a_subscription_outlives_a_restart_of_its_server(stack: Stack) -> None:
    """A restarted server knows nothing of the gateway's subscriptions: they are made again
    on its new session."""
    from console.services import servers

    await asyncio.to_thread(stack.add_shapeshifter, "phoenix", {"tools": [tool("say")], "resources": [RESOURCE]})
    _name, token = stack.agent("local", "local/phoenix")
    async with agent(stack.url, token) as client:
        await client.subscribe_resource(RESOURCE["uri"])
        assert server_log(stack, "phoenix").count("got resources/subscribe") == 1
        await asyncio.to_thread(servers.restart_server, stack.ws, "local/phoenix")

        async def subscribed_again() -> bool:
            return server_log(stack, "phoenix").count("got resources/subscribe") == 2

        await eventually(subscribed_again, 20, step=0.5)
