"""The Grants screen's one writer: toggles land in the order they were made, each cell shows
its change at once and follows the vault once its write lands, and a write that fails
(expectedly or not) leaves the writer to the next ones."""

from __future__ import annotations

import threading

import pytest

from console.errors import UsageError
from console.services import grants as grant_service
from console.tui.backend import Backend
from console.tui.modals.error import ErrorModal
from console.tui.screens.grants import GrantsScreen
from console.tui.widgets.grant_grid import Mark
from tests.support.tui import still_app
from tests.tui.test_grants_screen import mark, put, settle, tool_grant_keys

SIZE = (120, 36)
CELL = ("git/git_status", "cursor")


def held_first(monkeypatch: pytest.MonkeyPatch, verb: str, raising: Exception | None = None) -> threading.Event:
    """The first ``grant_service.<verb>`` call waits until the returned event is set (and
    then raises ``raising``, if given); the calls after it go straight through."""
    release, real = threading.Event(), getattr(grant_service, verb)
    calls: list[int] = []

    def held(*args: object, **kwargs: object) -> object:
        calls.append(1)
        if len(calls) == 1:
            assert release.wait(10), "the test never let the first write go"
            if raising is not None:
                raise raising
        return real(*args, **kwargs)

    monkeypatch.setattr(grant_service, verb, held)
    return release


async def toggle(app, pilot, path: str, agent: str) -> None:  # noqa: ANN001
    put(app, path, agent)
    await pilot.press("space")


async def writes_done(app, pilot) -> None:  # noqa: ANN001
    """``settle`` without raising what a write raised (the app shows that)."""
    for _ in range(100):
        if not [w for w in app.workers if w.group == "grant-write" and not w.is_finished]:
            await pilot.pause()
            return
        await pilot.pause(0.05)
    raise AssertionError("the writes never ended")


async def test_toggles_land_in_the_order_they_were_made(seeded: Backend, monkeypatch: pytest.MonkeyPatch) -> None:
    release = held_first(monkeypatch, "grant")
    app = still_app(seeded)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("4")
        await pilot.pause()
        await toggle(app, pilot, *CELL)  # grant: held
        await pilot.pause()
        assert mark(app, *CELL) is Mark.GRANTED  # shown at once
        await toggle(app, pilot, *CELL)  # revoke: made second, must land second
        await pilot.pause(0.3)
        assert mark(app, *CELL) is Mark.NONE
        assert "git/git_status" not in tool_grant_keys(seeded, "cursor")  # nothing landed yet
        release.set()
        await settle(app, pilot)
        await pilot.pause()
        # Granted, then revoked: in the vault as on the screen (the other order would leave a grant).
        assert "git/git_status" not in tool_grant_keys(seeded, "cursor")
        assert mark(app, *CELL) is Mark.NONE
        screen = app.screen
        assert isinstance(screen, GrantsScreen) and screen._pending == {}


async def test_the_cell_follows_the_vault_once_its_write_lands(seeded: Backend,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    release = held_first(monkeypatch, "grant")
    app = still_app(seeded)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("4")
        await pilot.pause()
        await toggle(app, pilot, *CELL)
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, GrantsScreen) and len(screen._pending) == 1
        # Another process revokes nothing and grants nothing here, but the screen re-reads:
        # the edit not written yet stays on top.
        screen.reload()
        assert mark(app, *CELL) is Mark.GRANTED
        release.set()
        await settle(app, pilot)
        assert screen._pending == {}
        assert "git/git_status" in tool_grant_keys(seeded, "cursor")
        assert mark(app, *CELL) is Mark.GRANTED  # now from the vault


@pytest.mark.parametrize("failure", [RuntimeError("a bug"), UsageError("a refused grant")],
                         ids=["unexpected", "refused"])
async def test_a_failed_write_is_shown_and_the_next_ones_still_land(seeded: Backend, monkeypatch: pytest.MonkeyPatch,
                                                                    failure: Exception) -> None:
    release = held_first(monkeypatch, "grant", raising=failure)
    other = ("files/read_text_file", "cursor")
    app = still_app(seeded)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("4")
        await pilot.pause()
        await toggle(app, pilot, *CELL)  # fails once let go
        await toggle(app, pilot, *other)  # queued behind it
        release.set()
        await writes_done(app, pilot)
        if isinstance(failure, RuntimeError):  # the traceback, as for any unexpected failure
            assert isinstance(app.screen, ErrorModal)
            await pilot.press("escape")
            await pilot.pause()
        else:
            assert any("a refused grant — the matrix shows the vault as it is" in n.message
                       for n in app._notifications)
        assert mark(app, *CELL) is Mark.NONE  # put back
        assert "git/git_status" not in tool_grant_keys(seeded, "cursor")
        assert "files/read_text_file" in tool_grant_keys(seeded, "cursor")
        assert mark(app, *other) is Mark.GRANTED
