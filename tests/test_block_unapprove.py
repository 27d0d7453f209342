"""Taking an approval back and blocking an item: what the policy then says, what
rediscovery keeps, what a whole-server approval leaves alone, and the CLI verbs."""

from __future__ import annotations

import pytest

from console.model import ServerInstance, Trust
from console.policy import Reason
from console.services import grants, toolboxes
from console.services.agents import add_agent
from console.services.grants import Target
from console.services.tools import approve, block, unapprove
from console.workspace import Workspace
from tests.test_trust_approval import CLEAN, discover, tool

OTHER = {"name": "get_product", "description": "Returns the product of two numbers",
         "inputSchema": {"type": "object", "properties": {"a": {"type": "number"}, "b": {"type": "number"}}}}


@pytest.fixture
def calc(workspace: Workspace) -> ServerInstance:
    toolboxes.add_local(workspace, "local")
    server = discover(workspace, "calc", [CLEAN, OTHER])
    approve(workspace, "local", "calc")
    add_agent(workspace, "bot")
    grants.grant(workspace, "bot", Target("local"))
    grants.grant(workspace, "bot", Target("local", "calc", "*"))
    return server


def reason(ws: Workspace, server: ServerInstance, name: str) -> Reason:
    ws.refresh()
    return ws.policy().tool_reason[(server.id, name)]


def test_unapprove_hides_an_item_and_keeps_its_grants(workspace: Workspace, calc: ServerInstance) -> None:
    assert reason(workspace, calc, "get_sum") is Reason.ALLOWED
    assert unapprove(workspace, "local", "calc", "get_sum") == ["get_sum"]
    item = tool(workspace, calc, "get_sum")
    assert item.trust is Trust.PENDING and item.approved_pin is None and not item.exposable
    assert reason(workspace, calc, "get_sum") is Reason.TOOL_PENDING
    assert reason(workspace, calc, "get_product") is Reason.ALLOWED, "only the named item"
    assert len(list(workspace.repos.tool_grants)) == 1, "the grant stays: approving again restores access"
    [record] = [r for r in workspace.audit.records() if r["action"] == "tool.unapprove"]
    assert record["target"] == "tool:local/calc/get_sum" and record["detail"]["was"] == "approved"
    assert unapprove(workspace, "local", "calc", "get_sum") == [], "twice changes nothing"
    approve(workspace, "local", "calc", "get_sum")
    assert reason(workspace, calc, "get_sum") is Reason.ALLOWED


def test_a_block_outlives_rediscovery_a_changed_definition_and_a_server_approval(
        workspace: Workspace, calc: ServerInstance) -> None:
    assert block(workspace, "local", "calc", "get_sum") == ["get_sum"]
    assert tool(workspace, calc, "get_sum").trust is Trust.BLOCKED
    assert reason(workspace, calc, "get_sum") is Reason.TOOL_BLOCKED

    discover(workspace, "calc", [CLEAN, OTHER])  # the same definitions, found again
    assert tool(workspace, calc, "get_sum").trust is Trust.BLOCKED
    discover(workspace, "calc", [{**CLEAN, "description": "Returns the sum, now faster"}, OTHER])
    assert tool(workspace, calc, "get_sum").trust is Trust.BLOCKED, "a changed definition stays blocked"

    result = approve(workspace, "local", "calc")
    assert result.blocked == ["get_sum"] and result.approved == []
    assert tool(workspace, calc, "get_sum").trust is Trust.BLOCKED

    assert approve(workspace, "local", "calc", "get_sum").approved == ["get_sum"], "by name it is lifted"
    assert reason(workspace, calc, "get_sum") is Reason.ALLOWED


def test_unblock_makes_an_item_pending_and_block_covers_a_whole_server(
        workspace: Workspace, calc: ServerInstance) -> None:
    assert block(workspace, "local", "calc") == ["get_product", "get_sum"]
    assert block(workspace, "local", "calc") == []
    assert block(workspace, "local", "calc", "get_sum", blocked=False) == ["get_sum"]
    assert tool(workspace, calc, "get_sum").trust is Trust.PENDING
    assert tool(workspace, calc, "get_product").trust is Trust.BLOCKED
    actions = [r["action"] for r in workspace.audit.records() if r["action"].startswith("tool.")]
    assert actions[-3:] == ["tool.block", "tool.block", "tool.unblock"]


def test_cli_block_unblock_and_unapprove(tbx, workspace: Workspace, calc: ServerInstance) -> None:  # noqa: ANN001
    done = tbx("tools", "unapprove", "local/calc/get_sum")
    assert done.exit_code == 0 and done.stdout == "approval taken back from 1 tool(s): get_sum\n" and not done.stderr
    assert tbx("tools", "unapprove", "local/calc/get_sum").stdout == "nothing was approved: nothing changed\n"

    blocked = tbx("tools", "block", "local/calc/get_product")
    assert blocked.exit_code == 0 and blocked.stdout == "blocked: 1 tool(s): get_product\n"
    server = tbx("tools", "approve", "local/calc")
    assert server.stdout.splitlines() == [
        "approved 1 tool(s): get_sum",
        "left blocked: local/calc/get_product; approve it by name to unblock it",
    ]
    undone = tbx("tools", "block", "--undo", "local/calc/get_product")
    assert undone.stdout == "unblocked (pending approval): 1 tool(s): get_product\n"
    listed = {line.split()[0]: line.split()[2] for line in tbx("tools", "list", "local/calc").stdout.splitlines()[1:]}
    assert listed == {"local/calc/get_product": "pending", "local/calc/get_sum": "approved"}
    missing = tbx("tools", "block", "local/calc/nope")
    assert missing.exit_code == 1 and "has no tool 'nope'" in missing.stderr


def test_grant_holders_names_only_the_agents_that_reach_the_item_now(workspace: Workspace, calc: ServerInstance) -> None:
    from datetime import timedelta

    from console.services.agents import set_enabled
    from console.services.grants import agent_list, grant_holders

    for name in ("direct", "closed", "off", "lapsed"):
        add_agent(workspace, name)
    for name in ("direct", "off", "lapsed"):
        grants.grant(workspace, name, Target("local"))
    grants.grant(workspace, "direct", Target("local", "calc", "get_sum"))
    grants.grant(workspace, "closed", Target("local", "calc", "get_sum"))  # no toolbox access: reaches nothing
    grants.grant(workspace, "off", Target("local", "calc", "*"))
    set_enabled(workspace, "off", False)
    grants.grant(workspace, "lapsed", Target("local", "calc", "*"), timedelta(seconds=1))
    with workspace.change() as change:  # the grant ran out
        for grant in change.repos.tool_grants:
            if grant.expires is not None:
                grant.expires -= timedelta(hours=1)
                change.repos.tool_grants.put(grant)
    workspace.refresh()
    assert grant_holders(workspace.repos, calc.id, "get_sum") == ["bot", "direct"]  # bot through calc/*
    assert grant_holders(workspace.repos, calc.id, "get_product") == ["bot"]
    assert grant_holders(workspace.repos, calc.id) == ["bot", "direct"]
    assert agent_list([]) == "no agent" and agent_list(["a", "b", "c"]) == "a, b and c"
    assert agent_list([f"a{i}" for i in range(9)], limit=3) == "a0, a1 and 7 more"
