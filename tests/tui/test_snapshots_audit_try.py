"""6 Audit and 7 Try at 120x36 with fixed data and nothing live (pytest-textual-snapshot).

Regenerate after an intended change with:
    pytest tests/tui/test_snapshots_audit_try.py --snapshot-update
"""

from __future__ import annotations

import base64
import json
from datetime import timedelta
from pathlib import Path

from textual.pilot import Pilot
from textual.widgets import DataTable

from console.audit import AuditEvent
from console.model import ServerInstance, ToolDef, Trust, tool_pin
from console.trust.redact import Redactor, argument_digest
from console.tui.backend import Backend
from console.tui.widgets.try_call import Exchange, TryOutcome
from console.workspace import Workspace
from tests.support.tui import WHEN, still_app

SIZE = (120, 36)
REAL = Path(__file__).resolve().parents[1] / "fixtures" / "real_tools"


def digest(arguments: dict) -> dict:
    return argument_digest(arguments, Redactor())


def fixed_audit(ws: Workspace) -> None:
    """A day's worth of records with fixed times: changes, allowed and denied calls, an error."""
    ws.paths.audit_log.unlink(missing_ok=True)
    with ws.change() as change:
        meta = change.repos.meta.get("audit") or {}
        meta.pop("checkpoint", None)
        meta["key"] = base64.b64encode(bytes(range(32))).decode()  # fixed MACs: the detail pane shows them
        change.repos.meta.set("audit", meta)
    batches = [
        (0, AuditEvent("user:ada", "vault.init", "vault.tbx", "ok", None, {"key_source": "OS keyring"})),
        (1, AuditEvent("user:ada", "toolbox.add", "toolbox:local", "ok")),
        (2, AuditEvent("user:ada", "server.add", "server:local/time", "ok", None, {
            "catalog": "time", "image": "tbx/time:0123456789abcdef", "network": "none", "env": [],
            "secrets": [], "mounts": []})),
        (3, AuditEvent("user:ada", "tool.approve", "tool:local/time/get_current_time", "ok", None,
                       {"pin": "9f2c61d0a4be", "was": "pending", "accepted": [], "findings": 0})),
        (4, AuditEvent("user:ada", "agent.add", "agent:cursor", "ok", "cursor")),
        (5, AuditEvent("user:ada", "grant.tool", "tool:local/time/get_current_time", "ok", "cursor",
                       {"expires": None})),
        (9, AuditEvent("agent:cursor", "tool.call", "tool:local/time/get_current_time", "allow", "cursor",
                       {"arguments": digest({"timezone": "Europe/Paris"}), "latency_ms": 2.4})),
        (12, AuditEvent("agent:cursor", "tool.call", "tool:local/files/write_file", "deny", "cursor", {
            "reason": "no-tool-grant", "arguments": digest({"path": "/data/notes.md", "content": "hello"})})),
        (15, AuditEvent("owner", "tool.call", "tool:local/git/git_log", "error", "cursor", {
            "on_behalf": True, "error": "server local/git is exited; 'tbx server start local/git'"})),
        (20, AuditEvent("user:ada", "tool.call", "tool:local/time/convert_time", "ok", None, {
            "arguments": digest({"source_timezone": "UTC", "target_timezone": "Asia/Tokyo", "time": "09:30"}),
            "duration_ms": 3.1})),
    ]
    head = None
    for minutes, event in batches:
        head = ws.audit.append([event], now=WHEN + timedelta(minutes=minutes)) or head
    assert head is not None
    ws.advance_checkpoint(head)


def add_fetch(ws: Workspace) -> None:
    """The real fetch server's tool, for a form with a URI, bounded integers and a boolean."""
    tool = json.loads((REAL / "fetch.json").read_text())["tools"][0]
    with ws.change() as change:
        local = change.repos.toolboxes.require("local")
        web = change.repos.servers.put(ServerInstance(toolbox=local.id, name="web", catalog_id="fetch",
                                                      image="tbx/fetch:0123456789abcdef", created=WHEN))
        pin = tool_pin(tool["name"], tool["description"], tool["inputSchema"], None, None)
        change.repos.tools.put(ToolDef(server=web.id, name=tool["name"], description=tool["description"],
                                       input_schema=tool["inputSchema"], pin=pin, approved_pin=pin,
                                       trust=Trust.APPROVED, discovered=WHEN))


