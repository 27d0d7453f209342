"""The Servers table: one row per server, live columns updated in place by row key.

``ServerTable.sync`` compares every row with what it showed last and touches only the
cells that changed, inside ``app.batch_update()``: a refresh where nothing moved costs
a few dictionary look-ups, the cursor never moves and nothing flickers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from rich.text import Text
from textual.app import App

from console.tui.widgets.fit_table import Col, Cut, FitTable
from console.tui.widgets.trust_badge import health_text, muted

if TYPE_CHECKING:
    from console.model import ServerInstance
    from console.runtime.streams import Stats
    from console.runtime.supervisor import Health

COLUMNS: tuple[Col, ...] = (
    Col("server", "SERVER", least=10, yields=1), Col("state", "STATE", 10, least=7, yields=2),
    Col("health", "HEALTH", 12), Col("ping", "PING ms", 8, least=5, short="PING", yields=4),
    Col("restarts", "RESTARTS", 8, least=3, short="RST", yields=5), Col("cpu", "CPU %", 6, least=5, yields=3),
    Col("memory", "MEMORY", 9), Col("tools", "TOOLS", 7, least=5),
)
"""Live values have fixed widths (a refresh never moves a column); the name is as wide as
the longest. At 80 columns the restarts and ping columns give up room first."""

Cell = str | Text | Cut
Row = tuple[Cell, ...]


@dataclass(frozen=True)
class ToolCounts:
    approved: int = 0
    total: int = 0

    def __str__(self) -> str:
        return f"{self.approved}/{self.total}"


def memory_text(used: int) -> str:
    mib = used / (1024 * 1024)
    return f"{mib:.0f} MiB" if mib >= 100 else f"{mib:.1f} MiB"


def server_row(app: App, server: ServerInstance, counts: ToolCounts, *, live: bool, health: Health | None = None,
               stats: Stats | None = None, busy: str | None = None) -> Row:
    """The cells of one server. Without ``live`` only what the vault knows (the wanted
    state and tool counts); the live columns show ``-``."""
    dash = muted(app, "-")
    if not live:
        return (Cut(server.name), server.desired_state.value, dash, dash, dash, dash, dash, str(counts))
    remote = server.kind == "remote"  # no container: no Docker state, restarts, CPU or memory
    state = "remote" if remote else health.state if health is not None else "…"
    word = busy or (health.health if health is not None else "unknown")
    ping = f"{health.ping_ms:.1f}" if health is not None and health.ping_ms is not None else dash
    restarts = str(health.restarts) if health is not None and not remote else dash
    running = health is not None and health.state == "running"
    cpu = f"{stats.cpu_percent:.1f}" if stats is not None and running else dash
    memory = memory_text(stats.memory_bytes) if stats is not None and running else dash
    return (Cut(server.name), state, health_text(app, word), ping, restarts, cpu, memory, str(counts))


def add_phase(progress: str) -> str:
    """A short word for where an add is, from its latest progress line."""
    line = progress.lower()
    for words, phase in ((("ready",), "ready"), (("connecting",), "connecting"), (("creating container",), "creating"),
                         (("build", "pull", "download", "image", "up to date"), "image")):
        if any(word in line for word in words):
            return phase
    return "queued"


def pending_row(app: App, name: str, progress: str) -> Row:
    """A server being added: it has no record yet, only the add's latest progress line."""
    dash = muted(app, "-")
    return (Cut(name), Text("adding", style="italic"), health_text(app, add_phase(progress)), dash, dash, dash, dash, dash)


class ServerTable(FitTable):
    """Rows keyed by server id (``+name`` while a server is being added)."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(COLUMNS, cursor_type="row", zebra_stripes=True, **kwargs)
        self._shown: dict[str, Row] = {}

    @property
    def selected_key(self) -> str | None:
        if self.row_count == 0:
            return None
        return self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value

    def sync(self, rows: list[tuple[str, Row]]) -> int:
        """Show exactly ``rows`` (in name order); returns how many cells were written."""
        written = 0
        keep = {key for key, _ in rows}
        keys = [col.key for col in COLUMNS]
        added, first_fill = False, not self._shown
        with self.app.batch_update():
            for key in [k for k in self._shown if k not in keep]:
                self.remove_row(key)
                del self._shown[key]
            for key, values in rows:
                old = self._shown.get(key)
                if old is None:
                    self.add_row(*values, key=key)
                    added, written = True, written + len(values)
                elif old != values:
                    for column, new, was in zip(keys, values, old, strict=True):
                        if new != was:
                            self.update_cell(key, column, new)
                            written += 1
                self._shown[key] = values
            if self.styles.height is None or self.styles.height.value != max(2, self.row_count + 1):
                self.styles.height = max(2, self.row_count + 1)
            if added and self.row_count > 1:
                selected = self.selected_key
                self.sort("server", key=lambda name: str(name))
                row = self.get_row_index(selected) if selected in self._shown and not first_fill else 0
                self.move_cursor(row=row, animate=False)
        return written
