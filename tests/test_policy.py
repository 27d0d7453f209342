"""The access rule: the compiled policy against a literal reading of DESIGN.md."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from console.model import (
    Agent,
    DesiredState,
    ItemKind,
    ServerInstance,
    Toolbox,
    ToolboxGrant,
    ToolDef,
    ToolGrant,
    Trust,
    item_ref,
    split_ref,
)
from console.policy import CompiledPolicy, Reason, hash_token, new_agent_token
from console.services.hints import explain

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
ITEMS = [
    (ItemKind.TOOL, "read"), (ItemKind.TOOL, "write"), (ItemKind.TOOL, "list"),
    (ItemKind.PROMPT, "read"),  # a prompt named like a tool of the same server
    (ItemKind.RESOURCE, "file:///notes/a.md"), (ItemKind.TEMPLATE, "file:///notes/{name}"),
    (ItemKind.TOOL, "prompt:read"),  # a tool whose name looks like a ref: tool:prompt:read
]
REFS = [item_ref(kind, name) for kind, name in ITEMS]
"""Every item's ref: what grants, checks and ``visible_items`` speak in."""


@dataclass
class State:
    agents: list[Agent]
    toolboxes: list[Toolbox]
    servers: list[ServerInstance]
    tools: list[ToolDef]
    toolbox_grants: list[ToolboxGrant]
    tool_grants: list[ToolGrant]
    running: set[str]

    def tables(self) -> dict[str, dict[str, dict]]:
        def by(items, key):  # noqa: ANN001, ANN202
            return {key(i): i.model_dump(mode="json") for i in items}

        return {
            "agents": by(self.agents, lambda a: a.id),
            "toolboxes": by(self.toolboxes, lambda t: t.id),
            "servers": by(self.servers, lambda s: s.id),
            "tools": by(self.tools, lambda t: t.key),
            "toolbox_grants": by(self.toolbox_grants, lambda g: g.key),
            "tool_grants": by(self.tool_grants, lambda g: g.key),
        }


def oracle(state: State, agent_id: str, server_id: str, tool: str, now: datetime) -> bool:
    """DESIGN.md's access rule, read literally."""
    agent = next((a for a in state.agents if a.id == agent_id), None)
    if agent is None or agent.disabled:
        return False
    server = next((s for s in state.servers if s.id == server_id), None)
    if server is None:
        return False
    if not any(g.agent == agent_id and g.toolbox == server.toolbox for g in state.toolbox_grants):
        return False
    if not any(
        g.agent == agent_id and g.server == server_id and g.tool in (tool, "*")
        and (g.expires is None or g.expires > now)
        for g in state.tool_grants
    ):
        return False
    definition = next((t for t in state.tools if t.server == server_id and t.ref == tool), None)
    if definition is None or definition.trust is not Trust.APPROVED or definition.approved_pin != definition.pin:
        return False
    return server_id in state.running


@st.composite
def states(draw: st.DrawFn) -> State:
    toolboxes = [Toolbox(id=f"tb_{i}", name=f"box{i}") for i in range(draw(st.integers(1, 3)))]
    agents = [
        Agent(id=f"ag_{i}", name=f"agent{i}", token_hash=f"{i:064x}", disabled=draw(st.booleans()))
        for i in range(draw(st.integers(1, 3)))
    ]
    servers = [
        ServerInstance(id=f"srv_{i}", name=f"srv{i}", toolbox=draw(st.sampled_from(toolboxes)).id)
        for i in range(draw(st.integers(1, 4)))
    ]
    running = {s.id for s in servers if draw(st.booleans())}
    tools = []
    for server in servers:
        for kind, name in draw(st.lists(st.sampled_from(ITEMS), unique=True, max_size=5)):
            trust = draw(st.sampled_from(list(Trust)))
            pin = "a" * 64
            approved = draw(st.sampled_from([None, pin, "b" * 64]))
            tools.append(ToolDef(server=server.id, kind=kind, name=name, pin=pin, approved_pin=approved, trust=trust))
    toolbox_grants = [
        ToolboxGrant(agent=a.id, toolbox=t.id) for a in agents for t in toolboxes if draw(st.booleans())
    ]
    expiries = st.sampled_from([None, NOW - timedelta(minutes=1), NOW + timedelta(hours=1), NOW])
    tool_grants = [
        ToolGrant(agent=a.id, server=s.id, tool=name, expires=draw(expiries))
        for a in agents
        for s in servers
        for name in [*REFS, "*", "ghost"]
        if draw(st.integers(0, 4)) == 0
    ]
    return State(agents, toolboxes, servers, tools, toolbox_grants, tool_grants, running)


