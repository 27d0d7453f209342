"""4 Grants: who may use what in the current toolbox, as a matrix of items × agents.

Items are tools, resources, resource templates and prompts, each granted on its own row
(a grant on a tool opens nothing else); a server's ``*`` row covers all of its items.

A change shows in its cell at once (optimistic) and is written to the vault by one
writer thread, in the order it was made; a write that fails puts the cell back and says
why. A running gateway picks the vault change up by itself.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from itertools import count
from typing import ClassVar

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.widgets import Input, Static

from console.errors import TbxError
from console.model import WILDCARD, GrantMode
from console.services import grants as grant_service
from console.services.grants import Outcome, Target
from console.tui.modals.confirm import ConfirmModal
from console.tui.modals.prompt import PromptModal
from console.tui.screens.base import ConsoleScreen
from console.tui.widgets.filter import FilterInput
from console.tui.widgets.grant_grid import AgentCol, Edit, GrantGrid, Kind, Mark, Row, utc_now
from console.tui.widgets.grant_matrix import GrantMatrix
from console.tui.widgets.footer import ConsoleFooter
from console.tui.widgets.header import ConsoleHeader

LEGEND = ("[$success b]✓[/] granted  [$success]✓*[/] via server/*  [$warning b]✓![/] not approved: no effect  "
          "[$foreground-disabled s]✓[/] kill switch off  [$error]✗[/] expired  [$foreground-muted]·[/] none  [dim]dim[/]: agent disabled")


@dataclass
class Job:
    """Edits shown at once, and the service calls that make them true in the vault."""

    edits: list[Edit]
    calls: list[Callable[[], Outcome]]
    announce: bool = False
    """Notify the outcome (bulk and toolbox-wide changes); a cell toggle speaks for itself."""
    seq: int = field(default=0)

    def run(self) -> list[Outcome]:
        return [call() for call in self.calls]


class GrantsScreen(ConsoleScreen):
    AUTO_FOCUS = "GrantMatrix"
    DEFAULT_CSS = """
    GrantsScreen #cell { height: 1; padding: 0 1; background: $panel; color: $foreground; }
    GrantsScreen #legend { height: 1; padding: 0 1; color: $text-muted; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("space", "toggle", "Grant/revoke", id="grant.toggle",
                tooltip="Grant or revoke the cell under the cursor (toolbox access asks first)"),
        Binding("e", "expiry", "Expiry", id="grant.expiry", tooltip="Make the cell's grant expire (30m, 8h, 7d)"),
        Binding("k", "ask", "Ask/allow", id="grant.ask", show=False,
                tooltip="Make the cell's grant ask the owner for each call, or allow again (grants it asking)"),
        Binding("t", "transpose", "Transpose", id="grant.transpose", tooltip="Swap rows and columns"),
        Binding("x", "revoke_all", "Revoke all", id="grant.revoke_all",
                tooltip="Revoke everything the cursor's agent holds in this toolbox"),
    ]
    PALETTE: ClassVar[list[tuple[str, str]]] = [
        ("grant: Grant/revoke cell", "toggle"), ("grant: Set expiry", "expiry"), ("grant: Ask/allow cell", "ask"),
        ("grant: Transpose matrix", "transpose"), ("grant: Revoke all for agent", "revoke_all"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self._pending: dict[int, tuple[str, list[Edit]]] = {}
        """Edits shown but not written yet, by job, with their toolbox id: re-applied on reload."""
        self._numbers = count(1)
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="grant-writes")
        """The one thread that writes: jobs land in the order they were made, one at a time."""

    def compose(self) -> ComposeResult:
        yield ConsoleHeader("grants")
        with Vertical():
            yield FilterInput("filter: agent names, or server/item — e.g. cursor · time/ · files/read · prompt",
                              id="filter")
            yield GrantMatrix(id="matrix")
            yield Static("", id="cell", markup=False)
            yield Static(LEGEND, id="legend")
        yield ConsoleFooter()

    def on_mount(self) -> None:
        self.watch(self.console, "toolbox_name", lambda _name: self.reload(), init=False)
        if self.console.live:  # "✓ 2h" counts down
            self.set_interval(30, lambda: self.matrix.cells_changed())
        super().on_mount()

    def on_unmount(self) -> None:
        self._writer.shutdown(wait=False)  # what is queued is still written: the user made those changes

    @property
    def matrix(self) -> GrantMatrix:
        return self.query_one(GrantMatrix)

    def reload(self) -> None:
        grid = GrantGrid.build(self.ws.tables(), self.console.toolbox_name, self.matrix.grid)
        if grid is not None:
            for toolbox_id, edits in self._pending.values():
                for edit in edits if toolbox_id == grid.toolbox_id else ():
                    grid.apply(edit)
            grid.set_filter(self.query_one("#filter", Input).value)
        self.matrix.show(grid)
        if grid is None:
            self.query_one("#cell", Static).update(
                f"no toolbox named {self.console.toolbox_name!r}: pick one on the Toolboxes screen (1)")

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "filter":
            self.matrix.set_filter(event.value)

    def show_agent(self, name: str) -> None:
        """Filter the matrix down to one agent (the Agents screen's ``g``)."""
        search = self.query_one("#filter", FilterInput)
        search.value = name
        search.add_class("shown")
        self.matrix.focus()

    def on_grant_matrix_cursor_moved(self, event: GrantMatrix.CursorMoved) -> None:
        grid = event.matrix.grid
        if grid is None:
            return
        if event.row is None or event.agent is None:
            text = ("nothing matches the filter" if grid.filter_text else
                    f"toolbox {grid.toolbox} has no agents yet: add one on the Agents screen (5)")
        else:
            text = grid.explain(event.row, event.agent, utc_now())
        self.query_one("#cell", Static).update(text)

    # -- actions -----------------------------------------------------------------------------

    def _current(self) -> tuple[GrantGrid, Row, AgentCol] | None:
        current, grid = self.matrix.current, self.matrix.grid
        if current is None or grid is None:
            self.notify("no cell here: clear the filter, or add agents and servers first", severity="warning")
            return None
        return grid, *current

    def action_transpose(self) -> None:
        self.matrix.set_transposed(not self.matrix.transposed)

    def action_toggle(self) -> None:
        found = self._current()
        if found is None:
            return
        grid, row, agent = found
        box = grid.toolbox
        if row.kind is Kind.TOOLBOX:
            if agent.id in grid.access:
                kept = grid.grants_of(agent.id)
                modal = ConfirmModal(
                    f"Revoke {agent.name}'s access to toolbox {box}?",
                    f"This cuts every tool {agent.name} can reach in {box} at once. Its {kept} tool grant(s) are "
                    f"kept, inactive, and come back when access is granted again.", confirm="Revoke access")
                self.app.push_screen(modal, lambda yes: self._access(grid, agent, False) if yes else None)
            else:
                self._access(grid, agent, True)
            return
        tool = WILDCARD if row.kind is Kind.SERVER else row.tool
        present, _expires = grid.grant(agent.id, row.server_id, tool)
        if not present and grid.cell(row, agent, utc_now()).mark is Mark.VIA:
            self.notify(f"{agent.name} reaches {row.tool} through {row.server}/*: revoke that on the server row",
                        severity="warning")
            return
        target = Target(box, row.server, tool)
        call = (lambda: grant_service.revoke(self.ws, agent.name, target)) if present else \
            (lambda: grant_service.grant(self.ws, agent.name, target))
        self._submit(Job([Edit(agent.id, row.server_id, tool, not present)], [call]))

    def action_ask(self) -> None:
        """The third state of a cell: held, each call waiting for the owner; k again allows."""
        found = self._current()
        if found is None:
            return
        grid, row, agent = found
        if row.kind is Kind.TOOLBOX:
            self.notify("toolbox access is on or off: make a server or tool grant ask", severity="warning")
            return
        tool = WILDCARD if row.kind is Kind.SERVER else row.tool
        present, expires = grid.grant(agent.id, row.server_id, tool)
        ask = not present or grid.mode(agent.id, row.server_id, tool) is not GrantMode.ASK
        duration = expires - utc_now() if present and expires is not None and expires > utc_now() else None
        target = Target(grid.toolbox, row.server, tool)
        mode = GrantMode.ASK if ask else GrantMode.ALLOW
        self._submit(Job([Edit(agent.id, row.server_id, tool, True, expires if duration else None, mode)],
                         [lambda: grant_service.grant(self.ws, agent.name, target, duration, ask=ask)]))

    def _access(self, grid: GrantGrid, agent: AgentCol, on: bool) -> None:
        target = Target(grid.toolbox)
        call = (lambda: grant_service.grant(self.ws, agent.name, target)) if on else \
            (lambda: grant_service.revoke(self.ws, agent.name, target))
        self._submit(Job([Edit(agent.id, None, "", on)], [call], announce=True))

    def action_expiry(self) -> None:
        found = self._current()
        if found is None:
            return
        grid, row, agent = found
        if row.kind is Kind.TOOLBOX:
            self.notify("toolbox access does not expire: set an expiry on a server or tool grant",
                        severity="warning")
            return
        tool = WILDCARD if row.kind is Kind.SERVER else row.tool
        present, expires = grid.grant(agent.id, row.server_id, tool)
        if not present and grid.cell(row, agent, utc_now()).mark is Mark.VIA:
            self.notify(f"{agent.name} reaches {row.tool} through {row.server}/*: set the expiry on the server row",
                        severity="warning")
            return
        now_text = ("it does not expire now" if expires is None else f"it expires {expires:%Y-%m-%d %H:%M} UTC"
                    ) if present else "there is no grant yet: this grants it"

        def check(value: str) -> str | None:
            if value.strip().lower() == "never":
                return None
            try:
                grant_service.parse_duration(value)
            except TbxError as exc:
                return str(exc)
            return None

        prompt = PromptModal(f"Expiry of {grid.toolbox}/{row.path} for {agent.name}",
                             f"How long from now ({now_text})? e.g. 30m, 8h, 7d, 1h30m — or 'never'.",
                             placeholder="8h", check=check, confirm="Set")
        self.app.push_screen(prompt, lambda value: self._set_expiry(grid, row, agent, value))

    def _set_expiry(self, grid: GrantGrid, row: Row, agent: AgentCol, value: str | None) -> None:
        if not value:
            return
        never = value.strip().lower() == "never"
        duration: timedelta | None = None if never else grant_service.parse_duration(value)
        tool = WILDCARD if row.kind is Kind.SERVER else row.tool
        target = Target(grid.toolbox, row.server, tool)
        expires = None if duration is None else utc_now() + duration
        self._submit(Job([Edit(agent.id, row.server_id, tool, True, expires)],
                         [lambda: grant_service.grant(self.ws, agent.name, target, duration)], announce=True))

    def action_revoke_all(self) -> None:
        found = self._current()
        if found is None:
            return
        grid, _row, agent = found
        servers = {sid: name for sid, name in ((r.server_id, r.server) for r in grid.all_rows if r.server_id)}
        held = grid.held_by(agent.id)
        access = agent.id in grid.access
        if not held and not access:
            self.notify(f"{agent.name} holds nothing in toolbox {grid.toolbox}")
            return
        grants = sum(len(tools) for tools in held.values())
        what = [f"{grants} grant(s) on {len(held)} server(s)"] if held else []
        what += ["its toolbox access"] if access else []
        modal = ConfirmModal(f"Revoke everything {agent.name} holds in toolbox {grid.toolbox}?",
                             f"Removes {' and '.join(what)}. The grants are deleted, not just cut off.",
                             confirm="Revoke all")

        def go(yes: bool | None) -> None:
            if not yes:
                return
            edits = [Edit(agent.id, sid, tool, False) for sid, tools in held.items() for tool in tools]
            calls = [self._revoke_server(agent.name, Target(grid.toolbox, servers[sid])) for sid in held]
            if access:
                edits.append(Edit(agent.id, None, "", False))
                calls.append(lambda: grant_service.revoke(self.ws, agent.name, Target(grid.toolbox)))
            self._submit(Job(edits, calls, announce=True))

        self.app.push_screen(modal, go)

    def _revoke_server(self, agent: str, target: Target) -> Callable[[], Outcome]:
        return lambda: grant_service.revoke(self.ws, agent, target)

    # -- writing -----------------------------------------------------------------------------

    def _submit(self, job: Job) -> None:
        grid = self.matrix.grid
        if grid is None:
            return
        job.seq = next(self._numbers)
        for edit in job.edits:
            grid.apply(edit)
        self._pending[job.seq] = (grid.toolbox_id, job.edits)
        self.matrix.cells_changed()
        self.call_after_refresh(self._write, job)  # the cell is drawn before the write competes for the GIL

    def _write(self, job: Job) -> None:
        self._settle(job, self._writer.submit(job.run))  # queued behind the jobs made before it

    @work(exit_on_error=False, group="grant-write")
    async def _settle(self, job: Job, landing: Future[list[Outcome]]) -> None:
        """Once ``job`` has landed its edits leave the overlay (the vault's change re-reads
        the matrix), or its failure is shown."""
        try:
            outcomes = await asyncio.wrap_future(landing)
        except Exception as exc:
            self._pending.pop(job.seq, None)
            self.reload()
            self.notify(f"{exc} — the matrix shows the vault as it is", severity="error", timeout=10)
            if not isinstance(exc, TbxError):
                raise  # the app shows what nobody expected, with its traceback
            return
        self._pending.pop(job.seq, None)
        if job.announce:
            changed = [o for o in outcomes if o.changed] or outcomes[:1]
            text = "; ".join(o.summary for o in changed[:3]) + (" …" if len(changed) > 3 else "")
            notes = [n for o in changed for n in o.notes]
            self.notify(text + (f"\n{notes[0]}" if notes else ""))
