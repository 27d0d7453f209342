"""1 Toolboxes: every Docker host — this machine, a droplet, an SSH host — its link, its
servers' health, its gateway and what agents pin.

Remote toolboxes are added, synced and removed in thread workers whose progress lines
go to the activity log; the SSH link status comes from the app's long-lived tunnels
(``app.link_signal``) and shows within a frame of changing. Droplets tbx made that no
toolbox owns are rows too, in red: billed until destroyed or adopted (``toolbox_orphans``).
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, ClassVar

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.widgets import DataTable, Input

from console.errors import UsageError
from console.model import Toolbox
from console.tui.modals.confirm import ConfirmModal
from console.tui.modals.host_key import HostKeyModal, ThreadQuestions
from console.tui.screens.base import ConsoleScreen
from console.tui.screens.toolbox_orphans import OrphanRows
from console.tui.widgets.activity_log import ActivityLog
from console.tui.widgets.filter import FilterInput
from console.tui.widgets.footer import ConsoleFooter
from console.tui.widgets.header import ConsoleHeader
from console.remote.push_state import policy_status
from console.tui.widgets.fit_table import FitTable
from console.tui.widgets.toolbox_detail import DetailFacts, ToolboxDetail
from console.tui.widgets.toolbox_row import COLUMNS, Row, pending_row, toolbox_row

if TYPE_CHECKING:
    from console.runtime.supervisor import Health
    from console.services.remote_toolboxes import Added
    from console.tui.modals.add_toolbox import AddToolboxRequest
    from console.tui.remote_links import LinkState



class ToolboxesScreen(OrphanRows, ConsoleScreen):
    RELOAD_ON_EVERY_VISIT = True  # health and links follow it only while in front
    CSS = """
    ToolboxesScreen #toolboxes { height: auto; max-height: 50%; }
    ToolboxesScreen ToolboxDetail { margin-top: 1; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "open", "Servers", id="toolbox.open",
                tooltip="Show this toolbox's servers (a droplet no toolbox owns: adopt it as a toolbox)"),
        Binding("a", "add", "Add", id="toolbox.add",
                tooltip="Add a toolbox: this machine, a new DigitalOcean droplet, or an SSH host"),
        Binding("s", "sync", "Sync", id="toolbox.sync",
                tooltip="Push the policy to a remote toolbox's gateway and pull its audit records now"),
        Binding("d,delete", "remove", "Remove", id="toolbox.remove",
                tooltip="Forget a toolbox and its servers (a droplet is destroyed; asks first), or destroy a "
                        "droplet no toolbox owns"),
        Binding("g", "gateway", "Gateway on/off", id="toolbox.gateway", tooltip="Start or stop the local gateway"),
        Binding("e", "engine", "Check engine", id="toolbox.engine", show=False,
                tooltip="Check the local Docker engine again"),
    ]
    PALETTE: ClassVar[list[tuple[str, str]]] = [
        ("toolbox: Add", "add"), ("toolbox: Sync now", "sync"), ("toolbox: Remove", "remove"),
        ("toolbox: Check engine", "engine"), ("gateway: Start/stop", "gateway"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.adding: dict[str, tuple[AddToolboxRequest, str]] = {}
        """Name -> (what was asked, latest progress line) of toolboxes being added."""
        self.busy: dict[str, tuple[str, str]] = {}
        """Name -> (syncing | removing, latest progress line)."""
        self.prices: dict[str, float] = {}
        """Droplet size -> monthly price, once read from the API."""
        self.orphan_busy = {}
        self._questions: ThreadQuestions | None = None
        self._prices_asked = False

    def compose(self) -> ComposeResult:
        yield ConsoleHeader("toolboxes")
        with Vertical():
            yield FilterInput("filter toolboxes", id="filter")
            yield FitTable(COLUMNS, id="toolboxes", cursor_type="row", zebra_stripes=True)
            yield ActivityLog(lambda: bool(self.adding or self.busy or self.orphan_busy))
            yield ToolboxDetail(id="detail")
        yield ConsoleFooter()

    def on_mount(self) -> None:
        self.console.health_signal.subscribe(self, self._on_health)
        self.console.link_signal.subscribe(self, self._on_link)
        self.watch(self.console, "gateway_description", lambda _value: self.reload(), init=False)
        self.watch(self.console, "engine_description", lambda _value: self.reload(), init=False)
        super().on_mount()

    def on_unmount(self) -> None:
        if self._questions is not None:  # an add waiting on a host key question gives up
            self._questions.cancel_all()

    def _on_health(self, _health: Health) -> None:
        if self.is_current:
            self.reload()

    def _on_link(self, _state: LinkState) -> None:
        if self.is_current:
            self.reload()

    # -- reading -------------------------------------------------------------------------

    def reload(self, select: str | None = None) -> None:
        ws = self.ws
        wanted = self.query_one("#filter", Input).value.strip().lower()
        rows: list[tuple[str, Row]] = []
        for box in sorted(ws.repos.toolboxes, key=lambda b: b.name):
            if wanted and wanted not in box.name:
                continue
            servers = ws.repos.servers.in_toolbox(box.id)
            health = [self.console.health(s.id) for s in servers] if self.console.live else []
            busy = self.busy.get(box.name, (None, ""))[0]
            rows.append((box.name, toolbox_row(self.console, box, len(servers), health,
                                               gateway=self._gateway(box), busy=busy, policy=policy_status(ws, box))))
        for name, (request, _line) in self.adding.items():
            if ws.repos.toolboxes.by_name(name) is None and (not wanted or wanted in name):
                rows.append((f"+{name}", pending_row(self.console, name, request.kind, request.where, "adding")))
        rows.extend(self.orphan_rows(wanted))
        self._show(rows, select)
        self._show_selected()
        if self.console.live and not self._prices_asked and any(b.droplet_id for b in ws.repos.toolboxes):
            self._prices_asked = True
            self._load_prices()

    def _gateway(self, box: Toolbox) -> str:
        if box.name == "local":
            described = self.console.gateway_description.removeprefix("gateway: ")
            return described or box.gateway_address or "stopped"
        return box.gateway_address or "stopped"

    def _show(self, rows: list[tuple[str, Row]], select: str | None = None) -> None:
        """Show exactly ``rows`` in name order, the cursor staying on its toolbox (or
        moving to ``select``)."""
        table = self.query_one(DataTable)
        selected = select or self._selected()
        added = False
        with self.app.batch_update():
            keep = {key for key, _ in rows}
            for key in [row.value for row in list(table.rows) if row.value not in keep]:
                table.remove_row(key)
            for key, values in rows:
                if key in table.rows:
                    for col, value in zip(COLUMNS, values, strict=True):
                        table.update_cell(key, col.key, value, update_width=col.width is None)
                else:
                    table.add_row(*values, key=key)
                    added = True
            if added or select:
                # Orphaned droplets after the toolboxes.
                table.sort("name", "kind", key=lambda cells: (str(cells[1]) == "orphan", str(cells[0])))
                if selected in table.rows:
                    table.move_cursor(row=table.get_row_index(selected), animate=False)

    def _selected(self) -> str | None:
        table = self.query_one(DataTable)
        if table.row_count == 0:
            return None
        return table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value

    def _selected_box(self) -> Toolbox | None:
        name = self._selected()
        return self.ws.repos.toolboxes.by_name(name) if name else None

    def on_data_table_row_highlighted(self, _event: DataTable.RowHighlighted) -> None:
        self._show_selected()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        # The focused table takes enter (its select_cursor) before the screen's binding sees it.
        event.stop()
        self.action_open()

    def _show_selected(self) -> None:
        detail = self.query_one(ToolboxDetail)
        name = self._selected()
        orphan = self.orphan_at(name)
        if orphan is not None:
            self.show_orphan(detail, orphan)
            return
        box = self.ws.repos.toolboxes.by_name(name) if name else None
        if box is None:
            pending = self.adding.get((name or "").removeprefix("+"))
            detail.show(None, None, f"adding: {pending[1]}" if pending else
                        "no toolboxes yet: press a to add this machine, a droplet or an SSH host")
            return
        facts = DetailFacts(
            servers=len(self.ws.repos.servers.in_toolbox(box.id)), gateway=self._gateway(box),
            link=self.console.link_status(box.id), price_monthly=self.prices.get(box.size or ""),
            engine=self.console.engine_description.removeprefix("engine: "),
            busy=self.busy.get(box.name, ("", ""))[1], policy=policy_status(self.ws, box))
        hint = ("enter: servers · s: sync now · d: remove · a: add" if box.is_remote else
                "enter: servers · g: start/stop the gateway · a: add · d: remove")
        detail.show(box, facts, hint)

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "filter":
            self.reload()

    @work(thread=True, exclusive=True, exit_on_error=False, group="droplet-prices")
    def _load_prices(self) -> None:
        from console.errors import TbxError
        from console.services.remote_toolboxes import api_token, droplet_api

        if api_token(self.ws) is None:
            return
        try:
            prices = {size.slug: size.price_monthly for size in droplet_api(self.ws).sizes()}
        except TbxError:  # prices are a nicety; an unreachable API is said where it matters
            return
        self.app.call_from_thread(self._got_prices, prices)

    def _got_prices(self, prices: dict[str, float]) -> None:
        self.prices.update(prices)
        self._show_selected()

    # -- activity ----------------------------------------------------------------------------

    def _activity(self, line: str) -> None:
        self.query_one(ActivityLog).say(line)


    # -- keys --------------------------------------------------------------------------------

    def action_open(self) -> None:
        orphan = self.orphan_at(self._selected())
        if orphan is not None:
            self.adopt_orphan(orphan)
            return
        box = self._selected_box()
        if box is not None:
            self.console.toolbox_name = box.name
            self.console.goto("servers")

    def action_gateway(self) -> None:
        if self.console.gateway_description.startswith("gateway: http"):
            self.console.action_gateway_stop()
        else:
            self.console.action_gateway_start()

    def action_engine(self) -> None:
        self.console.check_engine()

    def action_add(self) -> None:
        from console.services.remote_toolboxes import api_token
        from console.tui.modals.add_toolbox import AddToolboxModal

        ws = self.ws
        modal = AddToolboxModal(taken=lambda name: ws.repos.toolboxes.by_name(name) is not None or name in self.adding,
                                needs_token=api_token(ws) is None,
                                name="" if ws.repos.toolboxes.by_name("local") else "local")
        self.app.push_screen(modal, self._begin_add)

    def _begin_add(self, request: AddToolboxRequest | None) -> None:
        if request is None:
            return
        self._questions = self._questions or ThreadQuestions(self.app)
        self.adding[request.name] = (request, "starting")
        self._activity(f"{request.name}: adding a toolbox on {request.where}")
        self.reload(select=f"+{request.name}")
        self._add(request)

    @work(thread=True, exit_on_error=False, group="toolbox-add")
    def _add(self, request: AddToolboxRequest) -> None:
        from console.services import remote_toolboxes as remote
        from console.services.toolboxes import add_local

        ws, name = self.ws, request.name
        progress = partial(self.app.call_from_thread, self._progress, name)
        added: Added | None = None
        try:
            if request.kind == "local":
                add_local(ws, name, request.engine)
            elif request.kind == "droplet":
                if request.token:
                    remote.set_api_token(ws, request.token)
                added = remote.add_droplet(ws, name, region=request.region, size=request.size, progress=progress)
            else:
                assert request.key_path is not None
                try:
                    key_text = request.key_path.read_text(encoding="utf-8")
                except OSError as exc:
                    raise UsageError(f"cannot read the SSH key {request.key_path}: {exc.strerror}") from None
                added = remote.add_ssh(ws, name, request.target, key_text, progress=progress,
                                       accept_host_key=partial(self._trust_host_key, name, request.target))
        except Exception as exc:
            self.app.call_from_thread(self._added, name, f"{name}: not added: {exc}", None)
            raise
        self.app.call_from_thread(self._added, name, f"{name}: added", added)

    def _trust_host_key(self, name: str, target: str, fingerprint: str) -> bool:
        """On the add's thread: ask on the UI thread, wait for the answer."""
        assert self._questions is not None
        return self._questions.ask(HostKeyModal(name, target, fingerprint))

    def _progress(self, name: str, line: str) -> None:
        if name in self.adding:
            self.adding[name] = (self.adding[name][0], line)
        elif name in self.busy:
            self.busy[name] = (self.busy[name][0], line)
        self._activity(f"{name}: {line}")
        self._show_selected()

    def _added(self, name: str, line: str, added: Added | None) -> None:
        self.adding.pop(name, None)
        self._activity(line)
        self.reload(select=name if self.ws.repos.toolboxes.by_name(name) else None)
        if added is not None and added.price_monthly is not None and added.toolbox.size:
            self.prices[added.toolbox.size] = added.price_monthly
        if added is not None:
            self.notify(f"toolbox {name} added: gateway {added.gateway_url}/mcp, TLS {added.gateway_fingerprint}",
                        timeout=10)
        elif line.endswith(": added"):
            self.notify(f"toolbox {name} added")

    def action_sync(self) -> None:
        box = self._selected_box()
        if box is None or box.name in self.busy:
            return
        if not box.is_remote:
            self.notify(f"toolbox {box.name} needs no sync: the local gateway reads the vault itself")
            return
        if self.console.links.retry(box.id):
            self._activity(f"{box.name}: connecting again")
        self.busy[box.name] = ("syncing", "pushing the policy, pulling audit records")
        self.reload()
        self._sync(box.name)

    @work(thread=True, exit_on_error=False, group="toolbox-sync")
    def _sync(self, name: str) -> None:
        from console.services import remote_toolboxes as remote

        box = self.ws.repos.toolboxes.require(name)
        try:
            with self.console.remote_sync_lock:
                done = remote.sync(self.ws, box, self.console.links.usable(box.id))
        except Exception as exc:
            self.app.call_from_thread(self._done, name, f"{name}: sync failed: {exc}", "")
            raise
        policy = "policy pushed" if done.pushed else "policy already current"
        note = f"{name}: {policy}, {done.pulled} audit record(s) pulled"
        self.app.call_from_thread(self._done, name, note, note)

    def _done(self, name: str, line: str, note: str) -> None:
        self.busy.pop(name, None)
        self._activity(line)
        self.reload()
        if note:
            self.notify(note)

    def action_remove(self) -> None:
        orphan = self.orphan_at(self._selected())
        if orphan is not None:
            self.destroy_orphan(orphan)
            return
        box = self._selected_box()
        if box is None or box.name in self.busy:
            return
        count = len(self.ws.repos.servers.in_toolbox(box.id))
        forgets = f"forgets its {count} server(s) and every grant into it"
        if box.droplet_id is not None:
            title, confirm = f"Destroy droplet toolbox {box.name}?", "Destroy droplet"
            body = (f"DESTROYS droplet {box.droplet_id} ({box.region}, {box.size}) at DigitalOcean with everything "
                    f"on it, after pulling its last audit records; {forgets}. This cannot be undone.")
        elif box.is_remote:
            title, confirm = f"Remove toolbox {box.name}?", "Remove"
            body = (f"Removes the console's gateway, server containers and files from {box.ssh_target} (the host "
                    f"itself stays), after pulling its last audit records; {forgets}.")
        else:
            title, confirm = f"Remove toolbox {box.name}?", "Remove"
            body = f"Removes the containers of its servers; {forgets}."
        self.app.push_screen(ConfirmModal(title, body, confirm=confirm),
                             lambda yes: self._begin_remove(box.name) if yes else None)

    def _begin_remove(self, name: str) -> None:
        self.busy[name] = ("removing", "starting")
        self._activity(f"{name}: removing")
        self.reload()
        self._remove(name)

    @work(thread=True, exit_on_error=False, group="toolbox-change")
    def _remove(self, name: str) -> None:
        from console.services import remote_toolboxes as remote
        from console.services import servers, toolboxes

        ws = self.ws
        try:
            box = ws.repos.toolboxes.require(name)
            if box.is_remote:
                remote.remove_remote(ws, name, partial(self.app.call_from_thread, self._progress, name))
            else:
                for server in ws.repos.servers.in_toolbox(box.id):
                    servers.remove_server(ws, f"{name}/{server.name}")
                toolboxes.remove_toolbox(ws, name)
        except Exception as exc:
            self.app.call_from_thread(self._done, name, f"{name}: not removed: {exc}", "")
            raise
        self.app.call_from_thread(self._done, name, f"{name}: removed", f"toolbox {name} removed")
