"""0 Approvals: calls held for the owner by ask grants, decided with one key each.

The list comes from the app's feeds of the gateways (``approvals_feed``: the local one's,
and each remote toolbox's over its SSH link); the detail shows what the decision applies
to: the agent, the item and its description and trust, the arguments as they will be
forwarded (secrets masked) and their hash, which the decision names, so a decision is
never applied to other arguments than those shown. A remote call's "allow for" and
"never" become grants in the vault here, which the console pushes to the toolbox.
"""

from __future__ import annotations

import json
import time
from typing import Any, ClassVar

import httpx2
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.widgets import DataTable, Static

from console.errors import TbxError
from console.services.grants import parse_duration
from console.tui.modals.prompt import PromptModal
from console.tui.screens.base import ConsoleScreen
from console.tui.widgets.footer import ConsoleFooter
from console.tui.widgets.header import ConsoleHeader

COLUMNS = ("AGENT", "CALL", "WAITING")


def _check_duration(text: str) -> str | None:
    try:
        parse_duration(text)
    except TbxError as problem:
        return str(problem)
    return None


def describe(call: dict[str, Any]) -> str:
    """The detail of one held call, as the owner reads it before deciding."""
    arguments = json.dumps(call["arguments"], indent=2, ensure_ascii=False)
    return "\n".join([
        f"{call['agent']} wants {call['kind']} {call['name']} of server {call['server']} (toolbox {call['toolbox']})",
        f"trust: {call['trust']}" + (f" · {call['description'][:400]}" if call["description"] else ""),
        "arguments:", arguments, f"sha256 {call['sha256']}", "",
        "a allow once · d deny · f allow for a while · n never (always deny)",
    ])


class ApprovalsScreen(ConsoleScreen):
    CSS = """
    ApprovalsScreen #held { height: auto; max-height: 45%; }
    ApprovalsScreen #call { height: 1fr; border: round $panel-lighten-2; padding: 0 1; }
    """
    RELOAD_ON_EVERY_VISIT = True
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("a", "decide('allow')", "Allow", id="approval.allow", tooltip="Let this call through, once"),
        Binding("d", "decide('deny')", "Deny", id="approval.deny", tooltip="Refuse this call"),
        Binding("f", "allow_for", "Allow for…", id="approval.allow_for",
                tooltip="Let it through, and let this agent call this item without asking for a while"),
        Binding("n", "decide('never')", "Never", id="approval.never",
                tooltip="Refuse it, and deny this agent this item from now on"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self._calls: dict[str, dict[str, Any]] = {}

    def compose(self) -> ComposeResult:
        yield ConsoleHeader("approvals")
        with Vertical():
            yield DataTable(id="held", cursor_type="row", zebra_stripes=True)
            yield Static("no call is waiting for you", id="call")
        yield ConsoleFooter()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        for column in COLUMNS:
            table.add_column(column, key=column)
        self.watch(self.console, "approvals_version", lambda _value: self.reload(), init=False)
        super().on_mount()

    def reload(self) -> None:
        calls = {call["id"]: call for call in getattr(self.console, "approvals", [])}
        self._calls = calls
        table = self.query_one(DataTable)
        now = time.time()
        with self.app.batch_update():
            for key in [row.value for row in list(table.rows) if row.value not in calls]:
                table.remove_row(key)
            for call in calls.values():
                values = (call["agent"], call["target"], f"{now - call['created']:.0f}s")
                if call["id"] in table.rows:
                    for column, value in zip(COLUMNS, values, strict=True):
                        table.update_cell(call["id"], column, value)
                else:
                    table.add_row(*values, key=call["id"])
        self._show()

    def on_data_table_row_highlighted(self, _event: DataTable.RowHighlighted) -> None:
        self._show()

    def _selected(self) -> dict[str, Any] | None:
        table = self.query_one(DataTable)
        if table.row_count == 0:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        return self._calls.get(key or "")

    def _show(self) -> None:
        call = self._selected()
        self.query_one("#call", Static).update(describe(call) if call else "no call is waiting for you")

    def action_decide(self, how: str) -> None:
        call = self._selected()
        if call is not None:
            self._decide(call, allow=how == "allow", always=how == "never")

    def action_allow_for(self) -> None:
        call = self._selected()
        if call is None:
            return
        modal = PromptModal("Allow for a while", f"{call['agent']} may call {call['target']} without asking for:",
                            value="15m", check=_check_duration, confirm="Allow")
        self.app.push_screen(modal, lambda text: self._decide(call, allow=True, minutes=(
            parse_duration(text).total_seconds() / 60)) if text else None)

    @work(thread=True, exit_on_error=False, group="approval-decide")
    def _decide(self, call: dict[str, Any], *, allow: bool, always: bool = False, minutes: float | None = None) -> None:
        gateway = self.console.approval_gateway(call["toolbox"])
        if gateway is None:
            self.notify("the gateway is not reachable: the call cannot be decided here", severity="error")
            return
        try:
            outcome = gateway.decide(call["id"], call["sha256"], allow=allow, minutes=minutes, always=always)
        except (TbxError, httpx2.HTTPError) as failed:
            self.notify(str(failed), severity="error")
            return
        self.notify(f"{outcome}: {call['target']} for {call['agent']}")
