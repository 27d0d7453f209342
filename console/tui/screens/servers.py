"""2 Servers: the servers of one toolbox, live — health, ping, CPU, memory, logs.

Health comes from the app's supervisor (``app.health_signal``); CPU and memory from one
stats stream per running container, followed only while this screen is shown. The table
is refreshed every ``settings.tui.refresh_seconds`` by row key, touching only changed
cells; a health word that changes (down, healthy) is shown within a tenth of a second,
ping jitter waits for the next refresh. Every change runs in a worker.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.timer import Timer
from textual.widgets import DataTable, Input, Static

from console.model import DesiredState, ServerInstance, ToolDef
from console.services.items import plural
from console.tui.modals.confirm import ConfirmModal
from console.tui.screens.base import ConsoleScreen
from console.tui.widgets.activity_log import ActivityLog
from console.tui.widgets.filter import FilterInput
from console.tui.widgets.footer import ConsoleFooter
from console.tui.widgets.header import ConsoleHeader
from console.tui.widgets.server_detail import ServerDetail
from console.tui.widgets.server_log import TailLog
from console.tui.widgets.server_stats_feed import StatsFeed
from console.tui.widgets.server_table import ServerTable, ToolCounts, pending_row, server_row
from console.tui.widgets.toolbox_link import engine_live, link_note

if TYPE_CHECKING:
    from console.model import Toolbox
    from console.runtime.supervisor import Health
    from console.model import Connection
    from console.oauth.flows import Opener
    from console.tui.modals.connect import Signed
    from console.tui.remote_links import LinkState
    from console.tui.widgets.add_server_form import AddRequest
    from console.tui.widgets.edit_remote_form import RemoteEditRequest
    from console.tui.widgets.edit_server_form import EditRequest


LIVE_STATES = frozenset({"running", "restarting", "paused"})
"""Docker's container states in which the server is up or coming back by itself."""