def queries(state: State) -> list[tuple[str, str, str]]:
    agents = [a.id for a in state.agents] + ["ag_nobody"]
    servers = [s.id for s in state.servers] + ["srv_nowhere"]
    return [(a, s, t) for a in agents for s in servers for t in [*REFS, "ghost"]]


@settings(max_examples=400, deadline=None)
@given(states())
def test_compiled_policy_matches_the_rule(state: State) -> None:
    policy = CompiledPolicy.compile(state.tables(), state.running)
    now = NOW.timestamp()
    for agent, server, tool in queries(state):
        decision = policy.check(agent, server, tool, now)
        assert decision.allowed == oracle(state, agent, server, tool, NOW), (agent, server, tool, decision)
        assert decision.allowed == (decision.reason is Reason.ALLOWED)
        assert policy.explain(decision, agent, server, tool)
        assert "tbx" not in policy.explain(decision, agent, server, tool)  # the rule knows no commands


@settings(max_examples=200, deadline=None)
@given(states())
def test_visible_items_are_exactly_the_allowed_ones(state: State) -> None:
    policy = CompiledPolicy.compile(state.tables(), state.running)
    for agent in state.agents:
        expected = {
            (t.server, t.ref) for t in state.tools if oracle(state, agent.id, t.server, t.ref, NOW)
        }
        assert set(policy.visible_items(agent.id, NOW.timestamp())) == expected


@settings(max_examples=200, deadline=None)
@given(states())
def test_pending_changed_and_blocked_items_of_every_kind_are_never_visible(state: State) -> None:
    policy = CompiledPolicy.compile(state.tables(), state.running)
    exposable = {(t.server, t.ref) for t in state.tools if t.exposable}
    for agent in state.agents:
        assert set(policy.visible_items(agent.id, NOW.timestamp())) <= exposable


@settings(max_examples=200, deadline=None)
@given(states(), st.data())
def test_a_grant_on_one_item_makes_nothing_else_visible(state: State, data: st.DataObject) -> None:
    """A grant on one tool never shows a resource, template or prompt (or another tool)."""
    agent = data.draw(st.sampled_from(state.agents))
    server = data.draw(st.sampled_from(state.servers))
    ref = data.draw(st.sampled_from(REFS))
    state.toolbox_grants.append(ToolboxGrant(agent=agent.id, toolbox=server.toolbox))
    before = set(CompiledPolicy.compile(state.tables(), state.running).visible_items(agent.id, NOW.timestamp()))
    state.tool_grants.append(ToolGrant(agent=agent.id, server=server.id, tool=ref))
    after = set(CompiledPolicy.compile(state.tables(), state.running).visible_items(agent.id, NOW.timestamp()))
    assert after - before <= {(server.id, ref)}


@settings(max_examples=200, deadline=None)
@given(states(), st.data())
def test_a_server_wide_grant_shows_every_approved_item_of_every_kind(state: State, data: st.DataObject) -> None:
    agent = data.draw(st.sampled_from(state.agents))
    server = data.draw(st.sampled_from(state.servers))
    agent.disabled = False
    state.running.add(server.id)
    state.toolbox_grants.append(ToolboxGrant(agent=agent.id, toolbox=server.toolbox))
    state.tool_grants = [g for g in state.tool_grants if (g.agent, g.server) != (agent.id, server.id)]
    state.tool_grants.append(ToolGrant(agent=agent.id, server=server.id, tool="*"))
    visible = CompiledPolicy.compile(state.tables(), state.running).visible_items(agent.id, NOW.timestamp())
    assert {ref for sid, ref in visible if sid == server.id} == {
        t.ref for t in state.tools if t.server == server.id and t.exposable}


