"""Live numbers never divide by zero: identical samples, a zero interval between two
samples, a container without a memory limit (issue 13, item 4)."""

from __future__ import annotations

import io

from rich.console import Console
from textual.app import App, ComposeResult
from textual.widgets import Sparkline, Static

from console.model import Limits, ServerInstance
from console.runtime.streams import Stats, parse_stats
from console.runtime.supervisor import Health
from console.tui.widgets.server_stats import ServerStats


def sample(cpu: int, pre_cpu: int, system: int, pre_system: int, usage: int = 50 << 20, limit: int = 256 << 20) -> dict:
    return {"cpu_stats": {"cpu_usage": {"total_usage": cpu}, "system_cpu_usage": system, "online_cpus": 2},
            "precpu_stats": {"cpu_usage": {"total_usage": pre_cpu}, "system_cpu_usage": pre_system},
            "memory_stats": {"usage": usage, "limit": limit, "stats": {"inactive_file": 0}},
            "pids_stats": {"current": 3}}


def test_identical_samples_and_zero_intervals_read_as_zero() -> None:
    assert parse_stats(sample(100, 100, 5000, 5000)).cpu_percent == 0.0  # identical samples
    assert parse_stats(sample(200, 100, 5000, 5000)).cpu_percent == 0.0  # no time between them
    assert parse_stats(sample(200, 0, 5000, 0)).cpu_percent > 0  # the first sample counts from zero
    assert parse_stats({}).cpu_percent == 0.0  # an empty sample (the container stopping)
    assert parse_stats(sample(200, 100, 6000, 5000)).cpu_percent == 20.0


def test_memory_share_without_a_limit_is_zero() -> None:
    assert Stats(1.0, 10 << 20, 0, 1).memory_percent == 0.0
    assert parse_stats(sample(1, 1, 1, 1, limit=0)).memory_percent == 0.0


class StatsApp(App[None]):
    def compose(self) -> ComposeResult:
        yield ServerStats()


def shown(widget: Static) -> str:
    console = Console(width=200, record=True, file=io.StringIO())
    console.print(widget.content)
    return console.export_text()


async def test_the_stats_tab_shows_flat_history_and_no_memory_limit() -> None:
    # model_construct: a record read as it is, bypassing validation (an older or edited vault)
    server = ServerInstance.model_construct(id="srv_1", toolbox="tbx_1", name="time",
                                            limits=Limits.model_construct(cpus=0.5, memory_mb=0, pids=64))
    health = Health("srv_1", "local/time", state="running", health="healthy", ping_ms=3.0)
    flat = [Stats(0.0, 40 << 20, 0, 3)] * 5  # identical samples: the charts' range is zero
    app = StatsApp()
    async with app.run_test(size=(100, 20)) as pilot:
        stats = app.query_one(ServerStats)
        stats.show(server, live=True, health=health, stats=flat[-1], history=flat)
        await pilot.pause()
        numbers = shown(app.query_one("#stats-numbers", Static))
        assert "40.0 MiB of 0 MiB" in numbers and "%" not in numbers.split("memory", 1)[1].splitlines()[0]
        assert app.query_one("#cpu-chart", Sparkline).data == [0.0] * 5
        assert "0.0 to 0.0 %" in str(app.query_one("#cpu-label", Static).render())
