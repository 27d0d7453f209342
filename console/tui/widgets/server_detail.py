"""The tabs under the Servers table: Logs, Stats, Tools and Config of the selected server.

Config shows what the server was started with. Plain env values are shown; secrets only
by name — their values stay in the vault and never reach the screen.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from rich.table import Table
from rich.text import Text
from textual.app import App, ComposeResult
from textual.containers import Vertical, VerticalScroll
from console.tui.widgets.tabs import SteppedTabs
from textual.widgets import Static, TabbedContent, TabPane

from mcp_types.version import MODERN_PROTOCOL_VERSIONS

from console.workspace import DISCOVERY_META
from console.tui.widgets.connection_format import connection_label
from console.tui.widgets.server_egress import ServerEgress, egress_summary
from console.tui.widgets.server_log import ServerLog
from console.tui.widgets.server_stats import ServerStats
from console.tui.widgets.trust_badge import muted, trust_text

if TYPE_CHECKING:
    from console.model import ServerInstance, ToolDef

TABS = ("logs", "stats", "tools", "config", "egress")


def config_table(app: App, server: ServerInstance) -> Table:
    spec = server.spec or {}
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column()
    grid.add_row("image", server.image or muted(app, "none yet"))
    grid.add_row("catalog", server.catalog_id or muted(app, "imported (own spec)"))
    grid.add_row("command", Text(" ".join(spec.get("command", [])) or "-"))
    grid.add_row("egress", Text(egress_summary(server)))
    grid.add_row("speaks", speaks(app, server))
    grid.add_row("may ask", Text(f"{', '.join(server.may_ask)} (of the agent whose call it serves)")
                 if server.may_ask else muted(app, "nothing of agents (tbx server allow … sampling|elicitation|roots)"))
    limits = server.limits
    grid.add_row("limits", f"{limits.cpus:g} CPU · {limits.memory_mb} MiB memory · {limits.pids} processes")
    env = Text()
    for name, value in sorted(server.env.items()):
        env.append(name, style="bold").append(f"={value}\n")
    env.rstrip()
    grid.add_row("env", env if env else muted(app, "none"))
    secrets = Text()
    for name in sorted(server.secret_refs):
        secrets.append(name, style="bold").append(" = ").append("•••••• (in the vault)\n", style="dim")
    secrets.rstrip()
    grid.add_row("secrets", secrets if secrets else muted(app, "none"))
    mounts = Text()
    for mount in server.mounts:
        mounts.append(f"{mount.source} → {mount.target} ({'read-only' if mount.read_only else 'read-write'})\n")
    mounts.rstrip()
    grid.add_row("mounts", mounts if mounts else muted(app, "none"))
    oauth = spec.get("oauth")
    if oauth:
        backend = getattr(app, "backend", None)
        bound = connection_label(backend.workspace if backend is not None else None, server.connection)
        grid.add_row("OAuth", Text(f"{oauth.get('provider')} ({', '.join(oauth.get('scopes', []))}) · {bound}"))
    grid.add_row("wanted", server.desired_state.value)
    return grid


def speaks(app: App, server: ServerInstance) -> Text:
    """The protocol the server spoke when last discovered, and who it says it is."""
    backend = getattr(app, "backend", None)
    found = backend.workspace.repos.meta.get(DISCOVERY_META + server.id) if backend is not None else None
    version = (found or {}).get("protocol_version")
    if not version:
        return muted(app, "not discovered yet")
    info = (found or {}).get("server_info") or {}
    said = Text(f"MCP {version}")
    if version in MODERN_PROTOCOL_VERSIONS:
        said.append(" only (each request carries its envelope; no session)", style="dim")
    if info.get("name"):
        said.append(f" · {info['name']} {info.get('version', '')}".rstrip())
    return said


def tools_table(app: App, tools: Sequence[ToolDef]) -> Table | Text:
    if not tools:
        return muted(app, "no tools discovered yet: they are listed when the server first starts")
    kinds = {t.name: ", ".join(dict.fromkeys(f.kind for f in t.findings)) for t in tools}
    grid = Table.grid(padding=(0, 2), expand=True)
    grid.add_column(no_wrap=True, width=10)
    grid.add_column(style="bold", no_wrap=True, min_width=max(len(name) for name in kinds))
    grid.add_column(no_wrap=True, min_width=max(len(k) for k in kinds.values()))
    grid.add_column(overflow="ellipsis", no_wrap=True, ratio=1)
    for tool in sorted(tools, key=lambda t: t.name):
        findings = kinds[tool.name]
        first_line = (tool.description or "").strip().splitlines()[0] if (tool.description or "").strip() else ""
        grid.add_row(trust_text(app, tool.trust.value), tool.name,
                     Text(findings, style=app.theme_variables.get("error", "red")) if findings else "",
                     Text(first_line))
    return grid


class ServerDetail(SteppedTabs, Vertical):
    TAB_IDS = TABS

    DEFAULT_CSS = """
    ServerDetail { height: 1fr; }
    ServerDetail TabbedContent { height: 1fr; }
    ServerDetail TabPane { padding: 0; height: 1fr; }
    ServerDetail VerticalScroll { height: 1fr; padding: 0 1; }
    """

    def compose(self) -> ComposeResult:
        with TabbedContent(initial="logs"):
            with TabPane("Logs", id="logs"):
                yield ServerLog()
            with TabPane("Stats", id="stats"):
                yield ServerStats()
            with TabPane("Tools", id="tools"), VerticalScroll():
                yield Static("", id="tools-list")
            with TabPane("Config", id="config"), VerticalScroll():
                yield Static("", id="config-text")
            with TabPane("Egress", id="egress"):
                yield ServerEgress()


    def show_vault(self, server: ServerInstance | None, tools: Sequence[ToolDef]) -> None:
        """What the vault says of the server: its tools and its configuration (redrawn
        only when that changed: the screen calls this on every refresh)."""
        shown = (server, list(tools))
        if shown == getattr(self, "_shown", None):
            return
        self._shown = shown
        app = self.app
        self.query_one("#tools-list", Static).update(
            tools_table(app, tools) if server else muted(app, "no server selected"))
        self.query_one("#config-text", Static).update(
            config_table(app, server) if server else muted(app, "no server selected"))

    @property
    def server_log(self) -> ServerLog:
        return self.query_one(ServerLog)

    @property
    def server_stats(self) -> ServerStats:
        return self.query_one(ServerStats)

    @property
    def server_egress(self) -> ServerEgress:
        return self.query_one(ServerEgress)