async def settled(pilot: Pilot) -> None:
    for _ in range(3):
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()


def pick(pilot: Pilot, key: str) -> None:
    table = pilot.app.screen.query_one("#tools", DataTable)
    table.move_cursor(row=table.get_row_index(key))


def test_audit_with_detail(snap_compare, seeded: Backend) -> None:  # noqa: ANN001
    fixed_audit(seeded.workspace)

    async def run_before(pilot: Pilot) -> None:
        await pilot.press("6")
        await settled(pilot)
        await pilot.press("up", "up")  # the denied call
        await settled(pilot)

    assert snap_compare(still_app(seeded), terminal_size=SIZE, run_before=run_before)


def test_try_form_with_inline_errors(snap_compare, seeded: Backend) -> None:  # noqa: ANN001
    add_fetch(seeded.workspace)

    async def run_before(pilot: Pilot) -> None:
        await pilot.press("7")
        await settled(pilot)
        pick(pilot, "web/fetch")
        await settled(pilot)
        form = pilot.app.screen.form
        form.field("url").control.value = "example.org/page"
        form.field("max_length").control.value = "0"
        await pilot.pause()
        await pilot.press("f5")
        await settled(pilot)

    assert snap_compare(still_app(seeded), terminal_size=SIZE, run_before=run_before)


def time_outcome() -> TryOutcome:
    """What a call of mcp-server-time looks like on the wire (ids as the attach transport writes them)."""
    result = {"timezone": "Europe/Paris", "datetime": "2026-11-24T10:30:00+01:00", "day_of_week": "Tuesday",
              "is_dst": False}
    lines = [
        ("sent", {"jsonrpc": "2.0", "id": "tbx-5f3a9c1e-0", "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": {},
            "clientInfo": {"name": "toolbox-console", "version": "0.1.0"}}}),
        ("received", {"jsonrpc": "2.0", "id": "tbx-5f3a9c1e-0", "result": {
            "protocolVersion": "2025-11-25", "capabilities": {"tools": {"listChanged": False}},
            "serverInfo": {"name": "mcp-time", "version": "1.26.0"}}}),
        ("sent", {"jsonrpc": "2.0", "method": "notifications/initialized"}),
        ("sent", {"jsonrpc": "2.0", "id": "tbx-5f3a9c1e-1", "method": "tools/call", "params": {
            "name": "get_current_time", "arguments": {"timezone": "Europe/Paris"}}}),
        ("received", {"jsonrpc": "2.0", "id": "tbx-5f3a9c1e-1", "result": {
            "content": [{"type": "text", "text": json.dumps(result, indent=2)}],
            "structuredContent": result, "isError": False}}),
    ]
    exchange = [Exchange(way, json.dumps(body, separators=(",", ":")).encode()) for way, body in lines]
    return TryOutcome("local/time/get_current_time", "@owner", result=lines[-1][1]["result"], elapsed_ms=3.4,
                      exchange=exchange)


async def _show_time_outcome(pilot: Pilot) -> None:
    await pilot.press("7")
    await settled(pilot)
    pick(pilot, "time/get_current_time")
    await settled(pilot)
    pilot.app.screen.form.field("timezone").control.value = "Europe/Paris"
    pilot.app.screen.show_outcome(time_outcome())
    await settled(pilot)


def test_try_result(snap_compare, seeded: Backend) -> None:  # noqa: ANN001
    assert snap_compare(still_app(seeded), terminal_size=SIZE, run_before=_show_time_outcome)


def test_try_raw_exchange(snap_compare, seeded: Backend) -> None:  # noqa: ANN001
    async def run_before(pilot: Pilot) -> None:
        await _show_time_outcome(pilot)
        await pilot.press("right_square_bracket")
        await settled(pilot)

    assert snap_compare(still_app(seeded), terminal_size=SIZE, run_before=run_before)
