"""The OAuth app registration modal (a on Connections): per-provider fields, validation
before anything is saved, the secret typed masked and kept when a registration is replaced."""

from __future__ import annotations

import io

from rich.console import Console
from textual.pilot import Pilot
from textual.widgets import Input, Select, Static

from console.tui.backend import Backend
from console.tui.modals.oauth_app import OAuthAppModal
from console.tui.screens.connections import ConnectionsScreen
from tests.support.connections_seed import NOWHERE
from tests.support.tui import still_app

SIZE = (120, 36)
SECRET = "client-secret-canary-5d21"


async def open_connections(pilot: Pilot) -> ConnectionsScreen:
    await pilot.press("8")
    await pilot.pause()
    assert isinstance(pilot.app.screen, ConnectionsScreen)
    return pilot.app.screen


def text_of(screen: ConnectionsScreen, selector: str) -> str:
    console = Console(width=100, file=io.StringIO(), record=True)
    console.print(screen.query_one(selector, Static).content)
    return console.export_text()


async def test_the_app_modal_validates_then_saves_and_keeps_the_secret_on_replace(
        seeded: Backend) -> None:
    ws = seeded.workspace
    app = still_app(seeded)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_connections(pilot)
        await pilot.press("a")
        await pilot.pause()
        modal = app.screen
        assert isinstance(modal, OAuthAppModal)
        problem = modal.query_one("#problem", Static)
        assert modal.query_one("#client-secret", Input).password
        assert not modal.query_one("#tenant", Input).display and not modal.query_one("#issuer", Input).display
        await pilot.press("ctrl+s")
        assert "client id is empty" in str(problem.render())
        await pilot.press(*"github-app", "ctrl+s")
        assert "GitHub needs the app's client secret" in str(problem.render())
        assert modal.focused is modal.query_one("#client-secret", Input)
        await pilot.press(*SECRET)
        modal.query_one("#hosts", Input).value = "web=http://example.com"
        await pilot.press("ctrl+s")
        assert "must use https://" in str(problem.render())
        modal.query_one("#hosts", Input).value = f"web={NOWHERE}/github, api={NOWHERE}/github/api"
        assert SECRET not in "".join(str(w.render()) for w in modal.query(Static))
        await pilot.press("ctrl+s")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert app.screen is screen
        assert "client id github-app" in text_of(screen, "#apps-text")
        saved = ws.repos.oauth_apps.for_provider("github")
        assert saved is not None and saved.hosts["api"] == f"{NOWHERE}/github/api"
        assert ws.repos.secrets.get(saved.client_secret or "").value == SECRET  # type: ignore[union-attr]

        # Replacing it: prefilled, the secret left empty is kept.
        await pilot.press("a")
        await pilot.pause()
        modal = app.screen
        assert isinstance(modal, OAuthAppModal)
        assert modal.query_one("#client-id", Input).value == "github-app"
        assert "keep the secret" in modal.query_one("#client-secret", Input).placeholder
        modal.query_one("#client-id", Input).value = "github-app-2"
        await pilot.press("ctrl+s")
        await app.workers.wait_for_complete()
        await pilot.pause()
    replaced = ws.repos.oauth_apps.for_provider("github")
    assert replaced is not None and replaced.client_id == "github-app-2" and replaced.id == saved.id
    assert ws.repos.secrets.get(replaced.client_secret or "").value == SECRET  # type: ignore[union-attr]
    assert SECRET not in ws.paths.audit_log.read_text()


async def test_the_app_modal_asks_for_what_each_provider_needs(seeded: Backend) -> None:
    app = still_app(seeded)
    async with app.run_test(size=SIZE) as pilot:
        await open_connections(pilot)
        await pilot.press("a")
        await pilot.pause()
        modal = app.screen
        assert isinstance(modal, OAuthAppModal)
        modal.query_one("#provider", Select).value = "microsoft"
        await pilot.pause()
        assert modal.query_one("#tenant", Input).display and not modal.query_one("#issuer", Input).display
        modal.query_one("#client-id", Input).value = "ms-app"
        modal.query_one("#tenant", Input).value = "contoso"
        request = modal.collect()
        assert (request.provider, request.tenant, request.client_secret) == ("microsoft", "contoso", None)

        modal.query_one("#provider", Select).value = "oidc:"
        await pilot.pause()
        assert modal.query_one("#issuer", Input).display and modal.query_one("#oidc-name", Input).display
        modal.query_one("#client-id", Input).value = "corp-app"
        modal.query_one("#oidc-name", Input).value = "Corp!"
        await pilot.press("ctrl+s")
        assert "short name" in str(modal.query_one("#problem", Static).render())
        modal.query_one("#oidc-name", Input).value = "corp"
        await pilot.press("ctrl+s")
        assert "needs its issuer URL" in str(modal.query_one("#problem", Static).render())
        modal.query_one("#issuer", Input).value = "http://login.example.com"
        await pilot.press("ctrl+s")
        assert "must use https://" in str(modal.query_one("#problem", Static).render())
        modal.query_one("#issuer", Input).value = "https://login.example.com/realms/main"
        request = modal.collect()
        assert (request.provider, request.issuer) == ("oidc:corp", "https://login.example.com/realms/main")


async def test_the_app_modal_saves_the_client_authentication(seeded: Backend, tmp_path) -> None:  # noqa: ANN001
    """An OpenID Connect app is registered for one client authentication method: the modal
    asks which (secret field for the secret methods, a key file for private_key_jwt)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    from tests.support.oauth_provider import LocalOAuthProvider

    key_file = tmp_path / "app.pem"
    key_file.write_bytes(ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    ws = seeded.workspace
    app = still_app(seeded)
    with LocalOAuthProvider() as provider:
        async with app.run_test(size=SIZE) as pilot:
            screen = await open_connections(pilot)
            await pilot.press("a")
            await pilot.pause()
            modal = app.screen
            assert isinstance(modal, OAuthAppModal)
            assert not modal.query_one("#auth-method", Select).display  # built-in providers: fixed
            modal.query_one("#provider", Select).value = "oidc:"
            await pilot.pause()
            method = modal.query_one("#auth-method", Select)
            assert method.display and method.value == "auto"
            method.value = "private_key_jwt"
            await pilot.pause()
            assert modal.query_one("#private-key", Input).display and not modal.query_one("#client-secret", Input).display
            modal.query_one("#oidc-name", Input).value = "corp"
            modal.query_one("#issuer", Input).value = f"{provider.base}/oidc"
            modal.query_one("#client-id", Input).value = "corp-app"
            await pilot.press("ctrl+s")
            assert "needs the app's private key file" in str(modal.query_one("#problem", Static).render())
            modal.query_one("#private-key", Input).value = str(key_file)
            request = modal.collect()
            assert (request.auth_method, request.private_key_file, request.client_secret) == (
                "private_key_jwt", str(key_file), None)

            method.value = "client_secret_post"
            await pilot.pause()
            modal.query_one("#client-secret", Input).focus()
            await pilot.press(*SECRET, "ctrl+s")
            await app.workers.wait_for_complete()
            await pilot.pause()
            assert app.screen is screen
            assert "secret set · client_secret_post" in text_of(screen, "#apps-text")
    saved = ws.repos.oauth_apps.for_provider("oidc:corp")
    assert saved is not None and saved.auth_method == "client_secret_post" and saved.private_key is None
    assert ws.repos.secrets.get(saved.client_secret or "").value == SECRET  # type: ignore[union-attr]