@settings(max_examples=200, deadline=None)
@given(states(), st.data())
def test_revoking_a_toolbox_cuts_everything_inside_and_nothing_else(state: State, data: st.DataObject) -> None:
    if not state.toolbox_grants:
        return
    cut = data.draw(st.sampled_from(state.toolbox_grants))
    before = CompiledPolicy.compile(state.tables(), state.running)
    state.toolbox_grants.remove(cut)
    after = CompiledPolicy.compile(state.tables(), state.running)
    inside = {s.id for s in state.servers if s.toolbox == cut.toolbox}
    now = NOW.timestamp()
    for agent, server, tool in queries(state):
        was, now_allowed = before.check(agent, server, tool, now), after.check(agent, server, tool, now)
        if agent == cut.agent and server in inside:
            assert not now_allowed.allowed
        else:
            assert was == now_allowed
    # The tool grants themselves survive: granting the toolbox again restores access.
    state.toolbox_grants.append(cut)
    again = CompiledPolicy.compile(state.tables(), state.running)
    for agent, server, tool in queries(state):
        assert again.check(agent, server, tool, now) == before.check(agent, server, tool, now)


@settings(max_examples=200, deadline=None)
@given(states(), st.data())
def test_adding_a_grant_never_takes_access_away(state: State, data: st.DataObject) -> None:
    before = CompiledPolicy.compile(state.tables(), state.running)
    agent = data.draw(st.sampled_from(state.agents))
    server = data.draw(st.sampled_from(state.servers))
    state.tool_grants.append(ToolGrant(agent=agent.id, server=server.id, tool=data.draw(st.sampled_from([*REFS, "*"]))))
    state.toolbox_grants.append(ToolboxGrant(agent=agent.id, toolbox=server.toolbox))
    after = CompiledPolicy.compile(state.tables(), state.running)
    now = NOW.timestamp()
    for a, s, t in queries(state):
        if before.check(a, s, t, now).allowed:
            assert after.check(a, s, t, now).allowed


def _simple() -> State:
    box = Toolbox(id="tb_1", name="local")
    server = ServerInstance(id="srv_1", name="time", toolbox=box.id, desired_state=DesiredState.RUNNING)
    tool = ToolDef(server=server.id, name="now", pin="p" * 64, approved_pin="p" * 64, trust=Trust.APPROVED)
    agent = Agent(id="ag_1", name="bot", token_hash=hash_token("secret-token"))
    return State([agent], [box], [server], [tool], [ToolboxGrant(agent="ag_1", toolbox="tb_1")],
                 [ToolGrant(agent="ag_1", server="srv_1", tool="now")], {server.id})


def test_default_deny_with_no_grants() -> None:
    state = _simple()
    state.toolbox_grants.clear()
    state.tool_grants.clear()
    policy = CompiledPolicy.compile(state.tables(), state.running)
    decision = policy.check("ag_1", "srv_1", "now", NOW.timestamp())
    assert decision.reason is Reason.NO_TOOLBOX_GRANT
    assert policy.explain(decision, "ag_1", "srv_1", "now") == "no access to toolbox local"
    assert explain(policy, decision, "ag_1", "srv_1", "now") == "no access to toolbox local ('tbx grant bot local' opens it)"


def test_changed_definition_is_denied_with_its_reason() -> None:
    state = _simple()
    state.tools[0].pin = "q" * 64
    policy = CompiledPolicy.compile(state.tables(), state.running)
    assert policy.check("ag_1", "srv_1", "now", NOW.timestamp()).reason is Reason.TOOL_CHANGED


