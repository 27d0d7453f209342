"""Ask grants (issue 18, part 1): ``tbx grant --ask`` holds each call for the owner, the
policy says so without hiding the item, and the owner's "allow for N minutes" and "always
deny" are grants the same rule reads. Grants stored before modes existed stay allow."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from console.model import (
    Agent,
    DesiredState,
    GrantMode,
    ItemKind,
    ServerInstance,
    Toolbox,
    ToolboxGrant,
    ToolDef,
    ToolGrant,
    Trust,
)
from console.paths import Paths
from console.policy import CompiledPolicy, Reason
from console.services.grants import allow_for, always_deny
from console.workspace import Workspace

PIN = "p" * 64


def seed(paths: Paths) -> tuple[str, str]:
    """Toolbox local, server time (running) with approved tools now and convert; agent bot
    with access to the toolbox and no tool grant. (agent id, server id)."""
    ws = Workspace.open(paths)
    with ws.change() as change:
        repos = change.repos
        local = repos.toolboxes.put(Toolbox(name="local"))
        time = repos.servers.put(ServerInstance(toolbox=local.id, name="time", desired_state=DesiredState.RUNNING))
        for name in ("now", "convert"):
            repos.tools.put(ToolDef(server=time.id, kind=ItemKind.TOOL, name=name, pin=PIN, approved_pin=PIN,
                                    trust=Trust.APPROVED))
        bot = repos.agents.put(Agent(name="bot", token_hash="1" * 64))
        repos.toolbox_grants.put(ToolboxGrant(agent=bot.id, toolbox=local.id))
    return bot.id, time.id


def policy(paths: Paths) -> CompiledPolicy:
    return Workspace.open(paths).policy()


def test_grant_ask_holds_calls_and_access_explains_it(tbx, memory_keyring, tbx_home: Paths) -> None:  # noqa: ANN001
    assert tbx("init").exit_code == 0
    bot, time = seed(tbx_home)
    done = tbx("grant", "bot", "local/time/now", "--ask")
    assert done.exit_code == 0, done.stderr
    assert "each call waits for the owner's approval" in done.stdout
    decision = policy(tbx_home).check(bot, time, "now", datetime.now(UTC).timestamp())
    assert (decision.allowed, decision.ask, decision.via) == (True, True, "now")
    assert tbx("grant", "bot", "local/time/now", "--ask").stdout.startswith("bot already holds local/time/now (ask)")
    access = tbx("access", "bot").stdout
    assert "ask    time/now      asks the owner: each call waits for approval (ask grant time/now)" in access
    report = json.loads(tbx("access", "bot", "--json").stdout)
    assert [(t["tool"], t["allowed"], t["ask"]) for t in report["toolboxes"][0]["tools"]] == [
        ("convert", False, False), ("now", True, True)]
    # The same grant made plain again: it stops asking.
    assert tbx("grant", "bot", "local/time/now").exit_code == 0
    assert policy(tbx_home).check(bot, time, "now", datetime.now(UTC).timestamp()).ask is False
    assert tbx("grant", "bot", "local", "--ask").exit_code == 2  # a toolbox is on or off


def test_server_wide_ask_with_expiry_covers_every_item_and_ends(tbx, memory_keyring, tbx_home: Paths) -> None:  # noqa: ANN001
    assert tbx("init").exit_code == 0
    bot, time = seed(tbx_home)
    assert tbx("grant", "bot", "local/time", "--ask", "--for", "1h").exit_code == 0
    compiled, now = policy(tbx_home), datetime.now(UTC).timestamp()
    assert [compiled.check(bot, time, tool, now).ask for tool in ("now", "convert")] == [True, True]
    assert sorted(ref for _s, ref in compiled.visible_items(bot, now)) == ["convert", "now"]  # seen, held when called
    later = compiled.check(bot, time, "now", now + 2 * 3600)
    assert (later.allowed, later.reason) == (False, Reason.GRANT_EXPIRED)


def test_allow_for_minutes_then_asks_again(memory_keyring, tbx_home: Paths, workspace: Workspace) -> None:  # noqa: ANN001
    bot, time = seed(tbx_home)
    with workspace.change() as change:  # a server-wide ask grant, and the item's own ask grant on convert
        change.repos.tool_grants.put(ToolGrant(agent=bot, server=time, tool="*", mode=GrantMode.ASK))
        change.repos.tool_grants.put(ToolGrant(agent=bot, server=time, tool="convert", mode=GrantMode.ASK))
    for tool in ("now", "convert"):
        until = allow_for(workspace, bot, time, tool, timedelta(minutes=5)).timestamp()
        compiled = policy(tbx_home)
        inside, after = compiled.check(bot, time, tool, until - 1), compiled.check(bot, time, tool, until + 1)
        assert (inside.allowed, inside.ask) == (True, False), tool
        assert (after.allowed, after.ask) == (True, True), tool  # asked again, not cut off
    kept = workspace.repos.tool_grants.get(f"{bot}|{time}|convert")
    assert kept is not None and kept.mode is GrantMode.ASK  # the own ask grant keeps its mode


def test_always_deny_beats_a_server_wide_grant(memory_keyring, tbx_home: Paths, workspace: Workspace) -> None:  # noqa: ANN001
    bot, time = seed(tbx_home)
    with workspace.change() as change:
        change.repos.tool_grants.put(ToolGrant(agent=bot, server=time, tool="*"))
    always_deny(workspace, bot, time, "now")
    compiled, now = policy(tbx_home), datetime.now(UTC).timestamp()
    assert compiled.check(bot, time, "now", now).reason is Reason.OWNER_DENIED
    assert compiled.check(bot, time, "convert", now).allowed
    assert [ref for _s, ref in compiled.visible_items(bot, now)] == ["convert"]
    assert compiled.explain(compiled.check(bot, time, "now", now), bot, time, "now") == "the owner always denies time/now"
    actions = [r["action"] for r in workspace.audit.records()]
    assert "grant.deny" in actions


def test_grants_stored_without_a_mode_load_as_allow(memory_keyring, tbx_home: Paths, workspace: Workspace) -> None:  # noqa: ANN001
    bot, time = seed(tbx_home)
    old = {"agent": bot, "server": time, "tool": "now", "expires": None,
           "created": "2026-01-01T00:00:00+00:00"}  # what the vault held before grants had a mode
    assert ToolGrant.model_validate(old).mode is GrantMode.ALLOW
    repos = Workspace.open(tbx_home).repos
    compiled = CompiledPolicy.compile({
        "toolboxes": repos.toolboxes.raw(), "servers": repos.servers.raw(), "tools": repos.tools.raw(),
        "agents": repos.agents.raw(), "toolbox_grants": repos.toolbox_grants.raw(),
        "tool_grants": {f"{bot}|{time}|now": old},
    })
    decision = compiled.check(bot, time, "now", datetime.now(UTC).timestamp())
    assert (decision.allowed, decision.ask) == (True, False)
