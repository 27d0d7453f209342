"""The Connections screen: the list, and sign-in, refresh, removal and app registration
against a real local OAuth provider (authlib) with headless Chromium as the browser."""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Iterator

import pytest
from rich.console import Console
from textual.pilot import Pilot
from textual.widgets import DataTable, Input, Log, RadioButton, Select, Static

from console.model import Connection
from console.services import connections as svc
from console.services.connection_tokens import token_set
from console.tui.app import ConsoleApp
from console.tui.backend import Backend
from console.tui.modals.confirm import ConfirmModal
from console.tui.modals.connect import ConnectModal
from console.tui.modals.oauth_app import OAuthAppModal
from console.tui.screens.connections import ConnectionsScreen
from console.tui.widgets.connection_code import DeviceCode
from console.workspace import Workspace
from tests.support.browser import HeadlessChromium
from tests.support.connections_seed import seed_connections
from tests.support.oauth_provider import LocalOAuthProvider
from tests.support.tui import WHEN, still_app

SIZE = (120, 36)
SECRET = "client-secret-canary-7f3a"
SCOPES = ["repo", "read:user", "channels:read", "chat:write"]


@pytest.fixture(scope="module")
def provider() -> Iterator[LocalOAuthProvider]:
    with LocalOAuthProvider() as p:
        p.register_client("github-app", SECRET, SCOPES)
        p.register_client("slack-app", SECRET, SCOPES)
        yield p


@pytest.fixture(autouse=True)
def _reset(provider: LocalOAuthProvider) -> None:
    provider.user, provider.consent, provider.down = "alice@example.test", "approve", False
    provider.requests.clear()



def github_app(ws: Workspace, provider: LocalOAuthProvider) -> None:
    svc.set_app(ws, "github", "github-app", SECRET,
                hosts={"web": f"{provider.base}/github", "api": f"{provider.base}/github/api"})


def connect_by_device(ws: Workspace, provider: LocalOAuthProvider) -> Connection:
    """A real GitHub connection, approved as soon as the code is shown."""
    connection, _new = svc.add_connection(ws, "github", None, svc.SignIn(
        device=True, show_code=lambda grant: provider.approve_device(grant.user_code)))
    return connection


