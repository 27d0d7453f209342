"""7 Try: the built-in MCP test client — pick a tool, fill its form, call it as the owner
or as an agent through the gateway, and see the result and the raw exchange."""

from __future__ import annotations

import time
from typing import Any, ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.theme import Theme
from textual.timer import Timer
from textual.widget import Widget
from textual.widgets import Button, Checkbox, DataTable, Input, Label, Select, Static, TextArea
from textual.worker import get_current_worker

from console.model import ItemKind, ToolDef
from console.trust.invisible import decode_hidden
from console.tui.modals.confirm import ConfirmModal
from console.tui.screens.base import ConsoleScreen
from console.tui.widgets.filter import FilterInput
from console.tui.widgets.footer import ConsoleFooter
from console.tui.widgets.header import ConsoleHeader
from console.tui.widgets.nav_table import NavTable
from console.tui.widgets.schema_form import SchemaForm
from console.tui.widgets.try_call import OWNER, Cancelled, TryOutcome, call_as_agent, call_as_owner
from console.tui.widgets.try_result import ResultView

TRUST = {"approved": ("✓ approved", "success"), "pending": ("● pending", "warning"),
         "changed": ("≠ changed", "error"), "blocked": ("✗ blocked", "error")}
GATEWAY_WAIT = 30.0


def trust_cell(tool: ToolDef, theme: Theme) -> Text:
    label, colour = TRUST.get(tool.trust.value, (tool.trust.value, "warning"))
    return Text(label, style=getattr(theme, colour) or "")