class ServersScreen(ConsoleScreen):
    RELOAD_ON_EVERY_VISIT = True  # health and links follow it only while in front
    CSS = """
    ServersScreen #servers { height: 4; max-height: 40%; }
    ServersScreen #title { height: 1; }
    ServersScreen ServerDetail { height: 1fr; border-top: solid $panel; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("a", "add", "Add", id="server.add", tooltip="Add a server from the catalog"),
        Binding("s", "toggle", "Start/stop", id="server.toggle", tooltip="Start the server, or stop it (asks first)"),
        Binding("r", "restart", "Restart", id="server.restart", tooltip="Restart the server and rediscover its tools"),
        Binding("d", "remove", "Remove", id="server.remove",
                tooltip="Remove the server, its container, tools, secrets and grants (asks first)"),
        Binding("l", "logs", "Logs", id="server.logs", tooltip="Show and focus the server's live log"),
        Binding("L", "full_log", "Full log", id="server.full_log", show=False,
                tooltip="The server's live log on the whole screen (Escape: back)"),
        Binding("e", "edit", "Edit", id="server.edit",
                tooltip="Change the server's env, folders and limits (its container is made again)"),
        Binding("t", "pick_toolbox", "Toolbox", id="server.toolbox", tooltip="Show another toolbox's servers"),
        Binding("i", "sign_in", "Sign in", id="server.sign_in",
                tooltip="Sign in again to a remote server's MCP authorization (its sign-in expired or was revoked)"),
        Binding("left_square_bracket", "tab(-1)", "Prev tab", id="server.tab_previous", show=False,
                tooltip="Previous detail tab (Logs, Stats, Tools, Config)"),
        Binding("right_square_bracket", "tab(1)", "Tabs", id="server.tab_next",
                tooltip="Next detail tab (Logs, Stats, Tools, Config)"),
    ]
    PALETTE: ClassVar[list[tuple[str, str]]] = [
        ("server: Add", "add"), ("server: Restart", "restart"), ("server: Start/stop", "toggle"),
        ("server: Remove", "remove"), ("server: Show logs", "logs"), ("server: Pick toolbox", "pick_toolbox"),
        ("server: Edit env, folders, limits", "edit"), ("server: Full-screen log", "full_log"),
        ("server: Sign in again (remote)", "sign_in"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.box: Toolbox | None = None
        self.servers: dict[str, ServerInstance] = {}
        self.tools: dict[str, list[ToolDef]] = {}
        self.busy: dict[str, str] = {}
        """Server id -> what a worker is doing to it (starting, stopping...)."""
        self.adding: dict[str, str] = {}
        """Name -> latest progress line of a server being added."""
        self.feed = StatsFeed()
        self._shown_health: dict[str, tuple[str, str]] = {}
        self._soon: Timer | None = None
        self.opener: Opener | None = None
        """Opens a sign-in address (None: the system browser; tests drive Chromium)."""

    def compose(self) -> ComposeResult:
        yield ConsoleHeader("servers")
        with Vertical():
            yield FilterInput("filter servers by name or health", id="filter")
            yield Static("", id="title", classes="panel-title")
            yield ServerTable(id="servers")
            yield ActivityLog(lambda: bool(self.adding or self.busy))
            yield ServerDetail()
        yield ConsoleFooter()

    def on_mount(self) -> None:
        self.console.health_signal.subscribe(self, self._on_health)
        self.console.link_signal.subscribe(self, self._on_link)
        self.watch(self.console, "toolbox_name", lambda _name: self.reload(), init=False)
        if self.console.live:
            self.set_interval(self.backend.settings.tui.refresh_seconds, self.refresh_live)
        super().on_mount()

    def on_unmount(self) -> None:
        self.feed.stop()

    def on_screen_suspend(self) -> None:
        if self.app.current_mode != "servers":  # hidden, not merely under a modal
            self.feed.stop()
            self.query_one(ServerDetail).server_log.detach()

    # -- reading -------------------------------------------------------------------------

    def reload(self) -> None:
        ws = self.ws
        self.box = box = ws.repos.toolboxes.by_name(self.console.toolbox_name)
        servers = ws.repos.servers.in_toolbox(box.id) if box else []
        self.servers = {s.id: s for s in servers}
        ids = set(self.servers)
        self.tools = {sid: [] for sid in ids}
        for tool in ws.repos.tools.where(lambda doc: doc["server"] in ids and doc.get("kind", "tool") == "tool"):
            self.tools[tool.server].append(tool)  # resources and prompts are on the Tools screen with them
        self.feed.forget(ids)
        self.refresh_live(force=True)

    def _counts(self, server_id: str) -> ToolCounts:
        tools = self.tools.get(server_id, [])
        return ToolCounts(sum(1 for t in tools if t.exposable), len(tools))

    @property
    def live(self) -> bool:
        """Live data from the engine: a remote toolbox's only while its SSH link is up."""
        return self.box is not None and engine_live(self.console, self.box)

    def _rows(self) -> list[tuple[str, tuple]]:
        app, live = self.app, self.live
        wanted = self.query_one("#filter", Input).value.strip().lower()
        rows = []
        for server in sorted(self.servers.values(), key=lambda s: s.name):
            health = self.console.health(server.id) if live else None
            row = server_row(app, server, self._counts(server.id), live=live, health=health,
                             stats=self.feed.latest.get(server.id), busy=self.busy.get(server.id))
            if wanted and wanted not in f"{server.name} {row[1]} {getattr(row[2], 'plain', row[2])}".lower():
                continue
            rows.append((server.id, row))
            if health is not None:
                self._shown_health[server.id] = (health.state, health.health)
        taken = {s.name for s in self.servers.values()}
        rows += [(f"+{name}", pending_row(app, name, line)) for name, line in self.adding.items() if name not in taken]
        return sorted(rows, key=lambda item: str(item[1][0]))

    def refresh_live(self, force: bool = False) -> int:
        """One refresh: follow the right stats streams (only while this screen is shown),
        then update the changed cells and return how many. Under a modal, or hidden, the
        table is left alone unless ``force``d (a vault reload)."""
        if self.box is not None and self.is_current:
            self._follow_stats()
        if not force and not self.is_active:
            return 0
        written = self.query_one(ServerTable).sync(self._rows())
        self.query_one("#title", Static).update(self._title())
        self._show_selected()
        return written

    def _title(self) -> str:
        name = self.console.toolbox_name
        if self.box is None:
            if not any(True for _box in self.ws.repos.toolboxes):
                return "no toolboxes yet: add one on the Toolboxes screen (1)"
            return f"no toolbox named {name}: press t to pick one"
        if not self.servers and not self.adding:
            return f"toolbox {name} has no servers yet: press a to add one from the catalog"
        running = sum(1 for s in self.servers.values() if s.desired_state is DesiredState.RUNNING)
        adding = f", {len(self.adding)} being added" if self.adding else ""
        note = link_note(self.console, self.box)
        return (f"toolbox {name} · {len(self.servers)} server(s), {running} meant to run{adding} · "
                f"{note + ' · ' if note else ''}t: another toolbox")

    def _follow_stats(self) -> None:
        from console.runtime.enginehttp import Endpoint

        assert self.box is not None
        if not self.live:
            self.feed.stop()
            return
        running = {}
        for server_id in self.servers:
            health = self.console.health(server_id)
            if health is not None and health.state == "running" and health.container_id:
                running[server_id] = health.container_id
        remote = self.console.link_endpoint(self.box.id) if self.box.is_remote else None
        self.feed.sync(Endpoint.parse(remote or self.box.engine_endpoint), running)

    def _on_health(self, health: Health) -> None:
        """A supervisor change. A new state or health word shows at once (coalesced over
        100 ms); a new ping time waits for the next refresh."""
        if health.server_id not in self.servers or not self.is_active:
            return
        if self._shown_health.get(health.server_id) != (health.state, health.health) and self._soon is None:
            self._soon = self.set_timer(0.1, self._refresh_soon)

    def _on_link(self, state: LinkState) -> None:
        if self.box is not None and state.toolbox_id == self.box.id and self.is_active:
            self.refresh_live(force=True)

    def _refresh_soon(self) -> None:
        self._soon = None
        self.refresh_live()

    # -- the selected server -----------------------------------------------------------------

    @property
    def selected(self) -> ServerInstance | None:
        key = self.query_one(ServerTable).selected_key
        return self.servers.get(key) if key else None

    def _label(self, server: ServerInstance) -> str:
        return f"{self.console.toolbox_name}/{server.name}"

    def on_data_table_row_highlighted(self, _event: DataTable.RowHighlighted) -> None:
        self._show_selected()

    def on_tabbed_content_tab_activated(self, _event: object) -> None:
        self._show_selected()

    def _log_token(self, server: ServerInstance | None) -> object:
        """What a log follows: the container and whether it runs (a new one starts the tail
        again); None when there is no container to read."""
        if server is None or not self.live:
            return None
        health = self.console.health(server.id)
        if health is not None and health.state == "missing":
            return None
        return (health.container_id, health.state == "running") if health and health.container_id else "?"

    def _show_selected(self) -> None:
        detail = self.query_one(ServerDetail)
        server, live = self.selected, self.live
        health = self.console.health(server.id) if server and live else None
        detail.show_vault(server, self.tools.get(server.id, []) if server else [])
        if self.is_current:  # a hidden screen reads no log
            detail.server_log.show(self._label(server) if server else None, self._log_token(server), live=live)
        if detail.active == "stats":
            detail.server_stats.show(server, live=live, health=health,
                                     stats=self.feed.latest.get(server.id) if server else None,
                                     history=self.feed.history.get(server.id, ()) if server else ())
        if detail.active == "egress":
            detail.server_egress.show(server, self._label(server) if server else None, self.ws.paths.audit_log)
        self.refresh_bindings()  # i (sign in) is offered on remote servers only

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "sign_in":
            return self.selected is not None and self.selected.url is not None
        return True

    # -- keys ------------------------------------------------------------------------------

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "filter":
            self.refresh_live(force=True)

    def action_tab(self, step: int) -> None:
        self.query_one(ServerDetail).step(step)

    def action_logs(self) -> None:
        detail = self.query_one(ServerDetail)
        detail.active = "logs"
        self.query_one(TailLog).focus()

    def action_full_log(self) -> None:
        from console.tui.screens.full_log import FullLogScreen

        server = self.selected
        if server is None:
            return
        if not self.live:
            self.notify("the log is read live from the server's container: no engine here", severity="warning")
            return
        server_id = server.id
        self.app.push_screen(FullLogScreen(self._label(server),
                                           lambda: self._log_token(self.servers.get(server_id))))

    def action_pick_toolbox(self) -> None:
        from console.tui.modals.pick_toolbox import PickToolboxModal

        ws = self.ws
        boxes = [(b.name, f"{b.kind.value} · {len(ws.repos.servers.in_toolbox(b.id))} server(s)")
                 for b in sorted(ws.repos.toolboxes, key=lambda b: b.name)]
        if not boxes:
            self.notify("no toolboxes yet: add one on the Toolboxes screen (1)", severity="warning")
            return

        def chosen(name: str | None) -> None:
            if name:
                self.console.toolbox_name = name

        self.app.push_screen(PickToolboxModal(boxes, self.console.toolbox_name), chosen)

    def action_add(self) -> None:
        from console.catalog import CatalogError, load_catalog
        from console.tui.modals.add_server import AddServerModal

        box = self.box
        if box is None:
            self.notify(f"no toolbox named {self.console.toolbox_name}: press t to pick one", severity="warning")
            return
        try:
            entries = load_catalog(self.ws.paths).entries()
        except CatalogError as exc:
            self.notify(str(exc), severity="error", timeout=10)
            return
        taken = {s.name for s in self.servers.values()} | set(self.adding)
        modal = AddServerModal(box.name, entries, taken=taken.__contains__, check_paths=box.kind.value == "local")
        self.app.push_screen(modal, self._begin_add)

    def _begin_add(self, request: AddRequest | None) -> None:
        if request is None or self.box is None:
            return
        self.adding[request.name] = "queued"
        self._activity(f"{request.name}: adding {request.entry.id} to toolbox {self.box.name}")
        self.refresh_live(force=True)
        self._add(self.box.name, request)

    @work(thread=True, exit_on_error=False, group="server-add")
    def _add(self, toolbox: str, request: AddRequest, signed: Signed | None = None) -> None:
        """Add it; a remote server that asks for sign-in gets the sign-in modal, and once
        signed in (``signed``) is added again carrying that sign-in."""
        from console.services.remote_servers import SignInNeeded
        from console.services.remote_sign_in import add_after_sign_in
        from console.services.servers import add_server

        def progress(line: str) -> None:
            self.app.call_from_thread(self._progress, request.name, line)

        def add(connection: str | None) -> ServerInstance:
            return add_server(self.ws, toolbox, request.entry, name=request.name, env=request.env,
                              secrets=request.secrets, mounts=request.mounts, limits=request.limits,
                              connection=connection, egress=request.egress, network=request.network,
                              progress=progress)

        try:
            server = (add(request.connection) if signed is None else
                      add_after_sign_in(self.ws, add, signed.connection, signed.is_new))
        except SignInNeeded as needed:
            if signed is None:
                self.app.call_from_thread(self._ask_sign_in, toolbox, request, needed.url)
                return
            self.app.call_from_thread(self._finished, request.name, f"{request.name}: failed: {needed}", None)
            raise
        except Exception as exc:
            self.app.call_from_thread(self._finished, request.name, f"{request.name}: failed: {exc}", None)
            raise
        count = plural(item.ref for item in self.ws.repos.tools.of_server(server.id))
        self.app.call_from_thread(
            self._finished, request.name, f"{request.name}: added",
            f"{toolbox}/{server.name} is running with {count} pending approval: see Tools (3)")

    def _ask_sign_in(self, toolbox: str, request: AddRequest, url: str) -> None:
        from console.tui.modals.mcp_sign_in import McpSignInModal

        self._progress(request.name, "asks for sign-in (MCP authorization): waiting for it")

        def signed_in(signed: Signed | None) -> None:
            if signed is None:
                self._finished(request.name, f"{request.name}: sign-in cancelled; nothing added", None)
                return
            self._progress(request.name, f"signed in to {signed.connection.account}")
            self._add(toolbox, request, signed)

        modal = McpSignInModal(self.ws, url, server=f"{toolbox}/{request.name}", **self._opener())
        self.app.push_screen(modal, signed_in)

    def _opener(self) -> dict[str, Opener]:
        return {} if self.opener is None else {"opener": self.opener}

    def action_sign_in(self) -> None:
        """``tbx server login TOOLBOX/SERVER``: sign in again, bound to the server, which
        then connects again with the new token (restarted, its tools discovered)."""
        from console.tui.modals.mcp_sign_in import McpSignInModal

        server = self.selected
        if server is None or server.url is None:
            return
        label = self._label(server)
        modal = McpSignInModal(self.ws, server.url, server=label, again=True, **self._opener())
        self.app.push_screen(modal, lambda signed: self._signed_again(server, signed))

    def _signed_again(self, server: ServerInstance, signed: Signed | None) -> None:
        if signed is not None and self._claim(server, "connecting again",
                                              f"signed in to {signed.connection.account}"):
            self._rebind(server.id, self._label(server), signed.connection)

    @work(thread=True, exit_on_error=False, group="server-op")
    def _rebind(self, server_id: str, label: str, connection: Connection) -> None:
        from console.services.remote_sign_in import sign_in_again

        name = label.split("/", 1)[1]
        try:
            outcome = sign_in_again(self.ws, label, connection)
        except Exception as exc:
            self.app.call_from_thread(self._done, server_id, f"{name}: signed in, but connecting failed: {exc}", "")
            raise
        again = "" if outcome is None else (
            "; connected again" + (f", {len(outcome.changed)} item(s) changed" if outcome.changed else ""))
        note = f"{label}: signed in to {connection.account}{again}"
        self.app.call_from_thread(self._done, server_id, f"{name}: {note.split(': ', 1)[1]}", note)

    def _progress(self, name: str, line: str) -> None:
        self.adding[name] = line
        self._activity(f"{name}: {line}")
        self.refresh_live(force=True)

    def _finished(self, name: str, line: str, note: str | None) -> None:
        self.adding.pop(name, None)
        self._activity(line)
        self.refresh_live(force=True)  # the row being added goes; the vault's change re-reads the rest
        if note:
            self.notify(note)

    def _activity(self, line: str) -> None:
        self.query_one(ActivityLog).say(line)


    def action_toggle(self) -> None:
        server = self.selected
        if server is None:
            return
        if self._is_up(server):
            modal = ConfirmModal(f"Stop {self._label(server)}?",
                                 "Agents lose its tools until it is started again (s).", confirm="Stop")
            self.app.push_screen(modal, lambda yes: self._operate("stop", server) if yes else None)
        else:
            self._operate("start", server)

    def _is_up(self, server: ServerInstance) -> bool:
        """Whether ``s`` stops the server: it runs (or is on its way), as far as we can see.
        A server meant to run whose container exited or is missing is started instead."""
        health = self.console.health(server.id) if self.live else None
        if health is None or health.state == "unknown":
            return server.desired_state is DesiredState.RUNNING
        return health.state in LIVE_STATES

    def action_restart(self) -> None:
        if (server := self.selected) is not None:
            self._operate("restart", server)

    def action_edit(self) -> None:
        # Not console.services.servers: it pulls in docker-py and the MCP SDK, seconds of
        # import on a loaded machine, and a key must be answered at once.
        from console.catalog.model import CatalogEntry
        from console.tui.modals.edit_server import EditServerModal

        server = self.selected
        if server is None or self.box is None:
            return
        if server.kind == "remote":
            from console.tui.modals.edit_remote_server import EditRemoteModal

            self.app.push_screen(EditRemoteModal(self._label(server), server),
                                 lambda request: self._begin_edit(server, request))
            return
        if server.spec is None:
            self.notify(f"{self._label(server)} has no stored spec: remove it and add it again", severity="warning")
            return
        modal = EditServerModal(self._label(server), CatalogEntry.model_validate(server.spec), server,
                                check_paths=not self.box.is_remote)
        self.app.push_screen(modal, lambda request: self._begin_edit(server, request))

    def _begin_edit(self, server: ServerInstance, request: EditRequest | RemoteEditRequest | None) -> None:
        if request is not None and self._claim(server, "editing"):
            self._edit(server.id, self._label(server), request)

    @work(thread=True, exit_on_error=False, group="server-op")
    def _edit(self, server_id: str, label: str, request: EditRequest | RemoteEditRequest) -> None:
        from console.services.remote_edit import edit_remote_server, said
        from console.services.server_edit import edit_server
        from console.tui.widgets.edit_remote_form import RemoteEditRequest

        name = label.split("/", 1)[1]

        def progress(line: str) -> None:
            self.app.call_from_thread(self._activity, f"{name}: {line}")

        try:
            if isinstance(request, RemoteEditRequest):
                remote = edit_remote_server(self.ws, label, url=request.url, headers=request.headers,
                                            remove_headers=request.remove, rename_headers=request.rename,
                                            progress=progress)
                line = said(remote, label)
                self.app.call_from_thread(self._done, server_id, f"{name}: {line}", f"{label}: {line}")
                return
            outcome = edit_server(self.ws, label, env=request.env, mounts=request.mounts, limits=request.limits,
                                  network=request.network, egress=request.egress, progress=progress)
        except Exception as exc:
            self.app.call_from_thread(self._done, server_id, f"{name}: edit failed, the old settings kept: {exc}", "")
            raise
        if not outcome.changed:
            self.app.call_from_thread(self._done, server_id, f"{name}: nothing changed", f"{label}: nothing changed")
            return
        found = outcome.discovery
        again = "" if found is None else "; running again" + (
            f", {len(found.changed)} item(s) changed" if found.changed else "")
        note = (f"{label}: its allowed hosts changed (the gateway's proxy applies them; no restart)"
                if outcome.changed == ["egress"] else
                f"{label}: {', '.join(outcome.changed)} changed, container made again{again}")
        self.app.call_from_thread(self._done, server_id, f"{name}: {note.split(': ', 1)[1]}", note)

    def action_remove(self) -> None:
        server = self.selected
        if server is None:
            return
        from console.services.grants import agent_list, grant_holders

        tools = len(self.tools.get(server.id, []))
        losers = grant_holders(self.ws.repos, server.id)
        who = (f"{agent_list(losers)} {'loses' if len(losers) == 1 else 'lose'} access to it: "
               f"{'its grants are' if len(losers) == 1 else 'their grants are'} deleted." if losers else
               "No agent holds a grant to it.")
        modal = ConfirmModal(f"Remove {self._label(server)}?",
                             f"Removes its container, its {tools} tool(s) with their approvals and its secrets. "
                             f"{who} Adding it again starts from scratch.", confirm="Remove")
        self.app.push_screen(modal, lambda yes: self._operate("remove", server) if yes else None)

    def _operate(self, verb: str, server: ServerInstance) -> None:
        doing = {"start": "starting", "stop": "stopping", "restart": "restarting", "remove": "removing"}[verb]
        if self._claim(server, doing):
            self._run(verb, server.id, self._label(server))

    def _claim(self, server: ServerInstance, doing: str, line: str | None = None) -> bool:
        """Mark ``server`` busy ``doing`` (one operation at a time), or say what it is busy with."""
        if server.id in self.busy:
            self.notify(f"{self._label(server)} is busy {self.busy[server.id]}", severity="warning")
            return False
        self.busy[server.id] = doing
        self._activity(f"{server.name}: {line or doing}")
        self.refresh_live(force=True)
        return True

    @work(thread=True, exit_on_error=False, group="server-op")
    def _run(self, verb: str, server_id: str, label: str) -> None:
        from console.services import servers

        ws, name = self.ws, label.split("/", 1)[1]

        def progress(line: str) -> None:
            self.app.call_from_thread(self._activity, f"{name}: {line}")

        note = ""
        try:
            if verb == "start":
                outcome = servers.start_server(ws, label, progress)
                note = f"{label} started" + (f"; {len(outcome.changed)} tool(s) changed" if outcome.changed else "")
            elif verb == "stop":
                servers.stop_server(ws, label)
                note = f"{label} stopped"
            elif verb == "restart":
                outcome = servers.restart_server(ws, label)
                note = f"{label} restarted" + (f"; {len(outcome.changed)} item(s) changed" if outcome.changed else "")
            else:
                counts = servers.remove_server(ws, label)
                note = f"{label} removed with {counts['items']} item(s) and {counts['grants']} grant(s)"
        except Exception as exc:
            self.app.call_from_thread(self._done, server_id, f"{name}: {verb} failed: {exc}", "")
            raise
        self.app.call_from_thread(self._done, server_id, f"{name}: {note.split(' ', 1)[1]}", note)

    def _done(self, server_id: str, line: str, note: str) -> None:
        self.busy.pop(server_id, None)
        self._activity(line)
        self.refresh_live(force=True)  # "stopping…" goes; the vault's change re-reads the rest
        if note:
            self.notify(note)