def test_wildcard_outlives_an_expired_exact_grant() -> None:
    state = _simple()
    state.tool_grants = [
        ToolGrant(agent="ag_1", server="srv_1", tool="now", expires=NOW - timedelta(seconds=1)),
        ToolGrant(agent="ag_1", server="srv_1", tool="*", expires=NOW + timedelta(hours=2)),
    ]
    policy = CompiledPolicy.compile(state.tables(), state.running)
    decision = policy.check("ag_1", "srv_1", "now", NOW.timestamp())
    assert decision.allowed and decision.via == "*"
    assert "server-wide grant time/*" in policy.explain(decision, "ag_1", "srv_1", "now")
    assert not policy.check("ag_1", "srv_1", "now", (NOW + timedelta(hours=3)).timestamp()).allowed


def test_desired_state_stands_in_for_running_without_a_runtime() -> None:
    state = _simple()
    policy = CompiledPolicy.compile(state.tables())
    assert policy.check("ag_1", "srv_1", "now", NOW.timestamp()).allowed
    state.servers[0].desired_state = DesiredState.STOPPED
    policy = CompiledPolicy.compile(state.tables())
    assert policy.check("ag_1", "srv_1", "now", NOW.timestamp()).reason is Reason.SERVER_NOT_RUNNING


def test_authenticate_only_enabled_agents_with_the_exact_token() -> None:
    state = _simple()
    policy = CompiledPolicy.compile(state.tables(), state.running)
    assert policy.authenticate("secret-token") == "ag_1"
    assert policy.authenticate("secret-token ") is None
    assert policy.authenticate("") is None
    state.agents[0].disabled = True
    assert CompiledPolicy.compile(state.tables()).authenticate("secret-token") is None


def test_tokens_carry_256_random_bits() -> None:
    tokens = {new_agent_token() for _ in range(100)}
    assert len(tokens) == 100
    for token in tokens:
        assert token.startswith("tbx_") and len(token) >= 4 + 43


def test_items_of_other_kinds_need_their_own_grant_and_are_explained_as_such() -> None:
    state = _simple()
    pin = "p" * 64
    state.tools += [
        ToolDef(server="srv_1", kind=ItemKind.PROMPT, name="now", pin=pin, approved_pin=pin, trust=Trust.APPROVED),
        ToolDef(server="srv_1", kind=ItemKind.RESOURCE, name="time://zones", pin=pin, trust=Trust.PENDING),
    ]
    policy = CompiledPolicy.compile(state.tables(), state.running)
    now = NOW.timestamp()
    assert policy.visible_items("ag_1", now) == [("srv_1", "now")], "the tool grant opens the tool only"
    prompt = policy.check("ag_1", "srv_1", "prompt:now", now)
    assert prompt.reason is Reason.NO_TOOL_GRANT
    assert policy.explain(prompt, "ag_1", "srv_1", "prompt:now") == "no grant for time/prompt:now or time/*"

    state.tool_grants.append(ToolGrant(agent="ag_1", server="srv_1", tool="*"))
    policy = CompiledPolicy.compile(state.tables(), state.running)
    assert sorted(policy.visible_items("ag_1", now)) == [("srv_1", "now"), ("srv_1", "prompt:now")]
    allowed = policy.check("ag_1", "srv_1", "prompt:now", now)
    assert policy.explain(allowed, "ag_1", "srv_1", "prompt:now").endswith("; prompt approved; server running")
    pending = policy.check("ag_1", "srv_1", "resource:time://zones", now)
    assert pending.reason is Reason.TOOL_PENDING
    assert explain(policy, pending, "ag_1", "srv_1", "resource:time://zones") == (
        "resource not approved yet ('tbx tools approve local/time/resource:time://zones')")
    unknown = policy.check("ag_1", "srv_1", "template:time://{zone}", now)
    assert policy.explain(unknown, "ag_1", "srv_1", "template:time://{zone}") == (
        "time offers no template 'time://{zone}' (not discovered yet)")
    assert {split_ref(ref)[0] for _sid, ref in policy.visible_items("ag_1", now)} == {ItemKind.TOOL, ItemKind.PROMPT}
