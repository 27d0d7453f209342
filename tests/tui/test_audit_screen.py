"""6 Audit: the live log, its filters, export, and chain verification (seeded vault, no Docker)."""

from __future__ import annotations

import json
import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from textual.widgets import DataTable, Input, Select, Static

from console.audit import AuditEvent
from console.tui.app import ConsoleApp
from console.tui.backend import Backend
from console.tui.screens.audit import AuditScreen
from console.tui.widgets.audit_tail import AuditQuery, AuditTail
from console.workspace import Workspace
from tests.support.tui import still_app

SIZE = (120, 36)


async def open_audit(app: ConsoleApp, pilot) -> AuditScreen:  # noqa: ANN001
    await pilot.press("6")
    await settle(app, pilot)
    assert isinstance(app.screen, AuditScreen)
    return app.screen


async def settle(app: ConsoleApp, pilot) -> None:  # noqa: ANN001
    for _ in range(3):
        await app.workers.wait_for_complete()
        await pilot.pause()


def seqs(screen: AuditScreen) -> list[int]:
    table = screen.query_one("#records", DataTable)
    return [int(str(table.get_row_at(i)[0]).lstrip("✗ ")) for i in range(table.row_count)]


def plain(widget: Static) -> str:
    """What a Static shows, as plain text (rich renderables included)."""
    from rich.console import Console

    console = Console(width=200, record=True, file=open(os.devnull, "w"))  # noqa: SIM115
    console.print(widget.content)
    return console.export_text()


def chain_text(screen: AuditScreen) -> str:
    return str(screen.query_one("#chain", Static).render())


async def test_the_table_shows_the_log_newest_last_with_the_chain_status(seeded: Backend) -> None:
    app = still_app(seeded)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_audit(app, pilot)
        table = screen.query_one("#records", DataTable)
        assert seqs(screen) == [1, 2, 3, 4]
        assert [str(table.get_row_at(i)[4]) for i in range(4)] == ["ok", "allow", "deny", "ok"]
        assert table.get_row_at(2)[5] == "tool:local/files/write_file"
        assert table.cursor_row == 3  # following: the newest record is selected
        assert chain_text(screen) == "✓ chain intact: 4 records"
        detail = plain(screen.query_one("#detail-body", Static))
        assert "tool:local/git/git_log" in detail and "agent cursor" in detail
        await pilot.press("up")
        assert '"reason": "no-tool-grant"' in plain(screen.query_one("#detail-body", Static))


async def test_filters_by_agent_text_decision_and_time(seeded: Backend) -> None:
    now = datetime.now(UTC)
    ws = seeded.workspace
    ws.log_events([AuditEvent("agent:cursor", "tool.call", "tool:local/time/convert_time", "deny", "cursor")])
    head = ws.audit.append([AuditEvent("agent:cursor", "tool.call", "tool:local/time/get_current_time", "allow",
                                       "cursor")], now=now - timedelta(minutes=5))
    head = ws.audit.append([AuditEvent("agent:cursor", "tool.call", "tool:local/git/git_log", "error", "cursor")],
                           now=now - timedelta(hours=3)) or head
    app = still_app(seeded)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_audit(app, pilot)
        assert seqs(screen) == [1, 2, 3, 4, 5, 6, 7]
        agent = screen.query_one("#agent", Select)
        agent.value = "cursor"
        await pilot.pause()
        assert seqs(screen) == [3, 4, 5, 6, 7]
        screen.query_one("#decision", Select).value = "deny"
        await pilot.pause()
        assert seqs(screen) == [3, 5]
        screen.query_one("#decision", Select).clear()
        await pilot.press("slash", *"time")
        await pilot.pause()
        assert screen.query_one("#text", Input).has_focus
        assert seqs(screen) == [5, 6]
        screen.query_one("#text", Input).value = ""
        screen.query_one("#window", Select).value = "1h"
        await pilot.pause()
        assert 6 in seqs(screen) and 7 not in seqs(screen)  # 5 minutes old in, 3 hours old out
        screen.query_one("#window", Select).value = "custom"
        await pilot.pause()
        duration = screen.query_one("#duration", Input)
        duration.value = "4h"
        await pilot.pause()
        assert {6, 7} <= set(seqs(screen))
        duration.value = "soon"  # not a duration: marked, and the last good filter stays
        await pilot.pause()
        assert duration.has_class("-invalid") and {6, 7} <= set(seqs(screen))
        screen.query_one("#window", Select).value = "all"
        agent.clear()
        await pilot.press("escape")
        await pilot.press("x")  # show denials
        await pilot.pause()
        assert seqs(screen) == [3, 5]
        await pilot.press("x")
        await pilot.pause()
        assert seqs(screen) == [1, 2, 3, 4, 5, 6, 7]


async def test_new_records_appear_as_they_are_written(seeded: Backend) -> None:
    app = ConsoleApp(seeded, live=True)  # live: the screen watches the file (its supervisor never completes)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("6")
        screen = app.screen
        assert isinstance(screen, AuditScreen)
        deadline = time.monotonic() + 5
        while seqs(screen) != [1, 2, 3, 4] and time.monotonic() < deadline:
            await pilot.pause(0.1)
        assert seqs(screen) == [1, 2, 3, 4]
        other = Workspace.open(seeded.paths)  # another process (the CLI, a gateway) appends
        other.log_events([AuditEvent("agent:claude-desktop", "tool.call", "tool:local/time/convert_time", "allow",
                                     "claude-desktop")])
        deadline = time.monotonic() + 5
        while seqs(screen) != [1, 2, 3, 4, 5] and time.monotonic() < deadline:
            await pilot.pause(0.1)
        assert seqs(screen) == [1, 2, 3, 4, 5]
        table = screen.query_one("#records", DataTable)
        assert table.cursor_row == 4  # still following
        while chain_text(screen) != "✓ chain intact: 5 records" and time.monotonic() < deadline:
            await pilot.pause(0.1)
        assert chain_text(screen) == "✓ chain intact: 5 records"


