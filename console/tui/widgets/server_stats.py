"""The Stats tab: a server's numbers now, and sparklines of its last minute of CPU and memory."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Sparkline, Static

from console.tui.widgets.server_table import memory_text
from console.tui.widgets.trust_badge import health_text, muted

if TYPE_CHECKING:
    from console.model import ServerInstance
    from console.runtime.streams import Stats
    from console.runtime.supervisor import Health


class ServerStats(Horizontal):
    DEFAULT_CSS = """
    ServerStats { height: 1fr; }
    ServerStats #stats-numbers { width: 52; padding: 0 1; }
    ServerStats #stats-charts { width: 1fr; padding: 0 1; }
    ServerStats .chart-label { height: 1; color: $text-muted; }
    ServerStats Sparkline { height: 3; margin-bottom: 1; }
    ServerStats #memory-chart > .sparkline--max-color { color: $secondary; }
    ServerStats #memory-chart > .sparkline--min-color { color: $secondary 30%; }
    """

    def compose(self) -> ComposeResult:
        yield Static("", id="stats-numbers")
        with Vertical(id="stats-charts"):
            yield Static("CPU %", id="cpu-label", classes="chart-label")
            yield Sparkline([], id="cpu-chart")
            yield Static("memory", id="memory-label", classes="chart-label")
            yield Sparkline([], id="memory-chart")

    def show(self, server: ServerInstance | None, *, live: bool, health: Health | None = None,
             stats: Stats | None = None, history: Sequence[Stats] = ()) -> None:
        app = self.app
        grid = Table.grid(padding=(0, 2))
        grid.add_column(style="bold", no_wrap=True)
        grid.add_column()
        cpu_data = [s.cpu_percent for s in history]
        memory_data = [s.memory_bytes / (1024 * 1024) for s in history]
        if server is None:
            grid.add_row("", muted(app, "no server selected"))
        else:
            limits = server.limits
            if not live:
                grid.add_row("wanted", server.desired_state.value)
                grid.add_row("limits", f"{limits.cpus:g} CPU · {limits.memory_mb} MiB · {limits.pids} processes")
                grid.add_row("", muted(app, "CPU, memory and health are read live from the engine"))
            else:
                running = health is not None and health.state == "running"
                grid.add_row("health", health_text(app, health.health) if health else muted(app, "unknown"))
                grid.add_row("state", health.state if health else "-")
                grid.add_row("ping", f"{health.ping_ms:.1f} ms" if health and health.ping_ms is not None else "-")
                grid.add_row("restarts", str(health.restarts) if health else "-")
                if stats is not None and running:
                    grid.add_row("CPU", f"{stats.cpu_percent:.1f} % of one core (limit {limits.cpus:g} CPU)")
                    limit = limits.memory_mb * 1048576  # a live number: never divide by a zero
                    share = f" ({100 * stats.memory_bytes / limit:.0f} %)" if limit > 0 else ""
                    grid.add_row("memory", f"{memory_text(stats.memory_bytes)} of {limits.memory_mb} MiB{share}")
                    grid.add_row("processes", f"{stats.pids} (limit {limits.pids})")
                else:
                    grid.add_row("CPU", "-")
                    grid.add_row("memory", f"- (limit {limits.memory_mb} MiB)")
                if health is not None and health.last_error:
                    grid.add_row("last error", Text(health.last_error, style=f"{app.theme_variables.get('error')}"))
        self.query_one("#stats-numbers", Static).update(grid)
        self.query_one("#cpu-chart", Sparkline).data = cpu_data
        self.query_one("#memory-chart", Sparkline).data = memory_data
        # The bars span the lowest to the highest sample: the labels say what that range is.
        self.query_one("#cpu-label", Static).update(
            f"CPU %   last {len(cpu_data)} s: {min(cpu_data):.1f} to {max(cpu_data):.1f} %" if cpu_data
            else "CPU %   no samples yet")
        self.query_one("#memory-label", Static).update(
            f"memory  last {len(memory_data)} s: {min(memory_data):.1f} to {max(memory_data):.1f} MiB"
            if memory_data else "memory  no samples yet")
