"""The grants matrix shows what the policy enforces: every cell against ``policy.check``.

The matrix is drawn from the vault's tables by ``GrantGrid``; the gateway decides with
``CompiledPolicy``. A cell the user reads as "allowed" must be a call the gateway lets
through, and a refused cell must show the reason the gateway refuses it for.
"""

from __future__ import annotations

import math
from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from console.model import Agent, ServerInstance, Toolbox, ToolboxGrant, ToolDef, ToolGrant, Trust
from console.policy import CompiledPolicy, Reason
from console.tui.widgets.grant_grid import AgentCol, Cell, Edit, GrantGrid, Kind, Mark, Row
from tests.test_policy import NOW, REFS, State, states


def _one_tool(grants: list[ToolGrant]) -> State:
    box = Toolbox(id="tb_1", name="local")
    server = ServerInstance(id="srv_1", name="time", toolbox=box.id)
    pin = "p" * 64
    tool = ToolDef(server=server.id, name="now", pin=pin, approved_pin=pin, trust=Trust.APPROVED)
    agent = Agent(id="ag_1", name="bot", token_hash="0" * 64)
    return State([agent], [box], [server], [tool], [ToolboxGrant(agent="ag_1", toolbox="tb_1")], grants, {server.id})


def test_an_expired_server_wide_grant_shows_expired_on_the_tool_row() -> None:
    state = _one_tool([ToolGrant(agent="ag_1", server="srv_1", tool="*", expires=NOW - timedelta(hours=1))])
    tables = state.tables()
    decision = CompiledPolicy.compile(tables, state.running).check("ag_1", "srv_1", "now", NOW.timestamp())
    assert decision.reason is Reason.GRANT_EXPIRED

    grid = GrantGrid.build(tables, "local")
    assert grid is not None
    agent = grid.agent_named("bot")
    assert agent is not None
    tool_row = next(row for row in grid.rows if row.key == "srv_1|now")
    cell = grid.cell(tool_row, agent, NOW)
    assert cell.mark is Mark.EXPIRED, cell
    assert cell.expires == NOW - timedelta(hours=1)
    assert grid.explain(tool_row, agent, NOW) == (
        "bot reached local/time/now through local/time/*, which expired at 2026-11-24 11:00 UTC")


# -- every cell, for random vaults --------------------------------------------------------

TRUST_REASON = {"pending": Reason.TOOL_PENDING, "changed": Reason.TOOL_CHANGED, "blocked": Reason.TOOL_BLOCKED}


def shown(grid: GrantGrid, row: Row, agent: AgentCol) -> Reason:
    """The reason a user reads off a cell, in the order the policy applies its rule: the
    agent's column dimmed, its toolbox access row off (the kill switch), then the cell's mark
    and its "not approved" warning."""
    cell = grid.cell(row, agent, NOW)
    access = grid.cell(grid.all_rows[0], agent, NOW)
    assert access.mark in (Mark.ON, Mark.OFF)
    assert cell.disabled == agent.disabled
    if cell.mark in (Mark.GRANTED, Mark.VIA, Mark.EXPIRED):
        assert cell.inactive == (access.mark is Mark.OFF), cell
    if cell.disabled:
        return Reason.AGENT_DISABLED
    if access.mark is Mark.OFF:
        return Reason.NO_TOOLBOX_GRANT
    if cell.mark is Mark.NONE:
        return Reason.NO_TOOL_GRANT
    if cell.mark is Mark.EXPIRED:
        return Reason.GRANT_EXPIRED
    if cell.ineffective:
        return TRUST_REASON[row.trust]
    return Reason.ALLOWED


def assert_grids_agree(state: State) -> None:
    tables = state.tables()
    # The matrix shows grants, not the runtime: with every server running, the policy's
    # answer is the grants' own.
    policy = CompiledPolicy.compile(tables, {s.id for s in state.servers})
    now = NOW.timestamp()
    for box in state.toolboxes:
        grid = GrantGrid.build(tables, box.name)
        assert grid is not None
        assert {a.id for a in grid.all_agents} == {a.id for a in state.agents}
        assert {r.key for r in grid.all_rows[1:] if r.kind is Kind.TOOL} == {
            t.key for t in state.tools if t.server in {s.id for s in state.servers if s.toolbox == box.id}}
        for row in grid.all_rows[1:]:
            for agent in grid.all_agents:
                decision = policy.check(agent.id, row.server_id, row.tool, now)
                cell = grid.cell(row, agent, NOW)
                where = (row.key, agent.id, cell, decision)
                if row.kind is Kind.SERVER:
                    # ``*`` is no item: where its grant lets the agent through, the policy stops at the item.
                    expected = shown(grid, row, agent)
                    assert decision.reason is (Reason.UNKNOWN_TOOL if expected is Reason.ALLOWED else expected), where
                    continue
                assert decision.reason is shown(grid, row, agent), where
                assert decision.allowed == (cell.granted and not cell.inactive and not cell.ineffective
                                            and not cell.disabled), where
                if decision.allowed and cell.mark is Mark.VIA:
                    assert decision.via == "*" and _seconds(cell) == decision.expires, where
                if decision.allowed and cell.mark is Mark.GRANTED:
                    assert _seconds(cell) <= decision.expires, where  # access lasts at least as long as shown


def _seconds(cell: Cell) -> float:
    return math.inf if cell.expires is None else cell.expires.timestamp()


@settings(max_examples=300, deadline=None)
@given(states())
def test_every_cell_says_what_the_policy_decides(state: State) -> None:
    assert_grids_agree(state)


EXPIRIES = [None, NOW - timedelta(minutes=1), NOW, NOW + timedelta(hours=1), NOW + timedelta(days=40)]


@settings(max_examples=200, deadline=None)
@given(states(), st.data())
def test_a_cell_changed_before_the_write_lands_says_what_the_policy_will(state: State, data: st.DataObject) -> None:
    """The optimistic overlay: an edit applied to the grid shows what the vault will hold."""
    tables = state.tables()
    box = data.draw(st.sampled_from(state.toolboxes))
    grid = GrantGrid.build(tables, box.name)
    assert grid is not None
    for _ in range(data.draw(st.integers(1, 4))):
        agent = data.draw(st.sampled_from(state.agents))
        present = data.draw(st.booleans())
        servers = [s for s in state.servers if s.toolbox == box.id]
        if not servers or data.draw(st.booleans()):
            grid.apply(Edit(agent.id, None, "", present))
            state.toolbox_grants = [g for g in state.toolbox_grants if (g.agent, g.toolbox) != (agent.id, box.id)]
            state.toolbox_grants += [ToolboxGrant(agent=agent.id, toolbox=box.id)] if present else []
            continue
        server = data.draw(st.sampled_from(servers))
        ref = data.draw(st.sampled_from([*REFS, "*"]))
        expires = data.draw(st.sampled_from(EXPIRIES)) if present else None
        grid.apply(Edit(agent.id, server.id, ref, present, expires))
        state.tool_grants = [g for g in state.tool_grants if g.key != f"{agent.id}|{server.id}|{ref}"]
        state.tool_grants += [ToolGrant(agent=agent.id, server=server.id, tool=ref, expires=expires)] if present else []
    after = GrantGrid.build(state.tables(), box.name)
    assert after is not None
    for row in grid.all_rows:
        for agent_col in grid.all_agents:
            assert grid.cell(row, agent_col, NOW) == after.cell(row, agent_col, NOW), (row.key, agent_col.id)
    assert_grids_agree(state)
