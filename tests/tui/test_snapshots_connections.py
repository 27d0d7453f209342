"""The Connections screen and its modals at 120x36, nothing live, the clock fixed at the
seed's time (pytest-textual-snapshot).

Regenerate after an intended change with:
    pytest tests/tui/test_snapshots_connections.py --snapshot-update
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from textual.pilot import Pilot
from textual.widgets import Input

from console.oauth.client import DeviceGrant
from console.tui.backend import Backend
from console.tui.modals.connect import ConnectModal
from console.tui.screens.connections import ConnectionsScreen
from tests.support.connections_seed import seed_connections
from tests.support.tui import WHEN, still_app

SIZE = (120, 36)
SIGN_IN_URL = ("http://127.0.0.1:9/github/login/oauth/authorize?response_type=code&client_id=Iv1.8a61f9b3a7aba766"
               "&redirect_uri=http%3A%2F%2F127.0.0.1%3A40123%2Fcallback&scope=repo&state=Zk3q9s0dW1rT"
               "&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256")
GRANT = DeviceGrant(device_code="dc-fixed", user_code="WDJB-MJHT", verification_uri="https://github.com/login/device",
                    verification_uri_complete=None, interval=5, expires_in=900)


def on_connections(*pressed: str, then: Callable[[Pilot], None] | None = None) -> Callable[[Pilot], Awaitable[None]]:
    """Open Connections with the clock at the seed's time, press keys, then ``then``."""

    async def run(pilot: Pilot) -> None:
        await pilot.press("8")
        await pilot.pause()
        screen = pilot.app.screen
        assert isinstance(screen, ConnectionsScreen)
        screen.clock = lambda: WHEN  # type: ignore[assignment]
        screen.reload()
        await pilot.pause()
        await pilot.press(*pressed)
        await pilot.pause()
        if then is not None:
            then(pilot)
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()

    return run


def test_the_connections(snap_compare, seeded: Backend) -> None:  # noqa: ANN001
    seed_connections(seeded.workspace)
    assert snap_compare(still_app(seeded), terminal_size=SIZE, run_before=on_connections())


def test_a_connection_that_needs_consent(snap_compare, seeded: Backend) -> None:  # noqa: ANN001
    seed_connections(seeded.workspace)
    assert snap_compare(still_app(seeded), terminal_size=SIZE,
                        run_before=on_connections("down", "down", "down", "down"))


def test_no_connections_yet(snap_compare, seeded: Backend) -> None:  # noqa: ANN001
    assert snap_compare(still_app(seeded), terminal_size=SIZE, run_before=on_connections())


def test_the_connect_modal(snap_compare, seeded: Backend) -> None:  # noqa: ANN001
    seed_connections(seeded.workspace)
    assert snap_compare(still_app(seeded), terminal_size=SIZE, run_before=on_connections("c"))


def _waiting(device: bool) -> Callable[[Pilot], None]:
    def show(pilot: Pilot) -> None:
        modal = pilot.app.screen
        assert isinstance(modal, ConnectModal)
        modal.show_waiting(device)
        if device:
            modal.show_code(GRANT)
        else:
            modal.show_url(SIGN_IN_URL)

    return show


def test_waiting_for_the_browser(snap_compare, seeded: Backend) -> None:  # noqa: ANN001
    seed_connections(seeded.workspace)
    assert snap_compare(still_app(seeded), terminal_size=SIZE, run_before=on_connections("c", then=_waiting(False)))


def test_the_device_code_big(snap_compare, seeded: Backend) -> None:  # noqa: ANN001
    seed_connections(seeded.workspace)
    assert snap_compare(still_app(seeded), terminal_size=SIZE, run_before=on_connections("c", then=_waiting(True)))


def test_the_app_registration_modal(snap_compare, seeded: Backend) -> None:  # noqa: ANN001
    seed_connections(seeded.workspace)
    assert snap_compare(still_app(seeded), terminal_size=SIZE, run_before=on_connections("a"))


def test_removing_a_connection_in_use(snap_compare, seeded: Backend) -> None:  # noqa: ANN001
    seed_connections(seeded.workspace)
    assert snap_compare(still_app(seeded), terminal_size=SIZE, run_before=on_connections("d"))


def test_adding_a_server_with_a_connection(snap_compare, seeded: Backend) -> None:  # noqa: ANN001
    ws = seeded.workspace
    ids = seed_connections(ws)
    with ws.change() as change:  # the picker shows health by the real clock: no expiry, no drift
        alice = change.repos.connections.get(ids["github/alice"])
        assert alice is not None
        alice.expires = None
        change.repos.connections.put(alice)

    async def run(pilot: Pilot) -> None:
        await pilot.press("2")
        await pilot.pause()
        await pilot.press("a")
        await pilot.pause()
        pilot.app.screen.query_one("#search", Input).value = "github"
        await pilot.pause()
        await pilot.pause()
        pilot.app.screen.query_one("#connection").focus()  # scrolls the picker into view
        await pilot.pause()

    assert snap_compare(still_app(seeded), terminal_size=SIZE, run_before=run)