async def until(pilot: Pilot, check: Callable[[], object], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {seconds:g} s for {what}")
        await pilot.pause(0.05)


async def open_connections(pilot: Pilot, clock: Callable[[], object] | None = None) -> ConnectionsScreen:
    await pilot.press("8")
    await pilot.pause()
    screen = pilot.app.screen
    assert isinstance(screen, ConnectionsScreen)
    if clock is not None:
        screen.clock = clock  # type: ignore[assignment]
        screen.reload()
    return screen


def rows(screen: ConnectionsScreen) -> list[list[str]]:
    table = screen.query_one(DataTable)
    return [[str(cell) for cell in table.get_row_at(i)] for i in range(table.row_count)]


def text_of(screen: ConnectionsScreen, selector: str) -> str:
    """A Static's content as plain text (wrapped at 100 columns)."""
    console = Console(width=100, file=io.StringIO(), record=True)
    console.print(screen.query_one(selector, Static).content)
    return console.export_text()


def notes(app: ConsoleApp) -> list[str]:
    return [n.message for n in app._notifications]


# -- the list -------------------------------------------------------------------------------------


async def test_the_list_shows_health_expiry_both_ways_and_the_servers(seeded: Backend) -> None:
    seed_connections(seeded.workspace)
    app = still_app(seeded)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_connections(pilot, lambda: WHEN)
        assert rows(screen) == [
            ["github", "alice", "repo read:user", "in 42m · 11-24 10:12", "ok", "lab/gh-issues +1"],
            ["github", "alice-work", "repo", "never", "ok", "-"],
            ["google", "bob@example.com", "drive.readonly openid…", "5m ago · 11-24 09:25", "expired", "-"],
            ["microsoft", "dave@contoso.example", "User.Read", "in 2d4h · 11-26 13:30", "refresh-failed", "-"],
            ["slack", "carol@acme", "channels:read chat:wr…", "in 3h05m · 11-24 12:35", "needs-consent", "-"],
        ]
        detail = text_of(screen, "#connection-text")
        assert "2026-11-24 10:12 UTC" in detail and "(in 42m)" in detail and "(18m ago)" in detail
        assert "lab/gh-issues" in detail and "local/github" in detail and "client id Iv1.8a61f9b3a7aba766" in detail
        apps = text_of(screen, "#apps-text")
        assert "github" in apps and "secret set" in apps and "gh-secret" not in apps

        await pilot.press("down", "down", "down", "down")
        await pilot.pause()
        detail = text_of(screen, "#connection-text")
        assert "needs-consent" in detail and "sign in again (R)" in detail
        assert "refused the refresh token" in detail  # the last error

        # A later clock: the expiry texts follow it.
        screen.clock = lambda: WHEN.replace(hour=10, minute=30)  # type: ignore[assignment]
        screen.reload()
        assert rows(screen)[0][3:5] == ["18m ago · 11-24 10:12", "expired"]

        await pilot.press("slash", *"drive")
        await pilot.pause()
        assert [r[1] for r in rows(screen)] == ["bob@example.com"]
        screen.query_one("#filter", Input).value = "nobody"
        await pilot.pause()
        assert rows(screen) == [] and "no connection matches" in text_of(screen, "#connection-text")


async def test_the_keys_have_ids_and_palette_commands(seeded: Backend) -> None:
    ids = {b.id for b in ConnectionsScreen.BINDINGS}  # type: ignore[union-attr]
    assert ids == {"connection.connect", "connection.refresh", "connection.reconnect", "connection.remove",
                   "connection.app"}
    assert all(b.tooltip for b in ConnectionsScreen.BINDINGS)  # type: ignore[union-attr]
    actions = {action for _title, action in ConnectionsScreen.PALETTE}
    assert actions == {"connect", "refresh_token", "reconnect", "remove", "app"}
    app = still_app(seeded)
    async with app.run_test(size=SIZE) as pilot:
        await open_connections(pilot)
        await pilot.press("question_mark")
        await pilot.pause()
        table = app.screen.query_one(DataTable)
        shown = {str(table.get_row_at(i)[2]) for i in range(table.row_count)}  # key, action, binding id
        assert {"connection.connect", "connection.reconnect", "connection.app"} <= shown


# -- signing in -----------------------------------------------------------------------------------


async def test_connect_with_the_browser_adds_the_account(seeded: Backend, provider: LocalOAuthProvider,
                                                         browser: HeadlessChromium) -> None:
    ws = seeded.workspace
    github_app(ws, provider)
    app = still_app(seeded)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_connections(pilot)
        screen.opener = browser
        await pilot.press("c")
        await pilot.pause()
        modal = app.screen
        assert isinstance(modal, ConnectModal)
        assert modal.query_one("#provider", Select).value == "github"
        assert modal.query_one("#scopes", Input).value == "repo"  # what the catalog's github server needs
        assert modal.query_one("#browser", RadioButton).value
        await pilot.press("ctrl+s")
        await until(pilot, lambda: app.screen is screen, 30, "the browser sign-in to finish")
        await pilot.pause()
        assert [r[:2] for r in rows(screen)] == [["github", "alice"]]
        assert rows(screen)[0][4] == "ok"
        assert "You can close this tab" in browser.wait()
        assert any("connected github/alice" in n for n in notes(app)), notes(app)
    [connection] = ws.repos.connections
    assert connection.account == "alice" and "repo" in connection.scopes
    assert provider.requests["code"] == 1


async def test_device_sign_in_shows_the_code_big_until_it_is_approved(seeded: Backend,
                                                                       provider: LocalOAuthProvider) -> None:
    ws = seeded.workspace
    github_app(ws, provider)
    app = still_app(seeded)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_connections(pilot)
        await pilot.press("c")
        await pilot.pause()
        modal = app.screen
        assert isinstance(modal, ConnectModal)
        await pilot.click("#device")
        await pilot.press("ctrl+s")
        await until(pilot, lambda: modal.grant is not None, 10, "the device code")
        assert modal.grant is not None
        code = modal.grant.user_code
        assert str(modal.query_one("#verify-url", Static).render()) == modal.grant.verification_uri
        shown = modal.query_one(DeviceCode)
        assert shown.code == code and "█" in str(shown.query_one("#big", Static).render())
        assert str(shown.query_one("#plain", Static).render()) == " ".join(code)
        provider.approve_device(code)
        await until(pilot, lambda: app.screen is screen, 15, "the device sign-in to finish")
        assert [r[:2] for r in rows(screen)] == [["github", "alice"]]
    assert provider.requests["device_code"] == 1


async def test_a_declined_sign_in_is_a_notification_and_the_modal_stays(
        seeded: Backend, provider: LocalOAuthProvider, browser: HeadlessChromium) -> None:
    github_app(seeded.workspace, provider)
    provider.consent = "deny"
    app = still_app(seeded)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_connections(pilot)
        screen.opener = browser
        await pilot.press("c")
        await pilot.pause()
        modal = app.screen
        await pilot.press("ctrl+s")
        await until(pilot, lambda: "declined" in str(modal.query_one("#problem", Static).render()), 30,
                    "the refusal")
        assert app.screen is modal and not modal.has_class("waiting")
        assert any("sign-in was declined; nothing was saved" in n for n in notes(app))
    assert seeded.workspace.repos.connections.all() == []


async def test_closing_the_modal_abandons_the_sign_in_at_once(seeded: Backend, provider: LocalOAuthProvider) -> None:
    github_app(seeded.workspace, provider)
    app = still_app(seeded)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_connections(pilot)
        screen.opener = lambda _url: False  # no browser here: the address is shown to copy
        await pilot.press("c")
        await pilot.pause()
        modal = app.screen
        assert isinstance(modal, ConnectModal)
        await pilot.press("ctrl+s")
        await until(pilot, lambda: str(modal.query_one("#url", Static).render()).startswith(provider.base), 10,
                    "the sign-in address")
        assert "No browser could be opened" in str(modal.query_one("#browser-title", Static).render())
        started = time.monotonic()
        await pilot.press("escape")
        assert app.screen is screen
        await until(pilot, lambda: not [w for w in app.workers if w.group == "oauth-sign-in" and w.is_running],
                    5, "the abandoned sign-in to end")
        # the loopback listener was woken, not left to its 300 s time-out
        assert time.monotonic() - started < 5
        await pilot.pause(0.3)
        assert not notes(app)  # abandoning is not an error
    assert seeded.workspace.repos.connections.all() == []


async def test_providers_without_a_device_sign_in_offer_only_the_browser(
        seeded: Backend, provider: LocalOAuthProvider) -> None:
    ws = seeded.workspace
    github_app(ws, provider)
    svc.set_app(ws, "slack", "slack-app", SECRET, hosts={"web": f"{provider.base}/slack"})
    app = still_app(seeded)
    async with app.run_test(size=SIZE) as pilot:
        await open_connections(pilot)
        await pilot.press("c")
        await pilot.pause()
        modal = app.screen
        assert isinstance(modal, ConnectModal)
        assert not modal.query_one("#device", RadioButton).disabled
        modal.query_one("#provider", Select).value = "slack"
        await pilot.pause()
        assert modal.query_one("#device", RadioButton).disabled
        assert modal.query_one("#browser", RadioButton).value
        assert "channels:history" in modal.query_one("#scopes", Input).value  # the catalog's slack server needs it


async def test_connect_without_an_app_registration_asks_for_one_first(seeded: Backend) -> None:
    app = still_app(seeded)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_connections(pilot)
        assert "register your OAuth app" in text_of(screen, "#connection-text")
        await pilot.press("c")
        await pilot.pause()
        assert isinstance(app.screen, OAuthAppModal)
        assert any("first register your OAuth app" in n for n in notes(app))


# -- refresh, reconnect, remove -------------------------------------------------------------------


async def test_refresh_gets_a_new_token_and_says_so(seeded: Backend, provider: LocalOAuthProvider) -> None:
    ws = seeded.workspace
    github_app(ws, provider)
    connection = connect_by_device(ws, provider)
    before = token_set(ws, connection)
    app = still_app(seeded)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_connections(pilot)
        await pilot.press("r")
        await until(pilot, lambda: any("new token for github/alice" in n for n in notes(app)), 10, "the refresh")
        activity = "\n".join(screen.query_one("#activity", Log).lines)
        assert "github/alice: asking GitHub for a new token" in activity
    after = token_set(ws, svc.resolve(ws, connection.id))
    assert after.access_token != before.access_token
    assert provider.requests["refresh"] == 1


async def test_remove_confirms_then_revokes_at_the_provider(seeded: Backend, provider: LocalOAuthProvider) -> None:
    ws = seeded.workspace
    github_app(ws, provider)
    connect_by_device(ws, provider)
    app = still_app(seeded)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_connections(pilot)
        await pilot.press("d")
        await pilot.pause()
        confirm = app.screen
        assert isinstance(confirm, ConfirmModal)
        assert "No server uses it" in confirm.body and "Revokes its tokens at GitHub" in confirm.body
        await pilot.press("n")
        await pilot.pause()
        assert rows(screen) and provider.requests["revoke"] == 0
        await pilot.press("delete", "y")
        await until(pilot, lambda: not rows(screen), 10, "the connection to go")
        assert any("revoked and removed github/alice" in n for n in notes(app))
    assert ws.repos.connections.all() == [] and provider.requests["revoke"] == 1


async def test_remove_names_the_servers_using_it_and_the_service_refuses(seeded: Backend) -> None:
    ids = seed_connections(seeded.workspace)
    app = still_app(seeded)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_connections(pilot, lambda: WHEN)
        await pilot.press("d")
        await pilot.pause()
        confirm = app.screen
        assert isinstance(confirm, ConfirmModal)
        assert "lab/gh-issues, local/github" in confirm.body
        await pilot.press("y")
        await until(pilot, lambda: any("servers gh-issues, github use github/alice; remove them first" in n
                                       for n in notes(app)), 5, "the refusal")
        assert len(rows(screen)) == 5
    assert seeded.workspace.repos.connections.get(ids["github/alice"]) is not None


async def test_reconnect_signs_in_again_as_the_same_account(seeded: Backend, provider: LocalOAuthProvider) -> None:
    ws = seeded.workspace
    github_app(ws, provider)
    connection = connect_by_device(ws, provider)
    app = still_app(seeded)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_connections(pilot)
        await pilot.press("R")
        await pilot.pause()
        modal = app.screen
        assert isinstance(modal, ConnectModal) and modal.reconnecting is not None
        await pilot.click("#device")
        await pilot.press("ctrl+s")
        await until(pilot, lambda: modal.grant is not None, 10, "the device code")
        assert modal.grant is not None
        provider.approve_device(modal.grant.user_code)
        await until(pilot, lambda: app.screen is screen, 15, "the sign-in")
        await pilot.pause()
        assert any("signed in again as github/alice" in n for n in notes(app))
    assert [c.id for c in ws.repos.connections] == [connection.id]
