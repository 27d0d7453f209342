"""5 Agents: identities with a token, what each can reach and why, and its client config."""

from __future__ import annotations

from typing import ClassVar

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.widgets import DataTable, Input

from console.errors import TbxError
from console.gateway import clientfile
from console.gateway.clientconfig import base_url, default_file
from console.gateway.clientfile import Merge
from console.model import check_name
from console.services import agents as agent_service
from console.services.access import AccessReport, access_report
from console.services.agents import AgentSummary
from console.tui.modals.agent_token import AgentTokenModal
from console.tui.modals.confirm import ConfirmModal
from console.tui.modals.prompt import PromptModal
from console.tui.modals.write_config import WriteConfigModal
from console.tui.screens.base import ConsoleScreen
from console.tui.widgets.agent_surface import AgentSurface
from console.tui.widgets.client_snippet import ClientSnippet
from console.tui.widgets.filter import FilterInput
from console.tui.widgets.footer import ConsoleFooter
from console.tui.widgets.header import ConsoleHeader
from console.tui.widgets.fit_table import Choice, Col, Cut, FitTable

COLUMNS = ("NAME", "STATE", "TOKEN", "TOOLBOXES", "ITEM GRANTS", "CREATED")
FIT = (Col("NAME", "NAME", least=10, yields=1), Col("STATE", "STATE", 8), Col("TOKEN", "TOKEN"),
       Col("TOOLBOXES", "TOOLBOXES", least=5, short="BOXES", yields=3),
       Col("ITEM GRANTS", "ITEM GRANTS", least=6, short="GRANTS", yields=2),
       Col("CREATED", "CREATED", least=10, yields=4))
"""On a narrow screen the creation time loses its hour, the counts their long headings."""
ONCE = "Shown once: the vault keeps only its hash. Copy it now (c), or the config with it filled in (s)."


