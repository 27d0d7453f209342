"""6 Audit: export says what it wrote (every record, or with the filters on and asked for,
only the matching ones, and how many), and "chain intact: N records" keeps up with a log
that grows even when checking all of it is slow."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from textual.widgets import Checkbox, Input

from console.audit import AuditEvent
from console.tui.app import ConsoleApp
from console.tui.backend import Backend
from console.tui.modals.audit_export import AuditExportModal
from console.tui.screens import audit as audit_screen
from console.tui.screens.audit import AuditScreen
from console.workspace import Workspace
from tests.support.tui import still_app
from tests.tui.test_audit_screen import SIZE, chain_text, open_audit, settle


def notes(app: ConsoleApp) -> list[str]:
    return [n.message for n in app._notifications]


async def test_with_filters_on_export_asks_all_or_matching_and_says_which_and_how_many(
        seeded: Backend, tmp_path: Path) -> None:
    app = still_app(seeded)
    async with app.run_test(size=SIZE) as pilot:
        await open_audit(app, pilot)
        await pilot.press("x")  # denials only: one record of four
        await pilot.pause()
        await pilot.press("e")
        await pilot.pause()
        modal = app.screen
        assert isinstance(modal, AuditExportModal)
        box = modal.query_one("#filtered", Checkbox)
        assert not box.value and "decision deny" in str(box.label)
        assert "Writes every record of the log, not only the filtered ones" in str(modal.query_one("#what").render())
        modal.query_one("#path", Input).value = str(tmp_path / "all.jsonl")
        await pilot.click("#ok")
        await settle(app, pilot)
        assert (tmp_path / "all.jsonl").read_bytes() == seeded.paths.audit_log.read_bytes()
        assert any("exported all 4 records of the log" in n and "not only the filtered ones" in n for n in notes(app))

        await pilot.press("e")
        await pilot.pause()
        modal = app.screen
        modal.query_one("#path", Input).value = str(tmp_path / "denied.jsonl")
        await pilot.click("#filtered")
        await pilot.pause()
        assert modal.query_one("#filtered", Checkbox).value
        assert "only the matching records" in str(modal.query_one("#what").render())
        modal.query_one("#ok").focus()
        await pilot.press("enter")
        await settle(app, pilot)
        written = [json.loads(line) for line in (tmp_path / "denied.jsonl").read_text().splitlines()]
        assert [(r["seq"], r["decision"]) for r in written] == [(3, "deny")]
        assert any("exported the 1 of 4 records that match the filters (decision deny)" in n for n in notes(app))


async def test_without_filters_there_is_nothing_to_choose(seeded: Backend, tmp_path: Path) -> None:
    app = still_app(seeded)
    async with app.run_test(size=SIZE) as pilot:
        await open_audit(app, pilot)
        await pilot.press("e")
        await pilot.pause()
        assert not app.screen.query("#filtered")
        assert "Writes every record of the log:" in str(app.screen.query_one("#what").render())
        await pilot.press("escape")


async def test_the_chain_count_keeps_up_while_a_full_check_is_slow(
        seeded: Backend, monkeypatch: pytest.MonkeyPatch) -> None:
    full = audit_screen.verify_log

    def slow(ws: Workspace):  # noqa: ANN202 - a big log: a second to hash it all
        time.sleep(1.0)
        return full(ws)

    monkeypatch.setattr(audit_screen, "verify_log", slow)
    app = ConsoleApp(seeded, live=True)  # live: the screen follows the file
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("6")
        screen = app.screen
        assert isinstance(screen, AuditScreen)

        async def shows(text: str, within: float) -> None:
            deadline = time.monotonic() + within
            while chain_text(screen) != text and time.monotonic() < deadline:
                await pilot.pause(0.05)
            assert chain_text(screen) == text

        await shows("✓ chain intact: 4 records", 5)
        other = Workspace.open(seeded.paths)  # a gateway or the CLI appends
        for count in (5, 6, 7):
            other.log_events([AuditEvent("agent:cursor", "tool.call", "tool:local/time/convert_time", "allow",
                                         "cursor")])
            await shows(f"✓ chain intact: {count} records", 1.5)
