"""Toolboxes with remote ones (a droplet, an SSH host) at 120x36, fixed data, nothing live.

Regenerate after an intended change with:
pytest tests/tui/test_snapshots_toolboxes_remote.py --snapshot-update
"""

from __future__ import annotations

from console.remote.droplets import RegionInfo, SizeInfo
from console.tui.backend import Backend
from console.tui.modals.add_toolbox import AddToolboxModal
from console.tui.widgets.toolbox_droplet_form import DropletOptions
from tests.support.do_sim import REGIONS, SIZES
from tests.support.remote_seed import seed_orphan, seed_remote
from tests.support.tui import still_app

SIZE = (120, 36)


async def settled(pilot) -> None:  # noqa: ANN001
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()


def options() -> DropletOptions:
    """The simulator's regions and sizes, as the API client reads them."""
    return DropletOptions(
        [RegionInfo(r["slug"], r["name"], r["available"], tuple(r["sizes"])) for r in REGIONS],
        [SizeInfo(s["slug"], s["vcpus"], s["memory"], s["disk"], s["price_monthly"], tuple(s["regions"]),
                  s["available"]) for s in SIZES])


def test_toolboxes_with_a_droplet_and_an_ssh_host(snap_compare, seeded: Backend) -> None:  # noqa: ANN001
    seed_remote(seeded.workspace)
    assert snap_compare(still_app(seeded), terminal_size=SIZE)


def test_removing_a_droplet_says_it_is_destroyed(snap_compare, seeded: Backend) -> None:  # noqa: ANN001
    seed_remote(seeded.workspace)
    assert snap_compare(still_app(seeded), terminal_size=SIZE, press=["d"])


def test_add_a_droplet_with_region_size_and_price(snap_compare, seeded: Backend) -> None:  # noqa: ANN001
    async def open_dialog(pilot) -> None:  # noqa: ANN001
        modal = AddToolboxModal(taken=lambda _name: False, needs_token=False, kind="droplet", options=options(),
                                name="cloud")
        await settled(pilot)  # the screen under the dialog shows through it: its data first
        await pilot.app.push_screen(modal)
        await pilot.pause()

    assert snap_compare(still_app(seeded), terminal_size=SIZE, run_before=open_dialog)


def test_add_an_ssh_host_asks_for_the_token_nowhere(snap_compare, seeded: Backend) -> None:  # noqa: ANN001
    async def open_dialog(pilot) -> None:  # noqa: ANN001
        modal = AddToolboxModal(taken=lambda _name: False, needs_token=True, kind="ssh", name="edge")
        await settled(pilot)  # the screen under the dialog shows through it: its data first
        await pilot.app.push_screen(modal)
        await pilot.pause()

    assert snap_compare(still_app(seeded), terminal_size=SIZE, run_before=open_dialog)


def test_a_revoke_that_did_not_land_is_red(snap_compare, seeded: Backend) -> None:  # noqa: ANN001
    """The SSH host was unreachable when a revoke was made: its row and detail say so."""
    import time

    from console.remote.push_state import PushState, mirror_root

    seed_remote(seeded.workspace)
    edge = seeded.workspace.repos.toolboxes.require("edge")
    PushState(wanted="b" * 64, installed="a" * 64, wanted_access=["x"], installed_access=["x", "y"],
              error="cannot reach SSH at deploy@edge.example.org:2222: connection refused",
              failed_at=time.mktime((2026, 12, 6, 9, 30, 0, 0, 0, -1))).write(mirror_root(seeded.workspace, edge))
    assert snap_compare(still_app(seeded), terminal_size=SIZE, press=["down"])


def test_a_droplet_no_toolbox_owns_is_red_with_its_price(snap_compare, seeded: Backend) -> None:  # noqa: ANN001
    seed_remote(seeded.workspace)
    seed_orphan(seeded.workspace)
    assert snap_compare(still_app(seeded), terminal_size=SIZE, press=["end"])
