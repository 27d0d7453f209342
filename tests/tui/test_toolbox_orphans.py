"""Droplets no toolbox owns, in the console: found by the look at start (after the first
paint), shown in red on Toolboxes with their price, destroyed with d (retried while
DigitalOcean refuses), offered for adoption with enter. Against the DigitalOcean
simulator through the real client."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from textual.widgets import DataTable, Log

from console.model import Orphan, OrphanCause
from console.services import remote_toolboxes as remote
from console.services.droplet_orphans import home_id
from console.tui.app import ConsoleApp
from console.tui.backend import Backend
from console.tui.modals.confirm import ConfirmModal
from console.tui.modals.prompt import PromptModal
from console.tui.widgets.toolbox_detail import ToolboxDetail
from tests.support.do_sim import DigitalOceanSim, found_by_tbx
from tests.support.tui import until

SIZE = (120, 36)
TOKEN = "dop_v1_console_orphans_41d9"


@pytest.fixture
def sim(monkeypatch: pytest.MonkeyPatch) -> Iterator[DigitalOceanSim]:
    with found_by_tbx(monkeypatch, TOKEN) as s:
        yield s


def rows(app: ConsoleApp) -> list[str]:
    table = app.screen.query_one(DataTable)
    return [str(table.coordinate_to_cell_key((i, 0)).row_key.value) for i in range(table.row_count)]


def activity(app: ConsoleApp) -> str:
    return "\n".join(app.screen.query_one("#activity", Log).lines)


def select(app: ConsoleApp, key: str) -> None:
    table = app.screen.query_one(DataTable)
    table.move_cursor(row=table.get_row_index(key))


async def test_a_droplet_found_at_start_is_red_and_d_destroys_it_retrying(seeded: Backend, sim: DigitalOceanSim) -> None:
    ws = seeded.workspace
    remote.set_api_token(ws, TOKEN)
    lost = sim.create_raw(name="tbx-lost", tags=["tbx", f"tbx-home-{home_id(ws)}"])
    sim.locked.add(lost)  # another action holds it: DigitalOcean refuses to delete it for now
    key = f"orphan:{lost}"
    app = ConsoleApp(seeded)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: key in rows(app), 15, "the droplet found at start")
        assert rows(app)[-1] == key  # after the toolboxes
        assert any("tbx-lost" in n.message and "no toolbox owns it" in n.message and "$6.00/month" in n.message
                   for n in app._notifications)
        table = app.screen.query_one(DataTable)
        cells = [str(cell) for cell in table.get_row(key)]
        assert cells[:4] == ["tbx-lost", "orphan", "fra1 · $6.00/mo", "billed"]
        select(app, key)
        await pilot.pause()
        detail = str(app.screen.query_one(ToolboxDetail).render())
        assert f"{lost} · fra1 · s-1vcpu-1gb · $6.00/month" in detail and "enter: adopt" in detail

        await pilot.press("d")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmModal) and f"DESTROYS droplet {lost}" in app.screen.body
        await pilot.click("#yes")
        await until(pilot, lambda: "busy" in activity(app), 10, "the refused delete")
        assert ws.repos.orphans.get(str(lost)) is not None and lost in sim.droplets
        sim.locked.discard(lost)
        await until(pilot, lambda: "tbx-lost: destroyed" in activity(app), 20, "the retried delete")
        assert sim.refused_deletes >= 1 and sim.droplets == {}
        assert key not in rows(app) and ws.repos.orphans.all() == []
        assert any(n.message == "droplet tbx-lost destroyed" for n in app._notifications)
    ws.refresh()
    actions = [(r["action"], r["target"]) for r in ws.audit.records() if r["action"].startswith("droplet.")]
    assert actions == [("droplet.orphan", f"droplet:{lost}"), ("droplet.destroy", f"droplet:{lost}")]


async def test_enter_offers_to_adopt_and_asks_for_a_key_tbx_does_not_have(seeded: Backend, sim: DigitalOceanSim) -> None:
    ws = seeded.workspace
    with ws.change() as change:
        change.repos.orphans.put(Orphan(droplet_id=412345678, name="tbx-cloud", region="fra1", size="s-1vcpu-1gb",
                                        price_monthly=6.0, cause=OrphanCause.FOUND, toolbox="cloud"))
    app = ConsoleApp(seeded, live=False)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        select(app, "orphan:412345678")
        await pilot.press("enter")
        await pilot.pause()
        prompt = app.screen
        assert isinstance(prompt, PromptModal) and prompt.query_one("#value").value == "cloud"
        prompt.query_one("#value").value = "local"  # taken
        await pilot.click("#ok")
        assert "a toolbox named 'local' exists" in str(prompt.query_one("#problem").render())
        prompt.query_one("#value").value = "cloud"
        await pilot.pause(0.3)  # a button ignores a second press during its 0.2 s press effect
        await pilot.click("#ok")
        await until(pilot, lambda: app.screen is not prompt, 5, "the name accepted")
        assert isinstance(app.screen, PromptModal) and "tbx has no key for droplet 412345678" in app.screen.label
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, PromptModal) and ws.repos.orphans.get("412345678") is not None
        assert "adopting" not in activity(app)


async def test_enter_on_a_toolbox_opens_its_servers(seeded: Backend) -> None:
    """The table takes enter first (it selects the row): the screen acts on the selection."""
    app = ConsoleApp(seeded, live=False)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        select(app, "lab")
        await pilot.press("enter")
        await until(pilot, lambda: app.current_mode == "servers", 5, "the Servers screen")
        assert app.toolbox_name == "lab"