async def test_export_writes_the_whole_log(seeded: Backend, tmp_path: Path) -> None:
    app = still_app(seeded)
    dest = tmp_path / "exported.jsonl"
    async with app.run_test(size=SIZE) as pilot:
        await open_audit(app, pilot)
        await pilot.press("e")
        await pilot.pause()
        prompt = app.screen.query_one("#path", Input)
        prompt.value = str(tmp_path / "missing" / "x.jsonl")
        await pilot.press("enter")
        assert "does not exist" in str(app.screen.query_one("#problem", Static).render())
        prompt.value = str(dest)
        await pilot.press("enter")
        await settle(app, pilot)
        assert dest.read_bytes() == seeded.paths.audit_log.read_bytes()
        assert any("exported all 4 records of the log" in n.message for n in app._notifications)


async def test_verify_reports_intact_then_the_first_tampered_record(seeded: Backend) -> None:
    app = still_app(seeded)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_audit(app, pilot)
        assert chain_text(screen) == "✓ chain intact: 4 records"
        log = seeded.paths.audit_log
        lines = log.read_bytes().splitlines(keepends=True)
        record = json.loads(lines[2])
        record["decision"] = "allow"  # someone hides a denial
        lines[2] = json.dumps(record, separators=(",", ":")).encode() + b"\n"
        log.write_bytes(b"".join(lines))
        await pilot.press("v")
        await settle(app, pilot)
        text = chain_text(screen)
        assert text.startswith("✗ CHAIN BROKEN at record 3: altered")
        assert screen.query_one("#chain", Static).has_class("-bad")
        table = screen.query_one("#records", DataTable)
        assert str(table.get_row_at(2)[0]) == "✗ 3"
        assert str(table.get_row_at(2)[4]) == "allow"  # v read the log again: it shows what is on disk


def test_the_tail_reads_only_what_it_needs(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    record = {"ts": "2026-11-24T09:30:00.000000Z", "actor": "gateway", "action": "tool.call",
              "target": "tool:local/time/get_current_time", "decision": "allow", "agent": "a", "detail": {}}
    with open(path, "w") as fh:
        for seq in range(1, 100_001):
            fh.write(json.dumps({"seq": seq, **record}) + "\n")
    tail = AuditTail(path)
    started = time.perf_counter()
    last = tail.load_tail(1000)
    took = time.perf_counter() - started
    assert [r["seq"] for r in last] == list(range(99_001, 100_001))
    assert took < 0.2, f"loading the tail of 100,000 records took {took:.3f}s"
    assert path.stat().st_size - tail.start < 200_000  # a thousand records' worth, not the file
    older = tail.older(1000)
    assert [r["seq"] for r in older] == list(range(98_001, 99_001))
    assert tail.appended() == [] and not tail.changed()
    with open(path, "a") as fh:
        fh.write(json.dumps({"seq": 100_001, **record}) + "\n" + '{"seq": 100002, "ts"')  # second half-written
    assert tail.changed()
    assert [r["seq"] for r in tail.appended()] == [100_001]
    with open(path, "a") as fh:
        fh.write(': "x"}\n')
    assert [r["seq"] for r in tail.appended()] == [100_002]
    path.write_text("")  # cut: the reader must start over
    assert tail.appended() is None


def test_query_matches_on_stored_fields() -> None:
    record = {"ts": "2026-11-24T09:30:00.000000Z", "agent": "cursor", "decision": "deny",
              "action": "tool.call", "target": "tool:local/files/write_file"}
    when = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
    assert AuditQuery(agent="cursor", text="WRITE", decision="deny").matches(record, None)
    assert not AuditQuery(agent="claude").matches(record, None)
    within = AuditQuery(within=timedelta(hours=1))
    assert within.matches(record, within.cutoff(when))
    assert not AuditQuery(within=timedelta(minutes=15)).matches(record, AuditQuery(
        within=timedelta(minutes=15)).cutoff(when))


async def test_palette_offers_audit_commands(seeded: Backend) -> None:
    from console.tui.commands import ConsoleCommands

    app = still_app(seeded)
    async with app.run_test(size=SIZE):
        titles = [title for title, _help, _cb in ConsoleCommands(app.screen)._commands()]
        assert {"audit: Export", "audit: Verify", "audit: Show denials"} <= set(titles)


def test_a_large_log_is_verified_the_same_way_by_a_child_process(seeded: Backend) -> None:
    from console.tui.widgets.audit_tail import CHILD_OVER, verify_log

    ws = seeded.workspace
    event = AuditEvent("agent:cursor", "tool.call", "tool:local/time/get_current_time", "allow", "cursor",
                       {"arguments": {"sha256": "ab" * 32, "preview": "x" * 200}})
    while seeded.paths.audit_log.stat().st_size <= CHILD_OVER:
        head = ws.audit.append([event] * 1000)
    assert head is not None
    ws.advance_checkpoint(head)
    assert verify_log(ws) == ws.audit.verify(ws.audit_checkpoint)
    assert verify_log(ws).ok and verify_log(ws).records == head.seq
    log = seeded.paths.audit_log
    data = log.read_bytes()
    cut = data.rfind(b"\n", 0, len(data) - 1) + 1
    log.write_bytes(data[:cut])  # the last record cut off: only the vault's checkpoint can tell
    found = verify_log(ws)
    assert found == ws.audit.verify(ws.audit_checkpoint)
    assert not found.ok and found.bad_seq == head.seq and "end was cut off" in found.message