class AgentsScreen(ConsoleScreen):
    CSS = """
    AgentsScreen #agents { height: auto; max-height: 40%; }
    AgentsScreen #detail { height: 1fr; }
    AgentsScreen AgentSurface { width: 3fr; border: round $panel-lighten-2; border-title-color: $text-muted; }
    AgentsScreen ClientSnippet { width: 2fr; border: round $panel-lighten-2; border-title-color: $text-muted; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("a", "add", "Add", id="agent.add", tooltip="Create an agent; its token is shown once"),
        Binding("r", "rotate", "Rotate", id="agent.rotate",
                tooltip="Issue a new token (shown once); the old one stops working"),
        Binding("x", "toggle", "On/off", id="agent.toggle", tooltip="Disable or enable the agent"),
        Binding("d", "remove", "Remove", id="agent.remove", tooltip="Delete the agent and its grants"),
        Binding("c", "copy_config", "Copy config", id="agent.copy_config",
                tooltip="Copy the client config (the token a reference or a placeholder: it is never kept)"),
        Binding("w", "write_config", "Write config", id="agent.write_config",
                tooltip="Merge the client config into the client's own config file (shows the diff first)"),
        Binding("left_square_bracket", "client(-1)", "Client", id="agent.client_prev", show=False,
                tooltip="Previous client (Claude Desktop, Claude Code, Cursor, VS Code, ...)"),
        Binding("right_square_bracket", "client(1)", "Client", id="agent.client_next",
                tooltip="Next client (Claude Desktop, Claude Code, Cursor, VS Code, ...)"),
        Binding("g", "grants", "Grants", id="agent.grants", show=False, tooltip="Show this agent on the Grants screen"),
    ]
    PALETTE: ClassVar[list[tuple[str, str]]] = [
        ("agent: Add", "add"), ("agent: Rotate token", "rotate"), ("agent: Disable/enable", "toggle"),
        ("agent: Remove", "remove"), ("agent: Copy client config", "copy_config"),
        ("agent: Write client config", "write_config"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self._agents: dict[str, AgentSummary] = {}
        self._select_after_reload: str | None = None

    def compose(self) -> ComposeResult:
        yield ConsoleHeader("agents")
        with Vertical():
            yield FilterInput("filter agents", id="filter")
            yield FitTable(FIT, id="agents", cursor_type="row", zebra_stripes=True)
            with Horizontal(id="detail"):
                yield AgentSurface(id="surface")
                yield ClientSnippet(id="config")
        yield ConsoleFooter()

    def on_mount(self) -> None:
        self.watch(self.console, "gateway_description", lambda _value: self._show_detail(), init=False)
        super().on_mount()

    # -- the list ------------------------------------------------------------------------------

    def reload(self) -> None:
        table = self.query_one(DataTable)
        wanted = self.query_one("#filter", Input).value.strip().lower()
        summaries = [s for s in agent_service.list_agents(self.ws) if wanted in s.name]
        self._agents = {s.id: s for s in summaries}
        with self.app.batch_update():
            for key in [row.value for row in list(table.rows) if row.value not in self._agents]:
                table.remove_row(key)
            added = False
            for summary in summaries:
                values = self._values(summary)
                if summary.id in table.rows:
                    for column, value in zip(table.columns, values, strict=True):
                        table.update_cell(summary.id, column, value)
                else:
                    table.add_row(*values, key=summary.id)
                    added = True
            if added:
                table.sort("NAME")
        wanted_name, self._select_after_reload = self._select_after_reload, None
        chosen = next((s.id for s in summaries if s.name == wanted_name), None)
        if chosen is not None:
            table.move_cursor(row=table.get_row_index(chosen))
        self._show_detail()

    @staticmethod
    def _values(summary: AgentSummary) -> tuple[object, ...]:
        state = Content.styled("enabled", "$success") if summary.enabled else Content.styled("disabled", "$error bold")
        return (Cut(summary.name), state, summary.fingerprint, summary.toolboxes, summary.tool_grants,
                Choice((f"{summary.created:%Y-%m-%d %H:%M}", f"{summary.created:%Y-%m-%d}")))

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "filter":
            self.reload()

    def on_data_table_row_highlighted(self, _event: DataTable.RowHighlighted) -> None:
        self._show_detail()

    def _selected(self) -> AgentSummary | None:
        table = self.query_one(DataTable)
        if table.row_count == 0:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        return self._agents.get(key or "")

    # -- the detail ----------------------------------------------------------------------------

    def gateway_url(self) -> str:
        """Where the agent's client connects: the running gateway, or where it will serve."""
        running = self.console.gateway_description.removeprefix("gateway: ")
        if running.startswith("http") and self.console.toolbox_name == "local":
            return running.removesuffix("/mcp")
        box = self.ws.repos.toolboxes.by_name(self.console.toolbox_name)
        settings = self.ws.settings.gateway
        return (box.gateway_address if box else None) or base_url(settings.host, settings.port)

    def _show_detail(self) -> None:
        agent = self._selected()
        surface, config = self.query_one(AgentSurface), self.query_one(ClientSnippet)
        config.show(agent.name if agent else None, self.gateway_url())
        config.border_title = f"client config · {agent.name}" if agent else "client config"
        if agent is None:
            surface.border_title = "surface"
            surface.show(None, "no agents yet: press a to add one" if not self.query_one("#filter", Input).value
                         else "no agent matches the filter")
            return
        surface.border_title = f"what {agent.name} can reach, and why"
        self._load_surface(agent.name)

    @work(thread=True, exclusive=True, exit_on_error=False, group="agent-surface")
    def _load_surface(self, name: str) -> None:
        try:
            report: AccessReport | None = access_report(self.ws, name)
        except TbxError as exc:
            self.app.call_from_thread(self._surface_loaded, name, None, str(exc))
            return
        self.app.call_from_thread(self._surface_loaded, name, report, "")

    def _surface_loaded(self, name: str, report: AccessReport | None, problem: str) -> None:
        agent = self._selected()
        if agent is not None and agent.name == name:
            self.query_one(AgentSurface).show(report, problem)

    def action_client(self, step: int) -> None:
        self.query_one(ClientSnippet).cycle(step)

    def action_copy_config(self) -> None:
        snippet = self.query_one(ClientSnippet)
        text = snippet.text()
        if text is None:
            self.notify("no agent selected", severity="warning")
            return
        self.app.copy_to_clipboard(text)
        self.notify(f"{snippet.client} config for {snippet.agent} copied: paste its token where it says PASTE-…")

    def action_write_config(self) -> None:
        config = self.query_one(ClientSnippet).config()
        if config is None:
            self.notify("no agent selected", severity="warning")
            return
        path = default_file(config.client)
        if path is None:
            self.notify(f"{config.client} has no config file: copy the URL and header (c)", severity="warning")
            return
        try:
            change = clientfile.merge(config, path)
        except TbxError as exc:
            self.notify(str(exc), severity="error")
            return
        if not change.changed:
            self.notify(f"{path} already has {config.key}; nothing to write")
            return
        self.app.push_screen(WriteConfigModal(config.client, change),
                             lambda yes: self._write_config(change) if yes else None)

    @work(thread=True, exit_on_error=False, group="agent-write-config")
    def _write_config(self, change: Merge) -> None:
        try:
            backup = clientfile.write(change)
        except OSError as exc:
            self.notify(f"cannot write {change.path}: {exc.strerror or exc}", severity="error")
            return
        self.notify(f"wrote {change.path}" + (f"; the previous one is {backup.name}" if backup else ""))

    async def action_grants(self) -> None:
        agent = self._selected()
        if agent is None:
            return
        await self.app.switch_mode("grants")
        self.backend.remember(screen="grants")
        show = getattr(self.app.screen, "show_agent", None)
        if show is not None:
            show(agent.name)

    # -- changes -------------------------------------------------------------------------------

    def _token_modal(self, title: str, name: str, token: str) -> AgentTokenModal:
        client = self.query_one(ClientSnippet).client
        return AgentTokenModal(title, token, ONCE, agent=name, client=client, url=self.gateway_url())

    def action_add(self) -> None:
        def check(name: str) -> str | None:
            try:
                check_name("agent", name)
            except TbxError as exc:
                return str(exc)
            return "that name is taken" if self.ws.repos.agents.by_name(name) else None

        prompt = PromptModal("Add an agent", "A name for the agent (a-z, 0-9 and '-'), e.g. claude-desktop:",
                             placeholder="claude-desktop", check=check, confirm="Add")
        self.app.push_screen(prompt, self._add)

    @work(thread=True, exit_on_error=False, group="agent-change")
    def _add(self, name: str | None) -> None:
        if not name:
            return
        _agent, token = agent_service.add_agent(self.ws, name)
        self.app.call_from_thread(self._changed, name, f"Token for {name}", token)

    def _changed(self, name: str, title: str | None = None, token: str | None = None) -> None:
        # The change reaches this screen as VaultChanged, before this or after: the agent is
        # selected now if its row is in, else by the re-read that brings it.
        chosen = next((s.id for s in self._agents.values() if s.name == name), None)
        table = self.query_one(DataTable)
        if chosen is not None and chosen in table.rows:
            table.move_cursor(row=table.get_row_index(chosen))
        else:
            self._select_after_reload = name
        if title is not None and token is not None:
            self.app.push_screen(self._token_modal(title, name, token))

    def action_rotate(self) -> None:
        agent = self._selected()
        if agent is None:
            return
        modal = ConfirmModal(f"Rotate {agent.name}'s token?",
                             "Its current token stops working at once (a running gateway follows within a second). "
                             "The new token is shown once.", confirm="Rotate")
        self.app.push_screen(modal, lambda yes: self._rotate(agent.name) if yes else None)

    @work(thread=True, exit_on_error=False, group="agent-change")
    def _rotate(self, name: str) -> None:
        token = agent_service.rotate_token(self.ws, name)
        self.app.call_from_thread(self._changed, name, f"New token for {name}", token)

    def action_toggle(self) -> None:
        agent = self._selected()
        if agent is not None:
            self._set_enabled(agent.name, not agent.enabled)

    @work(thread=True, exit_on_error=False, group="agent-change")
    def _set_enabled(self, name: str, enabled: bool) -> None:
        agent_service.set_enabled(self.ws, name, enabled)
        self.app.call_from_thread(self._changed, name)
        self.notify(f"agent {name} {'enabled' if enabled else 'disabled'}")

    def action_remove(self) -> None:
        agent = self._selected()
        if agent is None:
            return
        grants = agent.toolboxes + agent.tool_grants
        modal = ConfirmModal(f"Remove agent {agent.name}?",
                             f"Deletes the agent, its token and its {grants} grant(s) ({agent.toolboxes} toolbox "
                             f"access, {agent.tool_grants} tool grant(s)). Clients using its token are refused.",
                             confirm="Remove")
        self.app.push_screen(modal, lambda yes: self._remove(agent.name) if yes else None)

    @work(thread=True, exit_on_error=False, group="agent-change")
    def _remove(self, name: str) -> None:
        removed = agent_service.remove_agent(self.ws, name)
        self.notify(f"agent {name} removed with {removed} grant(s)")