class TryScreen(ConsoleScreen):
    AUTO_FOCUS = "#tools"
    HORIZONTAL_BREAKPOINTS: ClassVar[list[tuple[int, str]]] = [(0, "-narrow"), (100, "-wide")]
    # The caller list gives way first so Run stays on screen at 80 columns; Run is drawn
    # like any button and stands out only when it has the focus (a primary button
    # looked focused all the time).
    DEFAULT_CSS = """
    TryScreen #picker { width: 40; border-right: vkey $panel; }
    TryScreen #picker .panel-title { height: 1; }
    TryScreen #work { width: 1fr; padding: 0 1; }
    TryScreen #tool-title { height: auto; }
    TryScreen #tool-desc { height: auto; max-height: 2; color: $text-muted; }
    TryScreen #callbar { height: 1; margin-top: 1; }
    TryScreen #callbar Label { width: auto; padding-right: 1; color: $text-muted; }
    TryScreen #caller { width: 1fr; max-width: 32; min-width: 12; }
    TryScreen #callbar Button { margin-left: 2; min-width: 0; width: auto; padding: 0 2;
                                background: $panel; color: $foreground; text-style: none; }
    TryScreen #callbar Button:focus { background: $primary; color: $background; text-style: bold; }
    TryScreen.-narrow #raw-toggle { display: none; }
    TryScreen #call-state { height: 1; margin-bottom: 1; color: $text-muted; }
    TryScreen.-narrow SchemaField .field-row { layout: vertical; }
    TryScreen.-narrow SchemaField .field-label { width: 1fr; }
    TryScreen.-narrow SchemaField .field-hint, TryScreen.-narrow SchemaField .field-problem { padding-left: 0; }
    TryScreen #form-box { height: 3fr; min-height: 6; }
    TryScreen ResultView { height: 2fr; }
    TryScreen.-has-result #form-box { height: 2fr; }
    TryScreen.-has-result ResultView { height: 3fr; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        # Every terminal delivers F5 and ctrl+j; ctrl+enter arrives as a plain enter through
        # tmux and many terminals. Enter in the last field runs too.
        Binding("f5,ctrl+j,ctrl+enter", "run", "Run", id="try.run", tooltip="Call the tool with these arguments"),
        Binding("escape,ctrl+g", "cancel", "Cancel call", id="try.cancel", tooltip="Stop waiting for the call"),
        Binding("escape", "to_list", "Tools", id="try.to_list", show=False,
                tooltip="From the arguments back to the tool list (where digits switch screens again)"),
        Binding("ctrl+t", "raw", "Raw JSON", id="try.raw", tooltip="Edit the arguments as JSON (again: the form)"),
        Binding("a", "caller", "As…", id="try.caller", tooltip="Choose who calls: the owner or an agent"),
        Binding("enter", "edit", "Edit", id="try.edit", show=False, tooltip="Go to the arguments of this tool"),
        Binding("left_square_bracket", "tab(-1)", "Prev tab", id="try.tab_prev", show=False,
                tooltip="Result / Raw exchange"),
        Binding("right_square_bracket", "tab(1)", "Next tab", id="try.tab_next", show=False,
                tooltip="Result / Raw exchange"),
    ]
    PALETTE: ClassVar[list[tuple[str, str]]] = [
        ("try: Run", "run"), ("try: Raw JSON arguments", "raw"), ("try: Cancel call", "cancel"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.tool_key: str | None = None
        """SERVER/TOOL shown in the form."""
        self._arguments: dict[str, dict[str, Any]] = {}
        """What was typed per tool (by TOOLBOX/SERVER/TOOL), so moving through the list loses nothing."""
        self._started = 0.0
        self._ticker: Timer | None = None
        self._calling = False
        self._call_id = 0
        """Which call is current: a cancelled call that finishes later changes nothing."""
        self._callers: list[tuple[str, str]] = [("owner (direct, no grants)", OWNER)]
        self.form = SchemaForm(None)
        self._form_target: str | None = None
        """The arguments of the tool shown; replaced when another tool is picked."""
        self._listed: dict[str, ToolDef] = {}
        """Every tool of the toolbox by SERVER/TOOL, as the last read found them (moving
        through the list or typing a filter reads nothing again)."""

    def compose(self) -> ComposeResult:
        yield ConsoleHeader("try")
        with Horizontal():
            with Vertical(id="picker"):
                yield Static("", id="picker-title", classes="panel-title")
                yield FilterInput("search tools", id="filter")
                yield NavTable(id="tools", cursor_type="row", zebra_stripes=True)
            with Vertical(id="work"):
                yield Static("", id="tool-title")
                yield Static("", id="tool-desc", markup=False)
                with Horizontal(id="callbar"):
                    yield Label("as")
                    yield Select[str]([("owner (direct, no grants)", OWNER)], value=OWNER, allow_blank=False,
                                      id="caller", compact=True)
                    yield Button("Run ▶", id="run", compact=True)
                    yield Button("Raw JSON", id="raw-toggle", compact=True)
                yield Static("", id="call-state")
                with Vertical(id="form-box"):
                    yield self.form
                yield ResultView(id="result")
        yield ConsoleFooter()

    def on_mount(self) -> None:
        self.query_one("#tools", DataTable).add_columns("TOOL", "TRUST")
        self.watch(self.console, "toolbox_name", self._toolbox_changed, init=False)
        # ConsoleScreen.on_mount (the first reload) runs after this by itself: Textual calls
        # the handler of every class in the MRO, so calling super() here would reload twice.

    # -- the tool list ---------------------------------------------------------------------

    def _tools(self) -> list[tuple[str, ToolDef]]:
        ws = self.ws
        box = ws.repos.toolboxes.by_name(self.console.toolbox_name)
        if box is None:
            return []
        found = []
        for server in ws.repos.servers.in_toolbox(box.id):
            for tool in ws.repos.tools.of_server(server.id):
                if tool.kind is ItemKind.TOOL:  # only tools are called; prompts and resources are read
                    found.append((f"{server.name}/{tool.name}", tool))
        return sorted(found, key=lambda item: item[0])

    def reload(self) -> None:
        self._listed = dict(self._tools())
        self._reload_callers()
        self._show_rows()

    def _show_rows(self) -> None:
        """The tools that match the filter in the list (and the form of the first when none was shown)."""
        table = self.query_one("#tools", NavTable)
        table.settle()  # a fill still in flight first: the rows below are compared with all it adds
        wanted = self.query_one("#filter", Input).value.strip().lower()
        rows = [(key, tool) for key, tool in self._listed.items() if wanted in key.lower()]
        theme = self.app.current_theme
        keep = {key for key, _ in rows}
        with self.app.batch_update():
            if not table.row_count:  # the rows in view at once, the rest on the next turns of the loop
                table.fill(((key, (key, trust_cell(tool, theme))) for key, tool in rows), total=len(rows))
            else:
                self._update_rows(table, rows, keep, theme)
            # The cursor stays on the tool shown, wherever its row went.
            if self.tool_key in keep:
                if self.tool_key not in table.rows:
                    table.settle()
                if (index := table.get_row_index(self.tool_key)) != table.cursor_row:
                    table.move_cursor(row=index, animate=False)
        count = len(rows)
        self.query_one("#picker-title", Static).update(
            f"{self.console.toolbox_name}: {count} tool(s)" if count or wanted else
            f"{self.console.toolbox_name}: no tools yet (add a server on 2 Servers)")
        if self.tool_key not in keep:
            self._show_tool(rows[0][0] if rows and self.tool_key is None else None)

    @staticmethod
    def _update_rows(table: NavTable, rows: list[tuple[str, ToolDef]], keep: set[str], theme: Theme) -> None:
        """The rows of a filled list brought up to date: gone, changed, back in their place."""
        table.remove_rows([row for row in table.rows if row.value not in keep])
        column = table.ordered_columns[1].key
        fresh = []
        for key, tool in rows:
            trust = trust_cell(tool, theme)
            if key not in table.rows:
                fresh.append((key, (key, trust)))
            elif (shown := table.get_cell(key, column)).plain != trust.plain or shown.style != trust.style:
                table.update_cell(key, column, trust)
        if table.append_rows(fresh) and table.row_count > len(fresh):
            table.sort(table.ordered_columns[0].key)  # rows a filter brought back go in their place

    def _toolbox_changed(self, _name: str) -> None:
        self._show_tool(None)  # the same SERVER/TOOL in another toolbox is another tool
        self.reload()

    def _reload_callers(self) -> None:
        select = self.query_one("#caller", Select)
        current = select.value
        options = [("owner (direct, no grants)", OWNER)]
        for agent in sorted(self.ws.repos.agents, key=lambda a: a.name):
            options.append((f"agent {agent.name}" + (" (disabled)" if agent.disabled else ""), agent.name))
        if options != self._callers:
            self._callers = options
            select.set_options(options)
            select.value = current if current in {v for _l, v in options} else OWNER

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "filter":
            self._show_rows()  # the tools read last: a key typed reads nothing again

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.row_key.value != self.tool_key:
            self._show_tool(event.row_key.value)

    def on_data_table_row_selected(self, _event: DataTable.RowSelected) -> None:
        self.action_edit()  # enter on a tool: on to its arguments

    def _tool(self, key: str | None) -> ToolDef | None:
        return self._listed.get(key) if key else None

    def _show_tool(self, key: str | None) -> None:
        """Put the form of tool ``key`` (SERVER/TOOL) in place, with what was typed for it."""
        if self._form_target is not None:
            self._arguments[self._form_target] = self.form.value()
        self.tool_key = key
        self._form_target = self.target
        tool = self._tool(key)
        title = self.query_one("#tool-title", Static)
        desc = self.query_one("#tool-desc", Static)
        if tool is None:
            title.update("no tool selected")
            desc.update("")
            schema: dict[str, Any] | None = None
        else:
            label, colour = TRUST.get(tool.trust.value, (tool.trust.value, "warning"))
            text = Text()
            text.append(f"{self.console.toolbox_name}/{key}  ", style="bold")
            text.append(label, style=getattr(self.app.current_theme, colour) or "")
            if not tool.exposable:
                text.append(" · agents cannot call it until it is approved", style="dim")
            hints = tool.annotations or {}
            if hints.get("readOnlyHint"):
                text.append("  read-only", style="dim")
            elif hints.get("destructiveHint"):
                text.append("  destructive", style="bold")
            title.update(text)
            desc.update(decode_hidden(tool.description or "").strip())
            schema = tool.input_schema
        self.form.remove()
        self.form = SchemaForm(schema, self._arguments.get(self._form_target or ""))
        self.query_one("#form-box", Vertical).mount(self.form)
        self.query_one("#raw-toggle", Button).label = "Raw JSON"
        if not self._calling:  # a running call keeps its ticker; it was for the tool it named
            self._clear_outcome(f"nothing run yet: fill in the arguments, then {self._run_key()} (or Run)")

    def _clear_outcome(self, verdict: str) -> None:
        """Forget the last call's status and result: they were another tool's, or another run's."""
        self.query_one("#call-state", Static).update("")
        self.query_one(ResultView).clear(verdict)
        self.remove_class("-has-result")

    def _run_key(self) -> str:
        """The first key that runs, as the footer shows it (the user may have remapped it)."""
        for bindings in self._bindings.key_to_bindings.values():
            for binding in bindings:
                if binding.id == "try.run":
                    return self.app.get_key_display(binding)
        return "Run"

    # -- calling ---------------------------------------------------------------------------

    @property
    def target(self) -> str | None:
        return f"{self.console.toolbox_name}/{self.tool_key}" if self.tool_key else None

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "run":
            self.action_run()
        elif event.button.id == "raw-toggle":
            self.action_raw()

    def _fields(self) -> list[Widget]:
        """The form's controls in focus order: those shown (form or raw JSON) and enabled."""
        controls = (Input, Select, Checkbox, TextArea, Button)  # not the scrolling box around them
        return [w for w in self.focus_chain if isinstance(w, controls) and self.form in w.ancestors]

    def action_edit(self) -> None:
        fields = self._fields()
        (fields[0] if fields else self.query_one("#run", Button)).focus()  # no arguments: Enter runs

    def on_input_submitted(self, event: Input.Submitted) -> None:
        """Enter in a field goes to the next one; in the last, it runs (every terminal has Enter)."""
        if self.form not in event.input.ancestors:
            return  # the tool filter
        event.stop()
        fields = self._fields()
        later = fields[fields.index(event.input) + 1:] if event.input in fields else []
        if later:
            later[0].focus()
        else:
            self.action_run()

    def action_caller(self) -> None:
        self.query_one("#caller", Select).focus()

    def action_raw(self) -> None:
        raw = self.form.toggle_raw()
        self.query_one("#raw-toggle", Button).label = "Form" if raw else "Raw JSON"

    def action_tab(self, step: int) -> None:
        self.query_one(ResultView).step(step)

    def action_run(self) -> None:
        if self._calling:
            self.notify("a call is running: esc cancels it", severity="warning")
            return
        target = self.target
        if target is None:
            self.notify("pick a tool first", severity="warning")
            return
        arguments = self.form.collect()
        if arguments is None:
            return  # the form shows what is wrong, next to each field
        caller = self.query_one("#caller", Select).value
        self._call(target, arguments, caller if isinstance(caller, str) else OWNER)

    def _call(self, target: str, arguments: dict[str, Any], caller: str, wait_for_gateway: bool = False) -> None:
        self._call_id += 1
        self._calling = True
        self._started = time.monotonic()
        self._ticker = self.set_interval(0.1, self._tick)
        self._tick()
        self.query_one(ResultView).clear(f"calling {target} …")  # not the last run's result under it
        self.remove_class("-has-result")
        self.refresh_bindings()
        self._run_call(self._call_id, target, arguments, caller, wait_for_gateway)

    def _tick(self) -> None:
        if self._ticker is None:
            return  # a tick already queued when the answer came: the answer stays
        elapsed = time.monotonic() - self._started
        self.query_one("#call-state", Static).update(f"running {elapsed:.1f} s · esc: cancel")

    @work(thread=True, exit_on_error=False, group="try-call")
    def _run_call(self, call_id: int, target: str, arguments: dict[str, Any], caller: str,
                  wait_for_gateway: bool) -> None:
        worker = get_current_worker()

        def cancelled() -> bool:
            return worker.is_cancelled

        try:
            if caller == OWNER:
                outcome = call_as_owner(self.ws, target, arguments)  # audited in the vault: the screens hear
            else:
                url = self._gateway_url(target.split("/")[0], wait_for_gateway, cancelled)
                if url is None:
                    if not cancelled():
                        self.app.call_from_thread(self._no_gateway, target, arguments, caller, wait_for_gateway)
                    return
                outcome = call_as_agent(self.ws, url, caller, target, arguments, cancelled)
            if not cancelled():
                self.app.call_from_thread(self._finished, call_id, outcome)
        except Cancelled:
            pass
        finally:
            self.app.call_from_thread(self._call_done, call_id, cancelled())

    def _finished(self, call_id: int, outcome: TryOutcome) -> None:
        if call_id == self._call_id:
            self._stop_ticker()  # before the verdict, or a tick in between writes "running" over it
            self.show_outcome(outcome)

    def _stop_ticker(self) -> None:
        if self._ticker is not None:
            self._ticker.stop()
            self._ticker = None

    def _gateway_url(self, toolbox: str, wait: bool, cancelled: Any) -> str | None:
        deadline = time.monotonic() + (GATEWAY_WAIT if wait else 0)
        while True:
            info = self.backend.gateway_info(toolbox)
            if info is not None or time.monotonic() >= deadline or cancelled():
                return info.url if info else None
            time.sleep(0.25)

    def _no_gateway(self, target: str, arguments: dict[str, Any], caller: str, waited: bool) -> None:
        toolbox = target.split("/")[0]
        if waited:
            self.notify(f"the gateway for toolbox {toolbox} did not come up within {GATEWAY_WAIT:g}s; "
                        f"see 'tbx gateway status'", severity="error", timeout=10)
            return
        if toolbox != "local":
            self.notify(f"no gateway serves toolbox {toolbox}: start one with 'tbx gateway serve --toolbox {toolbox}'",
                        severity="error", timeout=10)
            return
        modal = ConfirmModal(
            "Start the gateway?",
            f"Calling as agent {caller} goes through the gateway, and none serves toolbox {toolbox}. Start it now? "
            f"It keeps serving agents after the console closes (g on 1 Toolboxes stops it).",
            confirm="Start", danger=False)

        def answer(yes: bool | None) -> None:
            if yes:
                self.console.action_gateway_start()
                self._call(target, arguments, caller, wait_for_gateway=True)

        self.app.push_screen(modal, answer)

    def _call_done(self, call_id: int, cancelled: bool) -> None:
        if call_id != self._call_id:
            return
        self._calling = False
        self._stop_ticker()
        state = self.query_one("#call-state", Static)
        if cancelled:
            state.update("cancelled: the result, if any comes, is discarded")
            self.query_one(ResultView).show_running("cancelled")
        elif self.query_one(ResultView).outcome is None:
            self._clear_outcome("no result: the call was not made or did not finish (see the message)")
        self.refresh_bindings()

    def show_outcome(self, outcome: TryOutcome) -> None:
        """Render a call's outcome: the Result and Raw exchange tabs, and the elapsed time."""
        self.query_one(ResultView).show(outcome)
        self.add_class("-has-result")  # the result gets the larger share from now on
        verdict = "ok" if outcome.ok else "refused" if outcome.result is None else "isError"
        self.query_one("#call-state", Static).update(f"{verdict} · {outcome.elapsed_ms:,.1f} ms")

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "cancel":
            return self._calling  # otherwise escape does what it does everywhere
        if action == "to_list":  # in a field a digit is typed, so escape leads out first
            return self.focused is not None and self.query_one("#picker") not in self.focused.ancestors
        return True

    def action_to_list(self) -> None:
        self.query_one("#tools", DataTable).focus()

    def action_cancel(self) -> None:
        for worker in self.workers:
            if worker.group == "try-call" and worker.is_running:
                worker.cancel()
        self._call_done(self._call_id, cancelled=True)
