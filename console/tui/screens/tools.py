"""3 Tools: every item the servers of one toolbox offer (tools, resources, resource
templates, prompts), its kind, trust state and findings.

Nothing here is live: items are what discovery recorded in the vault. Approving runs in
a worker and names, in its confirmation, every finding it accepts.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import ClassVar

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.widgets import DataTable, Input, Static

from console.model import ServerInstance, ToolDef, Trust
from console.services.items import KIND_ORDER, item_order, plural
from console.tui.modals.confirm import ConfirmModal
from console.tui.screens.base import ConsoleScreen
from console.tui.widgets.filter import FilterInput
from console.tui.widgets.footer import ConsoleFooter
from console.tui.widgets.header import ConsoleHeader
from console.tui.widgets.fit_table import Col, Cut, FitTable
from console.tui.widgets.tool_detail import ToolDetail
from console.tui.widgets.trust_badge import colour, kind_text, trust_text

COLUMNS = (Col("tool", "ITEM", least=24, yields=3), Col("kind", "KIND", 8), Col("trust", "TRUST", 11),
           Col("findings", "FINDINGS", least=14, yields=2),
           Col("description", "DESCRIPTION", least=20, yields=4, drop=True))
"""Names, findings and descriptions as wide as they are, as long as the screen has room;
on a narrower one the description is cut first, then long names and findings, and on a
narrow one the description goes (the detail below has them all whole)."""


def first_line(text: str | None) -> str:
    lines = (text or "").strip().splitlines()
    return lines[0] if lines else ""


class ToolsScreen(ConsoleScreen):
    CSS = """
    ToolsScreen #tools { height: 4; max-height: 45%; }
    ToolsScreen #title { height: 1; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("a", "approve", "Approve", id="tools.approve",
                tooltip="Approve the selected item, accepting the findings it names"),
        Binding("A", "approve_all", "Approve clean", id="tools.approve_all",
                tooltip="Approve every item of the selected server (of every kind) that has no findings"),
        Binding("u", "unapprove", "Unapprove", id="tools.unapprove", show=False,
                tooltip="Take back the selected item's approval: hidden from agents until approved again (asks first)"),
        Binding("b", "block", "Block", id="tools.block",
                tooltip="Block the selected item whatever its grants say, or unblock it (blocking asks first)"),
        Binding("c", "show_changed", "Changed", id="tools.changed", tooltip="Show only items whose definition changed"),
        Binding("t", "pick_toolbox", "Toolbox", id="tools.toolbox", tooltip="Show another toolbox's items"),
    ]
    PALETTE: ClassVar[list[tuple[str, str]]] = [
        ("tools: Approve", "approve"), ("tools: Approve all clean", "approve_all"),
        ("tools: Show changed", "show_changed"), ("tools: Pick toolbox", "pick_toolbox"),
        ("tools: Take back approval", "unapprove"), ("tools: Block/unblock", "block"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.servers: dict[str, ServerInstance] = {}
        self.tools: dict[str, ToolDef] = {}
        """Every item of the toolbox, by vault key."""
        self._shown: dict[str, tuple] = {}
        self._order: dict[tuple[str, str], tuple[str, int, str]] = {}
        """(shown label, kind) -> where the row sorts: by server, then kind, then name."""
        self._built: dict[str, tuple[str, tuple, str]] = {}
        """Vault key -> (theme, row, what a filter searches) as built since the last read: a
        filter typed over 2,000 items builds none of them again."""

    def compose(self) -> ComposeResult:
        yield ConsoleHeader("tools")
        with Vertical():
            yield FilterInput("filter: a name, a kind (prompt, resource...), a trust state (changed, pending...) "
                              "or a finding kind", id="filter")
            yield Static("", id="title", classes="panel-title")
            yield FitTable(COLUMNS, id="tools", cursor_type="row", zebra_stripes=True)
            yield ToolDetail()
        yield ConsoleFooter()

    def on_mount(self) -> None:
        self.watch(self.console, "toolbox_name", lambda _name: self.reload(), init=False)
        super().on_mount()

    # -- reading ---------------------------------------------------------------------------

    def reload(self) -> None:
        ws = self.ws
        box = ws.repos.toolboxes.by_name(self.console.toolbox_name)
        self.servers = {s.id: s for s in ws.repos.servers.in_toolbox(box.id)} if box else {}
        ids = set(self.servers)
        self.tools = {t.key: t for t in ws.repos.tools.where(lambda doc: doc["server"] in ids)}
        self._built = {}
        self._render_rows()
        counts: dict[str, int] = {}
        for tool in self.tools.values():
            counts[tool.trust.value] = counts.get(tool.trust.value, 0) + 1
        summary = ", ".join(f"{n} {state}" for state, n in sorted(counts.items()))
        name = self.console.toolbox_name
        self.query_one("#title", Static).update(
            f"no toolbox named {name}: press t to pick one" if box is None else
            f"toolbox {name} · {plural(t.ref for t in self.tools.values())}: {summary}" if self.tools else
            f"toolbox {name} has no tools, resources or prompts yet: they are discovered when a server starts "
            f"(Servers, 2)")
        self._show_selected()

    def label(self, tool: ToolDef) -> str:
        """``server/name``: the kind is a column of its own."""
        return f"{self.servers[tool.server].name}/{tool.name}"

    def target(self, tool: ToolDef) -> str:
        """What ``tbx`` takes for the item: ``toolbox/server/ref``."""
        return f"{self.console.toolbox_name}/{self.servers[tool.server].name}/{tool.ref}"

    def _matches(self, key: str, tool: ToolDef, words: list[str]) -> bool:
        haystack = self._built_row(key, tool)[2]
        return all(word in haystack for word in words)

    def _built_row(self, key: str, tool: ToolDef) -> tuple[str, tuple, str]:
        theme = self.app.theme
        built = self._built.get(key)
        if built is None or built[0] != theme:
            haystack = (f"{self.label(tool)} {tool.kind.value} {tool.trust.value} "
                        f"{' '.join(f.kind for f in tool.findings)}").lower()
            built = self._built[key] = (theme, self._row(tool), haystack)
        return built

    def _row(self, tool: ToolDef) -> tuple:
        app = self.app
        kinds = ", ".join(dict.fromkeys(f.kind for f in tool.findings))
        worst = "high" if any(f.severity == "high" for f in tool.findings) else "medium"
        findings = Cut(kinds, colour(app, "error" if worst == "high" else "warning"), where="end") if kinds else "-"
        label = self.label(tool)
        self._order[(label, tool.kind.value)] = self._place(tool)
        return (Cut(label), kind_text(app, tool.kind.value), trust_text(app, tool.trust.value), findings,
                Cut(first_line(tool.description or tool.title), where="end"))

    def _place(self, tool: ToolDef) -> tuple[str, int, str]:
        """Where the item's row goes: by server, then kind, then name."""
        return self.servers[tool.server].name, KIND_ORDER[tool.kind], tool.name

    def _render_rows(self) -> None:
        table = self.query_one("#tools", FitTable)
        table.settle()  # a fill still in flight first: the rows below are compared with all it adds
        words = self.query_one("#filter", Input).value.lower().split()
        matching = {key: tool for key, tool in self.tools.items() if not words or self._matches(key, tool, words)}
        if not self._shown:
            self._fill(table, matching)
            return
        rows = {key: self._built_row(key, tool)[1] for key, tool in matching.items()}
        keys = [col.key for col in COLUMNS]
        with self.app.batch_update():
            gone = [k for k in self._shown if k not in rows]
            table.remove_rows(gone)
            for key in gone:
                del self._shown[key]
            fresh = []
            for key, values in rows.items():
                old = self._shown.get(key)
                if old is None:
                    fresh.append((key, values))
                elif old != values:
                    for column, new, was in zip(keys, values, old, strict=True):
                        if new != was:
                            table.update_cell(key, column, new, update_width=True)
                self._shown[key] = values
            added = bool(table.append_rows(fresh))
            if added and table.row_count > 1:
                selected = self._selected_key()
                table.sort("tool", "kind", key=lambda cells: self._order.get((str(cells[0]), str(cells[1])), ()))
                if selected in self._shown:
                    table.move_cursor(row=table.get_row_index(selected), animate=False)
            table.styles.height = max(3, table.row_count + 1)

    def _fill(self, table: FitTable, tools: dict[str, ToolDef]) -> None:
        """Rows in an empty table, in their order, each built as the table takes it: a
        toolbox of 2,000 items shows the rows in view at once and the rest on the
        following turns of the event loop (a key pressed meanwhile goes first)."""
        def rows() -> Iterator[tuple[str, tuple]]:
            for key, tool in sorted(tools.items(), key=lambda item: self._place(item[1])):
                values = self._shown[key] = self._built_row(key, tool)[1]
                yield key, values

        with self.app.batch_update():
            table.fill(rows(), total=len(tools))
            if table.row_count:
                table.move_cursor(row=0, animate=False)
            table.styles.height = max(3, len(tools) + 1)

    def _selected_key(self) -> str | None:
        table = self.query_one(DataTable)
        if table.row_count == 0:
            return None
        return table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value

    @property
    def selected(self) -> ToolDef | None:
        key = self._selected_key()
        return self.tools.get(key) if key else None

    def _show_selected(self) -> None:
        tool = self.selected
        self.query_one(ToolDetail).show(self.label(tool) if tool else None, tool)

    def on_data_table_row_highlighted(self, _event: DataTable.RowHighlighted) -> None:
        self._show_selected()

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "filter":
            self._render_rows()
            self._show_selected()

    # -- actions ------------------------------------------------------------------------------

    def action_show_changed(self) -> None:
        search = self.query_one("#filter", FilterInput)
        search.value = "changed"
        search.add_class("shown")
        self.query_one(DataTable).focus()

    def action_pick_toolbox(self) -> None:
        from console.tui.modals.pick_toolbox import PickToolboxModal

        boxes = [(b.name, b.kind.value) for b in sorted(self.ws.repos.toolboxes, key=lambda b: b.name)]

        def chosen(name: str | None) -> None:
            if name:
                self.console.toolbox_name = name

        self.app.push_screen(PickToolboxModal(boxes, self.console.toolbox_name), chosen)

    def action_approve(self) -> None:
        from console.tui.modals.approve import ApproveModal

        tool = self.selected
        if tool is None:
            return
        if tool.exposable:
            self.notify(f"{self.target(tool)} is approved already")
            return
        modal = ApproveModal(self.target(tool), tool)
        server = self.servers[tool.server].name
        self.app.push_screen(modal, lambda yes: self._approve(server, tool.ref, modal.kinds) if yes else None)

    @work(thread=True, exit_on_error=False, group="tools-approve")
    def _approve(self, server: str, ref: str, kinds: list[str]) -> None:
        from console.services.tools import approve

        toolbox = self.console.toolbox_name
        approve(self.ws, toolbox, server, ref, accept=kinds)
        accepted = f" accepting {', '.join(kinds)}" if kinds else ""
        self.notify(f"{toolbox}/{server}/{ref} approved{accepted}")

    def action_approve_all(self) -> None:
        tool = self.selected
        if tool is None:
            return
        server = self.servers[tool.server]
        waiting = sorted((t for t in self.tools.values() if t.server == server.id and not t.exposable
                          and t.trust is not Trust.BLOCKED), key=item_order)  # a block is lifted by name only
        clean = [t.ref + (" (changed)" if t.previous is not None else "") for t in waiting if not t.findings]
        flagged = [t.ref for t in waiting if t.findings]
        if not clean:
            more = f"; {', '.join(flagged)} have findings: approve each with a" if flagged else ""
            self.notify(f"{server.name} has nothing clean waiting for approval{more}", severity="warning")
            return
        count = plural(t.ref for t in waiting if not t.findings)
        body = f"Approves {count} without findings: {', '.join(clean)}."
        if flagged:
            body += f"\n\nSkips {', '.join(flagged)}: they have findings; review and approve each with a."
        modal = ConfirmModal(f"Approve the clean items of {server.name}?", body, confirm="Approve", danger=False)
        self.app.push_screen(modal, lambda yes: self._approve_all(server.name) if yes else None)

    @work(thread=True, exit_on_error=False, group="tools-approve")
    def _approve_all(self, server: str) -> None:
        from console.services.tools import approve

        toolbox = self.console.toolbox_name
        result = approve(self.ws, toolbox, server)
        note = f"{toolbox}/{server}: approved {plural(result.approved)}"
        if result.skipped:
            note += "; skipped " + "; ".join(f"{name} ({', '.join(kinds)})" for name, kinds in result.skipped.items())
        self.notify(note, severity="warning" if result.skipped else "information", timeout=10)

    # -- taking access back ---------------------------------------------------------------

    def _losers(self, tool: ToolDef) -> str:
        """Who loses the item: the agents holding a grant to it (or to its server's ``*``)."""
        from console.services.grants import agent_list, grant_holders

        names = grant_holders(self.ws.repos, tool.server, tool.ref)
        if not names:
            return "No agent holds a grant to it"
        one = len(names) == 1
        if not tool.exposable:  # not approved now: nobody has it to lose
            return f"{agent_list(names)} {'holds a grant' if one else 'hold grants'} to it, kept"
        return f"{agent_list(names)} {'loses' if one else 'lose'} it at once; {'its grant is' if one else 'their grants are'} kept"

    def action_unapprove(self) -> None:
        tool = self.selected
        if tool is None:
            return
        if tool.trust is not Trust.APPROVED and tool.approved_pin is None:
            self.notify(f"{self.target(tool)} is not approved ({tool.trust.value}): nothing to take back")
            return
        modal = ConfirmModal(f"Take back the approval of {self.target(tool)}?",
                             f"It goes back to pending, hidden from every agent until approved again (a). "
                             f"{self._losers(tool)}.", confirm="Unapprove")
        server = self.servers[tool.server].name
        self.app.push_screen(modal, lambda yes: self._set_trust("unapprove", server, tool.ref) if yes else None)

    def action_block(self) -> None:
        tool = self.selected
        if tool is None:
            return
        server = self.servers[tool.server].name
        if tool.trust is Trust.BLOCKED:
            self._set_trust("unblock", server, tool.ref)
            return
        modal = ConfirmModal(f"Block {self.target(tool)}?",
                             f"No agent sees or calls it, whatever its grants say, and it stays blocked when "
                             f"the server is rediscovered or changes it, until you approve it again (a) or "
                             f"unblock it (b). {self._losers(tool)}.", confirm="Block")
        self.app.push_screen(modal, lambda yes: self._set_trust("block", server, tool.ref) if yes else None)

    @work(thread=True, exit_on_error=False, group="tools-approve")
    def _set_trust(self, verb: str, server: str, ref: str) -> None:
        from console.services.tools import block, unapprove

        toolbox = self.console.toolbox_name
        if verb == "unapprove":
            changed = unapprove(self.ws, toolbox, server, ref)
        else:
            changed = block(self.ws, toolbox, server, ref, blocked=verb == "block")
        said = {"unapprove": "approval taken back: pending", "block": "blocked",
                "unblock": "unblocked: pending approval (a)"}[verb]
        self.notify(f"{toolbox}/{server}/{ref} {said}" if changed else
                    f"{toolbox}/{server}/{ref} was {said.split(':')[0]} already")
