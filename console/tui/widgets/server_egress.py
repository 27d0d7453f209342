"""The Egress tab under the Servers table: what the selected server may reach, and what
its gateway's proxy refused or let through lately (read from the audit log's tail in a
thread, again only when the log has grown)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.table import Table
from rich.text import Text
from textual import work
from textual.containers import VerticalScroll
from textual.widgets import Static

from console.tui.widgets.audit_tail import AuditTail
from console.tui.widgets.trust_badge import muted

if TYPE_CHECKING:
    from textual.app import ComposeResult

    from console.model import ServerInstance

RECENT = 4000
"""Audit records read from the log's end to find a server's egress records."""
SHOWN = 12


def egress_summary(server: ServerInstance) -> str:
    if server.kind == "remote":
        return "a remote server: the gateway calls its URL itself (no container, no proxy)"
    if server.network != "egress":
        return "none: no network, no proxy (e to give it hosts)"
    hosts = ", ".join(server.egress) or "no host: every attempt is refused and recorded"
    return f"{hosts}  (through the gateway's allow-list proxy)"


def egress_records(records: list[dict[str, Any]], label: str) -> list[dict[str, Any]]:
    target = f"server:{label}"
    return [r for r in records if str(r.get("action", "")).startswith("egress.") and r.get("target") == target]


def egress_table(records: list[dict[str, Any]]) -> Table:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(no_wrap=True, style="dim")
    grid.add_column(no_wrap=True)
    grid.add_column()
    for record in records[-SHOWN:][::-1]:
        detail = record.get("detail") or {}
        when = str(record.get("ts", ""))[:19].replace("T", " ")
        if record.get("action") == "egress.blocked" and "host" in detail:
            grid.add_row(when, Text("✗ blocked", style="bold red"),
                         Text(f"{detail.get('host')}:{detail.get('port')}  {detail.get('reason', '')}"))
        elif record.get("action") == "egress.blocked":
            grid.add_row(when, Text("✗ blocked", style="bold red"),
                         Text(f"{detail.get('total', '?')} more attempt(s): " + _counts(detail.get("counts"))))
        else:
            line = _counts(detail.get("counts"))
            if detail.get("failed"):
                line += "  · no answer from " + _counts(detail.get("failed"))
            grid.add_row(when, Text("✓ through", style="green"), Text(line))
    return grid


def _counts(counts: Any) -> str:
    if not isinstance(counts, dict):
        return ""
    return ", ".join(f"{where} ×{n}" for where, n in sorted(counts.items(), key=lambda kv: -int(kv[1] or 0))[:6])


class ServerEgress(VerticalScroll):
    DEFAULT_CSS = "ServerEgress { height: 1fr; padding: 0 1; }"

    def __init__(self) -> None:
        super().__init__()
        self._shown: tuple[str, str, tuple[str, ...], int] | None = None

    def compose(self) -> ComposeResult:
        yield Static("", id="egress-hosts-line")
        yield Static("", id="egress-records")

    def show(self, server: ServerInstance | None, label: str | None, audit_log: Path) -> None:
        if server is None or label is None:
            self.query_one("#egress-hosts-line", Static).update(muted(self.app, "no server selected"))
            self.query_one("#egress-records", Static).update("")
            self._shown = None
            return
        try:
            size = audit_log.stat().st_size
        except OSError:
            size = 0
        shown = (server.id, server.network, tuple(server.egress), size)
        if shown == self._shown:
            return
        self._shown = shown
        line = Text("may reach  ", style="bold").append(egress_summary(server))
        self.query_one("#egress-hosts-line", Static).update(line)
        self._load(label, audit_log)

    @work(thread=True, exclusive=True, exit_on_error=False, group="server-egress")
    def _load(self, label: str, audit_log: Path) -> None:
        found = egress_records(AuditTail(audit_log).load_tail(RECENT), label)
        self.app.call_from_thread(self._loaded, found)

    def _loaded(self, found: list[dict[str, Any]]) -> None:
        self.query_one("#egress-records", Static).update(
            egress_table(found) if found else muted(self.app, "nothing tried lately (the gateway records each "
                                                              "refused attempt, and counts those let through)"))
