"""6 Audit: the tamper-evident log, live — filters, chain verification, export, detail."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, ClassVar

from rich.console import Group
from rich.json import JSON
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.timer import Timer
from textual.widgets import DataTable, Static

from console.audit import Verification
from console.tui.modals.audit_export import ExportRequest
from console.tui.modals.confirm import ConfirmModal
from console.tui.screens.base import ConsoleScreen
from console.tui.widgets.audit_filters import AuditFilters
from console.tui.widgets.audit_tail import AuditQuery, AuditTail, verify_log
from console.tui.widgets.footer import ConsoleFooter
from console.tui.widgets.header import ConsoleHeader
from console.tui.widgets.fit_table import Choice, Col, Cut, FitTable

# The decision sits before the target: targets can be long, and the decision must stay in view.
COLUMNS = ("SEQ", "TIME (UTC)", "ACTOR", "ACTION", "DECISION", "TARGET")
FIT = (Col("SEQ", "SEQ", 7, least=5, yields=2), Col("TIME (UTC)", "TIME (UTC)", 19, least=8, short="UTC", yields=5),
       Col("ACTOR", "ACTOR", least=12, yields=4), Col("ACTION", "ACTION", least=10, yields=3),
       Col("DECISION", "DECISION", 8), Col("TARGET", "TARGET", least=16, yields=1))
"""On a narrow screen the date goes first (the detail below has the full time), then
actors and actions are cut in the middle; the target keeps the most room."""
PAGE = 1000
"""Records read at a time: the tail on open, then one page more per 'older'."""
KEEP = 20 * PAGE
"""Past this many records in memory, following the log starts again from its tail."""
POLL = 0.5
VERIFY_SHARE = 5
FULL_EVERY = 30.0
"""New records are checked as they arrive (only the new bytes: "chain intact: N records"
stays current). The whole chain is checked again at most every FULL_EVERY seconds while
records arrive, and no sooner than VERIFY_SHARE times the last full check's duration:
hashing 100,000 records takes about two seconds, which a busy gateway must not keep the
UI paying. ``v`` checks it all at once."""


class AuditScreen(ConsoleScreen):
    AUTO_FOCUS = "#records"
    DEFAULT_CSS = """
    AuditScreen #chain { height: auto; padding: 0 1; margin-bottom: 1; }
    AuditScreen #chain.-checking { color: $text-muted; }
    AuditScreen #chain.-ok { color: $success; background: $success 10%; }
    AuditScreen #chain.-bad { background: $error; color: $background; text-style: bold; }
    AuditScreen #records { height: 1fr; }
    AuditScreen #showing { height: 1; padding: 0 1; color: $text-muted; }
    AuditScreen #detail { height: 12; border: round $panel; border-title-color: $text-muted; padding: 0 1; }
    AuditScreen.-narrow AuditFilters Select { width: 18; }
    AuditScreen.-narrow AuditFilters #decision { width: 11; }
    AuditScreen.-narrow AuditFilters #window { width: 14; }
    AuditScreen.-narrow AuditFilters #text-label { display: none; }
    AuditScreen.-short #chain, AuditScreen.-short AuditFilters { margin-bottom: 0; }
    AuditScreen.-short #detail { height: 8; }
    """
    # At 80x24 the filters hold in one row (the text field's placeholder names it) and the
    # detail gives the records more rows.
    HORIZONTAL_BREAKPOINTS: ClassVar[list[tuple[int, str]]] = [(0, "-narrow"), (100, "-roomy")]
    VERTICAL_BREAKPOINTS: ClassVar[list[tuple[int, str]]] = [(0, "-short"), (30, "-tall")]
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("v", "verify", "Verify", id="audit.verify", tooltip="Check the whole hash chain and the checkpoint"),
        Binding("e", "export", "Export", id="audit.export",
                tooltip="Copy the whole log to a file, or (filters on) only the matching records"),
        Binding("x", "denials", "Denials", id="audit.denials", tooltip="Show only denied calls (again: all)"),
        Binding("o", "older", "Older", id="audit.older", tooltip="Load the page of records before the first shown"),
        Binding("f", "follow", "Follow", id="audit.follow", tooltip="Jump to the newest record and follow new ones"),
    ]
    PALETTE: ClassVar[list[tuple[str, str]]] = [
        ("audit: Export", "export"), ("audit: Verify", "verify"), ("audit: Show denials", "denials"),
        ("audit: Load older records", "older"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self._tail: AuditTail | None = None
        self._records: list[dict[str, Any]] = []
        self._query = AuditQuery()
        self._serial = 0
        self._following = True
        self._reading = False
        self._verifying = False
        self._verify_again: str | None = None
        """A check asked for while one ran: "full" or "new" (a full one covers the new)."""
        self._verify_timer: Timer | None = None
        self._verified_at = 0.0
        self._verify_took = 0.0
        self.verification: Verification | None = None
        """The last verification's outcome (None while the first one runs)."""

    def compose(self) -> ComposeResult:
        yield ConsoleHeader("audit")
        with Vertical():
            yield Static("verifying the chain…", id="chain", classes="-checking")
            yield AuditFilters(id="filters")
            yield FitTable(FIT, id="records", cursor_type="row", zebra_stripes=True)
            yield Static("", id="showing")
            with VerticalScroll(id="detail"):
                yield Static("", id="detail-body")
        yield ConsoleFooter()

    def on_mount(self) -> None:
        self.query_one("#detail").border_title = "record"
        self._tail = AuditTail(self.ws.paths.audit_log)
        self._reading = True
        self._load_tail()
        if self.console.live:
            self.set_interval(POLL, self._tick)
        super().on_mount()

    # -- reading -------------------------------------------------------------------------

    def reload(self) -> None:
        self.query_one(AuditFilters).set_agents(sorted(agent.name for agent in self.ws.repos.agents))
        if self._tail is not None and not self._reading:
            self._reading = True
            self._read_appended()

    def _tick(self) -> None:
        if self.is_current and not self._reading and self._tail is not None and self._tail.changed():
            self._reading = True
            self._read_appended()

    def _keyed(self, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        for record in records:
            self._serial += 1
            record["_key"] = str(self._serial)
        return records

    @work(thread=True, exit_on_error=False, group="audit-read")
    def _load_tail(self) -> None:
        try:
            assert self._tail is not None
            records = self._keyed(self._tail.load_tail(PAGE))
            self.app.call_from_thread(self._replace, records)
        finally:
            self.app.call_from_thread(self._done_reading)

    @work(thread=True, exit_on_error=False, group="audit-read")
    def _read_appended(self) -> None:
        try:
            assert self._tail is not None
            new = self._tail.appended()
            if new is None or len(self._records) + len(new) > KEEP:
                self.app.call_from_thread(self._replace, self._keyed(self._tail.load_tail(PAGE)))
            elif new:
                self.app.call_from_thread(self._append, self._keyed(new))
        finally:
            self.app.call_from_thread(self._done_reading)

    @work(thread=True, exit_on_error=False, group="audit-read")
    def _read_older(self) -> None:
        try:
            assert self._tail is not None
            older = self._keyed(self._tail.older(PAGE))
            self.app.call_from_thread(self._prepend, older)
        finally:
            self.app.call_from_thread(self._done_reading)

    def _done_reading(self) -> None:
        self._reading = False

    # -- showing ---------------------------------------------------------------------------

    def _replace(self, records: list[dict[str, Any]]) -> None:
        self._records = records
        self._rebuild()
        self.call_after_refresh(self.verify)  # the rows first, then the (long) check

    def _append(self, records: list[dict[str, Any]]) -> None:
        self._records += records
        table = self.query_one("#records", FitTable)
        cutoff = self._query.cutoff()
        with self.app.batch_update():
            table.append_rows((record["_key"], self._cells(record)) for record in records
                              if self._query.matches(record, cutoff))
            if self._following and table.row_count:
                table.move_cursor(row=table.row_count - 1)
        self._show_window()
        self.verify(full=False)
        self._verify_soon()

    def _prepend(self, records: list[dict[str, Any]]) -> None:
        if not records:
            self.notify("this is the beginning of the log")
            return
        self._records = records + self._records
        self._rebuild(keep_cursor=True)

    def _rebuild(self, keep_cursor: bool = False) -> None:
        table = self.query_one("#records", FitTable)
        selected = self._selected_key() if keep_cursor or not self._following else None
        cutoff = self._query.cutoff()
        with self.app.batch_update():
            table.clear()
            table.append_rows((record["_key"], self._cells(record)) for record in self._records
                              if self._query.matches(record, cutoff))
            if selected is not None and selected in table.rows:
                table.move_cursor(row=table.get_row_index(selected))
            elif table.row_count:
                table.move_cursor(row=table.row_count - 1)
        self._following = table.row_count == 0 or table.cursor_row == table.row_count - 1
        self._show_window()
        self._show_detail()

    def _cells(self, record: dict[str, Any]) -> tuple[Any, ...]:
        theme = self.app.current_theme
        styles = {"allow": f"bold {theme.success}", "deny": f"bold {theme.error}",
                  "error": f"bold {theme.accent or theme.warning}", "ok": "dim"}
        decision = str(record.get("decision", ""))
        seq = record.get("seq", "?")
        bad = self.verification is not None and self.verification.bad_seq == seq
        return (
            Text(f"✗ {seq}" if bad else str(seq), style=f"bold {theme.error}" if bad else "", justify="right"),
            Choice((when := str(record.get("ts", ""))[:19].replace("T", " "), when[5:], when[11:])),
            Cut(str(record.get("actor", ""))),
            Cut(str(record.get("action", ""))),
            Text(decision, style=styles.get(decision, "")),
            Cut(str(record.get("target", "")), where="start"),
        )

    def _show_window(self) -> None:
        table = self.query_one(DataTable)
        total = self._records[-1].get("seq", len(self._records)) if self._records else 0
        parts = [f"{total:,} records in the log" if total else "the log is empty"]
        if self._tail is not None and not self._tail.at_beginning:
            parts.append(f"{len(self._records):,} loaded (o: older)")
        if self._query.active:
            parts.append(f"{table.row_count:,} match the filters")
        parts.append("following new records" if self._following else "paused (f: follow)")
        self.query_one("#showing", Static).update(" · ".join(parts))

    def _selected_key(self) -> str | None:
        table = self.query_one(DataTable)
        if table.row_count == 0:
            return None
        return table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value

    def _selected(self) -> dict[str, Any] | None:
        key = self._selected_key()
        return next((r for r in reversed(self._records) if r["_key"] == key), None) if key else None

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        table = event.data_table
        self._following = event.cursor_row == table.row_count - 1
        self._show_detail()
        self._show_window()

    def _show_detail(self) -> None:
        record = self._selected()
        body = self.query_one("#detail-body", Static)
        pane = self.query_one("#detail")
        if record is None:
            pane.border_title = "record"
            body.update(Text("no record selected", style="dim"))
            return
        pane.border_title = f"record {record.get('seq')} · {record.get('action')}"
        line = Text.assemble(
            (str(record.get("ts", "")), "bold"), "  ", str(record.get("actor", "")), "  →  ",
            str(record.get("target", "")), "  ", self._cells(record)[COLUMNS.index("DECISION")],
            ("  agent " + str(record["agent"]), "") if record.get("agent") else "",
        )
        macs = Text(f"mac {str(record.get('mac', ''))[:16]}…  prev {str(record.get('prev', ''))[:16]}…", style="dim")
        detail = record.get("detail")
        shown = JSON(json.dumps(detail, ensure_ascii=False), indent=2) if detail else Text("no detail", style="dim")
        body.update(Group(line, macs, Text(""), shown))

    # -- filters ---------------------------------------------------------------------------

    def on_audit_filters_changed(self, event: AuditFilters.Changed) -> None:
        self._query = event.query
        self._rebuild(keep_cursor=True)

    def on_audit_filters_leave(self, _event: AuditFilters.Leave) -> None:
        self.query_one("#records", DataTable).focus()

    def action_filter(self) -> None:
        self.query_one(AuditFilters).focus_text()

    def action_denials(self) -> None:
        filters = self.query_one(AuditFilters)
        filters.set_decision(None if self._query.decision == "deny" else "deny")

    def action_older(self) -> None:
        if self._tail is None or self._tail.at_beginning:
            self.notify("every record is loaded")
            return
        if not self._reading:
            self._reading = True
            self._read_older()

    def action_follow(self) -> None:
        table = self.query_one(DataTable)
        self._following = True
        if table.row_count:
            table.move_cursor(row=table.row_count - 1)
        table.focus()
        self._show_window()

    def action_refresh(self) -> None:
        if not self._reading:
            self._reading = True
            self._load_tail()

    # -- verification ----------------------------------------------------------------------

    def action_verify(self) -> None:
        """Read the log again (an edit in place keeps its size) and check the chain."""
        if self._reading:
            self.verify()
            return
        self._reading = True
        self._load_tail()

    def verify(self, full: bool = True) -> None:
        """Check the chain in a worker — all of it, or (``full=False``) only the records
        appended since the last intact check; asked again while one runs, it runs after."""
        if self._verifying:
            self._verify_again = "full" if full or self._verify_again == "full" else "new"
            return
        self._verifying = True
        self._verify(full)

    def _verify_soon(self) -> None:
        if self._verify_timer is not None:
            return
        wait = self._verified_at + max(FULL_EVERY, VERIFY_SHARE * self._verify_took) - time.monotonic()
        # Never 0: Textual divides by a timer's delay when it starts late (a 0 s timer always
        # does), and the ZeroDivisionError kills the check and surfaces when the console quits.
        self._verify_timer = self.set_timer(max(0.05, wait), self._verify_due)

    def _verify_due(self) -> None:
        self._verify_timer = None
        self.verify()

    @work(thread=True, exit_on_error=False, group="audit-verify")
    def _verify(self, full: bool) -> None:
        started = time.monotonic()
        last = self.verification
        try:
            if full or last is None or not last.ok:
                result = verify_log(self.ws)
            else:
                result = self.ws.audit.verify_appended(last, self.ws.audit_checkpoint)
            self.app.call_from_thread(self._show_verification, result)
        finally:
            self.app.call_from_thread(self._verified, time.monotonic() - started, full)

    def _verified(self, took: float, full: bool) -> None:
        self._verifying = False
        if full:
            self._verified_at, self._verify_took = time.monotonic(), took
        again, self._verify_again = self._verify_again, None
        if again is not None:
            self.verify(full=again == "full")

    def _show_verification(self, result: Verification) -> None:
        before = self.verification.bad_seq if self.verification else None
        self.verification = result
        chain = self.query_one("#chain", Static)
        chain.set_classes("-ok" if result.ok else "-bad")
        if result.ok:
            chain.update(f"✓ chain intact: {result.records:,} records")
        else:
            chain.update(f"✗ CHAIN BROKEN at {result.message} — keep this log as evidence")
        if before != result.bad_seq:
            self._rebuild(keep_cursor=True)

    # -- export ----------------------------------------------------------------------------

    def action_export(self) -> None:
        from console.tui.modals.audit_export import AuditExportModal

        filters = self._query.describe() if self._query.active else None
        self.app.push_screen(AuditExportModal(Path.home() / "tbx-audit.jsonl", filters), self._confirm_export)

    def _confirm_export(self, request: ExportRequest | None) -> None:
        if request is None:
            return
        path = request.path
        if path.exists():
            modal = ConfirmModal(f"Replace {path.name}?", f"{path} exists; the export replaces it.", confirm="Replace")
            self.app.push_screen(modal, lambda yes: self._export(request) if yes else None)
        else:
            self._export(request)

    @work(thread=True, exit_on_error=False, group="audit-export")
    def _export(self, request: ExportRequest) -> None:
        from console.tui.widgets.audit_tail import export_matching

        if request.filtered:
            written, total = export_matching(self.ws.audit.path, request.path, self._query)
            note = (f"exported the {written:,} of {total:,} records that match the filters "
                    f"({self._query.describe()}) to {request.path} — a subset: 'tbx audit verify' cannot check it")
        else:
            count = self.ws.audit.export(request.path)
            note = (f"exported all {count:,} records of the log to {request.path}"
                    + (" (not only the filtered ones)" if self._query.active else ""))
        self.app.call_from_thread(self.notify, note, timeout=10)
