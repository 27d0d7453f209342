"""1 Toolboxes: every Docker host, its engine, its servers' health, its gateway."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.widgets import DataTable, Footer, Input, Static

from console.model import check_name
from console.tui.modals.confirm import ConfirmModal
from console.tui.modals.prompt import PromptModal
from console.tui.screens.base import ConsoleScreen
from console.tui.widgets.filter import FilterInput
from console.tui.widgets.header import ConsoleHeader

if TYPE_CHECKING:
    from console.runtime.supervisor import Health

COLUMNS = ("NAME", "KIND", "ENGINE", "SERVERS", "HEALTHY", "UNHEALTHY", "GATEWAY")
UNHEALTHY = ("down", "unresponsive")


class ToolboxesScreen(ConsoleScreen):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "open", "Servers", id="toolbox.open", tooltip="Show this toolbox's servers"),
        Binding("g", "gateway", "Gateway on/off", id="toolbox.gateway", tooltip="Start or stop the local gateway"),
        Binding("a", "add", "Add", id="toolbox.add", tooltip="Register a toolbox on the local engine"),
        Binding("d", "remove", "Remove", id="toolbox.remove", tooltip="Forget a toolbox and its servers"),
        Binding("e", "engine", "Check engine", id="toolbox.engine", show=False),
    ]
    PALETTE: ClassVar[list[tuple[str, str]]] = [
        ("toolbox: Add", "add"), ("toolbox: Remove", "remove"), ("toolbox: Check engine", "engine"),
        ("gateway: Start/stop", "gateway"),
    ]

    def compose(self) -> ComposeResult:
        yield ConsoleHeader("toolboxes")
        with Vertical():
            yield FilterInput("filter toolboxes", id="filter")
            yield DataTable(id="toolboxes", cursor_type="row", zebra_stripes=True)
            yield Static("", id="detail", classes="muted")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(DataTable).add_columns(*COLUMNS)
        self.console.health_signal.subscribe(self, self._on_health)
        self.watch(self.console, "gateway_description", lambda _value: self.reload(), init=False)
        self.watch(self.console, "engine_description", lambda _value: self.reload(), init=False)
        super().on_mount()

    def _on_health(self, _health: Health) -> None:
        if self.is_current:
            self.reload()

    def reload(self) -> None:
        ws = self.ws
        table = self.query_one(DataTable)
        wanted = self.query_one("#filter", Input).value.strip().lower()
        rows = []
        for box in sorted(ws.repos.toolboxes, key=lambda b: b.name):
            if wanted and wanted not in box.name:
                continue
            servers = ws.repos.servers.in_toolbox(box.id)
            health = [self.console.health(s.id) for s in servers]
            healthy = sum(1 for h in health if h is not None and h.health == "healthy")
            unhealthy = sum(1 for h in health if h is not None and h.health in UNHEALTHY)
            engine = self.console.engine_description.removeprefix("engine: ") if box.kind.value == "local" else "-"
            gateway = box.gateway_address or "stopped"
            if box.name == "local":
                described = self.console.gateway_description.removeprefix("gateway: ")
                gateway = described or gateway
            live = self.console.live
            rows.append((box.name, (box.name, box.kind.value, engine or "-", len(servers),
                                    healthy if live else "-", unhealthy if live else "-", gateway)))
        with self.app.batch_update():
            keep = {key for key, _ in rows}
            for key in [row.value for row in list(table.rows) if row.value not in keep]:
                table.remove_row(key)
            for key, values in rows:
                if key in table.rows:
                    for column, value in zip(table.columns, values, strict=True):
                        table.update_cell(key, column, value, update_width=True)
                else:
                    table.add_row(*values, key=key)
        self.query_one("#detail", Static).update(
            "enter: servers · g: start/stop the gateway · a: add · d: remove" if rows else
            "no toolboxes yet: press a to register the local Docker engine")

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "filter":
            self.reload()

    def _selected(self) -> str | None:
        table = self.query_one(DataTable)
        if table.row_count == 0:
            return None
        return table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value

    def action_open(self) -> None:
        name = self._selected()
        if name:
            self.console.toolbox_name = name
            self.console.goto("servers")

    def action_gateway(self) -> None:
        if self.console.gateway_description.startswith("gateway: http"):
            self.console.action_gateway_stop()
        else:
            self.console.action_gateway_start()

    def action_engine(self) -> None:
        self.console.check_engine()

    def action_add(self) -> None:
        def check(name: str) -> str | None:
            try:
                check_name("toolbox", name)
            except Exception as exc:  # noqa: BLE001 - shown inline
                return str(exc)
            return "that name is taken" if self.ws.repos.toolboxes.by_name(name) else None

        prompt = PromptModal("Add a toolbox", "A name for a toolbox on this machine's Docker engine:",
                             value="local" if not self.ws.repos.toolboxes.by_name("local") else "",
                             check=check, confirm="Add")
        self.app.push_screen(prompt, self._add)

    @work(thread=True, exit_on_error=False, group="toolbox-change")
    def _add(self, name: str | None) -> None:
        if not name:
            return
        from console.services.toolboxes import add_local

        add_local(self.ws, name)
        self.app.call_from_thread(self.console.vault_changed)
        self.app.call_from_thread(self.notify, f"toolbox {name} added")

    def action_remove(self) -> None:
        name = self._selected()
        if not name:
            return
        box = self.ws.repos.toolboxes.require(name)
        count = len(self.ws.repos.servers.in_toolbox(box.id))
        modal = ConfirmModal(f"Remove toolbox {name}?",
                             f"Forgets the toolbox, its {count} server(s) and every grant into it. Containers of "
                             f"its servers are removed too.", confirm="Remove")
        self.app.push_screen(modal, lambda yes: self._remove(name) if yes else None)

    @work(thread=True, exit_on_error=False, group="toolbox-change")
    def _remove(self, name: str) -> None:
        from console.services import servers, toolboxes

        ws = self.ws
        box = ws.repos.toolboxes.require(name)
        for server in ws.repos.servers.in_toolbox(box.id):
            servers.remove_server(ws, f"{name}/{server.name}")
        toolboxes.remove_toolbox(ws, name)
        self.app.call_from_thread(self.console.vault_changed)
        self.app.call_from_thread(self.notify, f"toolbox {name} removed")
