"""``tbx access`` word for word: every reason the policy gives, with the command that lifts it.

The policy explains a decision in plain words and the services add the CLI command that
fixes it; the text a user (or a script) reads stays exactly this.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

from console.model import Agent, DesiredState, ItemKind, ServerInstance, Toolbox, ToolboxGrant, ToolDef, ToolGrant, Trust
from console.paths import Paths
from console.workspace import Workspace

LATER = datetime(2099, 1, 2, 3, 4, 5, tzinfo=UTC)
EARLIER = datetime(2001, 1, 2, 3, 4, 5, tzinfo=UTC)


def seed(paths: Paths) -> None:
    """Two toolboxes (one open to bot, one not), a running and a stopped server, items in
    every trust state, grants of every shape; agent ``off`` is disabled."""
    pin = "p" * 64
    ws = Workspace.open(paths)
    with ws.change() as change:
        repos = change.repos
        local, far = repos.toolboxes.put(Toolbox(name="local")), repos.toolboxes.put(Toolbox(name="far"))
        time = repos.servers.put(ServerInstance(toolbox=local.id, name="time", desired_state=DesiredState.RUNNING))
        files = repos.servers.put(ServerInstance(toolbox=local.id, name="files", desired_state=DesiredState.STOPPED))
        notes = repos.servers.put(ServerInstance(toolbox=far.id, name="notes", desired_state=DesiredState.RUNNING))
        items = [
            (time, ItemKind.TOOL, "now", Trust.APPROVED, pin), (time, ItemKind.TOOL, "convert", Trust.APPROVED, pin),
            (time, ItemKind.TOOL, "zones", Trust.PENDING, None), (time, ItemKind.TOOL, "shift", Trust.APPROVED, "q" * 64),
            (time, ItemKind.TOOL, "nuke", Trust.BLOCKED, pin), (time, ItemKind.PROMPT, "greet", Trust.APPROVED, pin),
            (time, ItemKind.RESOURCE, "time://zones", Trust.PENDING, None),
            (files, ItemKind.TOOL, "read", Trust.APPROVED, pin), (notes, ItemKind.TOOL, "find", Trust.APPROVED, pin),
        ]
        for server, kind, name, trust, approved in items:
            repos.tools.put(ToolDef(server=server.id, kind=kind, name=name, pin=pin, approved_pin=approved, trust=trust))
        bot = repos.agents.put(Agent(name="bot", token_hash="1" * 64))
        off = repos.agents.put(Agent(name="off", token_hash="2" * 64, disabled=True))
        for agent in (bot, off):
            repos.toolbox_grants.put(ToolboxGrant(agent=agent.id, toolbox=local.id))
        grants = [(time, "now", None), (time, "convert", LATER), (time, "*", EARLIER), (time, "zones", None),
                  (time, "shift", None), (time, "nuke", None), (time, "ghost", None), (files, "*", None),
                  (notes, "find", None)]
        for server, tool, expires in grants:
            repos.tool_grants.put(ToolGrant(agent=bot.id, server=server.id, tool=tool, expires=expires))
        repos.tool_grants.put(ToolGrant(agent=off.id, server=time.id, tool="now"))


BOT = """\
agent bot (enabled): 2 tool(s) usable now
toolbox far: closed (no toolbox grant)
  tools:
    deny   notes/find  no access to toolbox far ('tbx grant bot far' opens it)
toolbox local: open
  tools:
    deny   files/read                  server files is not running ('tbx server start local/files')
    allow  time/convert                allowed by the grant time/convert until 2099-01-02T03:04:05Z; tool approved; server running
    deny   time/ghost                  time offers no tool 'ghost' (not discovered yet)
    allow  time/now                    allowed by the grant time/now; tool approved; server running
    deny   time/nuke                   tool is blocked
    deny   time/shift                  tool definition changed since approval; review and re-approve local/time/shift
    deny   time/zones                  tool not approved yet ('tbx tools approve local/time/zones')
  resources:
    deny   time/resource:time://zones  the grant for time/resource:time://zones has expired
  prompts:
    deny   time/prompt:greet           the grant for time/prompt:greet has expired
"""

OFF = """\
agent off (DISABLED): nothing usable now
toolbox far: closed (no toolbox grant)
  tools:
    deny   notes/find  agent off is disabled ('tbx agent enable off')
toolbox local: open
  tools:
    deny   files/read                  agent off is disabled ('tbx agent enable off')
    deny   time/convert                agent off is disabled ('tbx agent enable off')
    deny   time/now                    agent off is disabled ('tbx agent enable off')
    deny   time/nuke                   agent off is disabled ('tbx agent enable off')
    deny   time/shift                  agent off is disabled ('tbx agent enable off')
    deny   time/zones                  agent off is disabled ('tbx agent enable off')
  resources:
    deny   time/resource:time://zones  agent off is disabled ('tbx agent enable off')
  prompts:
    deny   time/prompt:greet           agent off is disabled ('tbx agent enable off')
"""

BOT_JSON = [  # (toolbox, granted): (server, tool, allowed, reason, why, expires, kind, name)...
    (("far", False), [
        ("notes", "find", False, "no-toolbox-grant", "no access to toolbox far ('tbx grant bot far' opens it)", None,
         "tool", "find"),
    ]),
    (("local", True), [
        ("files", "read", False, "server-not-running", "server files is not running ('tbx server start local/files')",
         None, "tool", "read"),
        ("time", "convert", True, "allowed",
         "allowed by the grant time/convert until 2099-01-02T03:04:05Z; tool approved; server running", 4071006245.0,
         "tool", "convert"),
        ("time", "ghost", False, "unknown-tool", "time offers no tool 'ghost' (not discovered yet)", None, "tool",
         "ghost"),
        ("time", "now", True, "allowed", "allowed by the grant time/now; tool approved; server running", None, "tool",
         "now"),
        ("time", "nuke", False, "tool-blocked", "tool is blocked", None, "tool", "nuke"),
        ("time", "shift", False, "tool-changed",
         "tool definition changed since approval; review and re-approve local/time/shift", None, "tool", "shift"),
        ("time", "zones", False, "tool-pending", "tool not approved yet ('tbx tools approve local/time/zones')", None,
         "tool", "zones"),
        ("time", "resource:time://zones", False, "grant-expired",
         "the grant for time/resource:time://zones has expired", None, "resource", "time://zones"),
        ("time", "prompt:greet", False, "grant-expired", "the grant for time/prompt:greet has expired", None, "prompt",
         "greet"),
    ]),
]
FIELDS = ["server", "tool", "allowed", "reason", "why", "expires", "kind", "name"]


def test_access_says_why_and_what_to_run_word_for_word(tbx, memory_keyring, tbx_home: Paths) -> None:  # noqa: ANN001
    assert tbx("init").exit_code == 0
    seed(tbx_home)
    bot = tbx("access", "bot", "--all")
    assert (bot.exit_code, bot.stderr) == (0, "")
    assert bot.stdout == BOT
    assert tbx("access", "bot").stdout == BOT  # bot holds a grant on every server: --all adds nothing
    assert tbx("access", "off", "--all").stdout == OFF
    report = json.loads(tbx("access", "bot", "--all", "--json").stdout)
    assert (report["agent"], report["enabled"]) == ("bot", True)
    assert [((box["name"], box["granted"]), [[t[f] for f in FIELDS] for t in box["tools"]])
            for box in report["toolboxes"]] == [(box, [list(t) for t in tools]) for box, tools in BOT_JSON]
    assert all(list(t) == [*FIELDS, "ask"] and t["ask"] is False for box in report["toolboxes"] for t in box["tools"])
