"""Connections end to end: real authlib provider, real headless Chromium, the vault."""

from __future__ import annotations

import threading

import pytest

from console.errors import TbxError, UsageError
from console.model import ConnectionStatus
from console.oauth.client import ConsentDenied, ProviderUnavailable, StateMismatch
from console.oauth.tokens import TokenSet
from console.services import connections as svc
from console.services.connection_tokens import ConnectionNeedsConsent, TokenBroker, token_set
from console.workspace import Workspace
from tests.oauth.conftest import CLIENT_SECRET, register
from tests.support.browser import HeadlessChromium
from tests.support.oauth_provider import LocalOAuthProvider


def browser_sign_in(browser: HeadlessChromium, **extra: object) -> svc.SignIn:
    return svc.SignIn(opener=browser, timeout=30, **extra)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["github", "google", "microsoft", "slack"])
def test_browser_sign_in_per_provider(workspace: Workspace, provider: LocalOAuthProvider,
                                      browser: HeadlessChromium, name: str) -> None:
    shape = register(workspace, provider, name)
    connection, is_new = svc.add_connection(workspace, name, None, browser_sign_in(browser))
    assert is_new and connection.account == shape.account
    assert "You can close this tab" in browser.wait()
    tokens = token_set(workspace, connection)
    assert tokens.access_token in provider.live_access_tokens
    assert connection.status is ConnectionStatus.OK and connection.expires is not None
    if name == "github":
        assert tokens.access_token.startswith("gho_")
    if name == "slack":  # the nested user token, not a bot token
        assert tokens.access_token.startswith("xoxp-")
    # Nothing of the tokens in the audit log or the listing.
    audit = workspace.paths.audit_log.read_text()
    assert tokens.access_token not in audit and (tokens.refresh_token or "\0") not in audit
    assert tokens.access_token not in repr(svc.describe(connection))


def test_pkce_is_sent_and_required(workspace: Workspace, provider: LocalOAuthProvider, browser: HeadlessChromium) -> None:
    svc.set_app(workspace, "google", "public-app", None, hosts=register(workspace, provider, "google").hosts)
    seen: list[str] = []
    svc.add_connection(workspace, "google", None, browser_sign_in(browser, on_url=seen.append))
    assert "code_challenge_method=S256" in seen[0] and "code_challenge=" in seen[0]
    assert "state=" in seen[0] and "redirect_uri=http%3A%2F%2F127.0.0.1%3A" in seen[0]


def test_denied_consent_saves_nothing(workspace: Workspace, provider: LocalOAuthProvider,
                                      browser: HeadlessChromium) -> None:
    register(workspace, provider, "github")
    provider.consent = "deny"
    with pytest.raises(ConsentDenied, match="declined; nothing was saved"):
        svc.add_connection(workspace, "github", None, browser_sign_in(browser))
    assert workspace.repos.connections.all() == []
    assert "Sign-in cancelled" in browser.wait()


def test_wrong_state_is_refused(workspace: Workspace, provider: LocalOAuthProvider) -> None:
    """A callback that did not come from our sign-in (CSRF, a stale tab) ends it, unsaved."""
    import urllib.request

    register(workspace, provider, "github")

    def forged(url: str) -> bool:
        from urllib.parse import parse_qs, urlsplit

        redirect = parse_qs(urlsplit(url).query)["redirect_uri"][0]
        try:
            urllib.request.urlopen(f"{redirect}?code=stolen&state=not-ours", timeout=5)  # noqa: S310 - loopback
        except urllib.error.HTTPError as exc:
            assert exc.code == 400
        return True

    with pytest.raises(StateMismatch, match="state did not match"):
        svc.add_connection(workspace, "github", None, svc.SignIn(opener=forged, timeout=10))
    assert workspace.repos.connections.all() == []
    assert provider.requests["code"] == 0


def test_reused_code_is_refused(provider: LocalOAuthProvider, workspace: Workspace, browser: HeadlessChromium) -> None:
    from console.oauth.client import InvalidGrant
    from console.oauth.flows import LoopbackListener
    from console.services.connection_tokens import client_for

    register(workspace, provider, "google")
    client = client_for(workspace, svc.app_for(workspace, "google"))
    with LoopbackListener("s1") as listener:
        browser(client.authorization_url(listener.redirect_uri, ["openid"], "s1", "v" * 64))
        result = listener.wait(20)
        redirect = listener.redirect_uri
    assert result is not None and result.code
    client.exchange_code(result.code, redirect, "v" * 64)
    with pytest.raises(InvalidGrant, match="already used or expired"):
        client.exchange_code(result.code, redirect, "v" * 64)


def test_device_flow_honours_slow_down(workspace: Workspace, provider: LocalOAuthProvider) -> None:
    register(workspace, provider, "microsoft")
    provider.device_interval = 1
    shown, waits = [], []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        if len(waits) <= 2:
            return  # two polls back to back: too fast, the provider says slow_down
        if len(waits) == 3:
            provider.approve_device(shown[0].user_code)
        threading.Event().wait(min(seconds, 1.05))

    connection, _ = svc.add_connection(workspace, "microsoft", None, svc.SignIn(
        device=True, show_code=shown.append, sleep=sleep))
    assert connection.account == "alice@example.test"
    assert shown[0].verification_uri.startswith(provider.base)
    assert waits[:2] == [1, 1] and waits[2] == 6, waits  # interval grew by 5 after slow_down


def test_device_flow_denied(workspace: Workspace, provider: LocalOAuthProvider) -> None:
    register(workspace, provider, "github")
    shown = []

    def sleep(seconds: float) -> None:
        provider.deny_device(shown[0].user_code)
        threading.Event().wait(seconds)

    with pytest.raises(ConsentDenied):
        svc.add_connection(workspace, "github", None, svc.SignIn(device=True, show_code=shown.append, sleep=sleep))
    assert workspace.repos.connections.all() == []


def connect(workspace: Workspace, provider: LocalOAuthProvider, browser: HeadlessChromium, name: str = "github"):
    register(workspace, provider, name)
    connection, _ = svc.add_connection(workspace, name, None, browser_sign_in(browser))
    return connection


def test_refresh_rotates_and_keeps_the_connection(workspace: Workspace, provider: LocalOAuthProvider,
                                                  browser: HeadlessChromium) -> None:
    connection = connect(workspace, provider, browser)
    before = token_set(workspace, connection)
    svc.refresh(workspace, connection.id)
    after = token_set(workspace, workspace.repos.connections.get(connection.id))
    assert after.access_token != before.access_token and after.refresh_token != before.refresh_token
    assert before.refresh_token not in provider.live_refresh_tokens


def test_expired_refresh_token_marks_needs_consent(workspace: Workspace, provider: LocalOAuthProvider,
                                                   browser: HeadlessChromium) -> None:
    connection = connect(workspace, provider, browser)
    kept = token_set(workspace, connection)
    provider.expire_refresh_tokens()
    with pytest.raises(ConnectionNeedsConsent, match="sign in again"):
        svc.refresh(workspace, connection.id)
    stored = workspace.repos.connections.get(connection.id)
    assert stored.status is ConnectionStatus.NEEDS_CONSENT
    assert token_set(workspace, stored) == kept  # nothing half-written
    with pytest.raises(ConnectionNeedsConsent):  # no loop: refused at once from now on
        TokenBroker(workspace).access_token(connection.id)
    assert provider.requests["refresh"] == 1
    # Reconnecting brings it back.
    svc.reconnect(workspace, connection.id, browser_sign_in(browser))
    assert workspace.repos.connections.get(connection.id).status is ConnectionStatus.OK


def test_provider_down_keeps_a_still_valid_token(workspace: Workspace, provider: LocalOAuthProvider,
                                                 browser: HeadlessChromium) -> None:
    connection = connect(workspace, provider, browser)
    kept = token_set(workspace, connection)
    provider.down = True
    with pytest.raises(ProviderUnavailable, match="try again later"):
        svc.refresh(workspace, connection.id)
    # A caller that needs the token soon still gets the old one while it is valid.
    _expire_in(workspace, connection.id, 60)
    assert TokenBroker(workspace).access_token(connection.id) == kept.access_token
    stored = workspace.repos.connections.get(connection.id)
    assert stored.status is ConnectionStatus.REFRESH_FAILED and "HTTP 503" in (stored.last_error or "")
    provider.down = False
    assert TokenBroker(workspace).access_token(connection.id) != kept.access_token
    assert workspace.repos.connections.get(connection.id).status is ConnectionStatus.OK


def _expire_in(workspace: Workspace, connection_id: str, seconds: float) -> None:
    import time

    with workspace.change() as change:
        connection = change.repos.connections.get(connection_id)
        secret = change.repos.secrets.get(connection.token_secret)
        tokens = TokenSet.from_secret(secret)
        # a token of an hour's life with ``seconds`` left
        moved = {"expires_at": time.time() + seconds, "issued_at": time.time() + seconds - 3600}
        secret.value = tokens.model_copy(update=moved).to_secret_value()
        change.repos.secrets.put(secret)


def test_fifty_callers_cause_one_refresh(workspace: Workspace, provider: LocalOAuthProvider,
                                         browser: HeadlessChromium) -> None:
    connection = connect(workspace, provider, browser)
    _expire_in(workspace, connection.id, 0)
    provider.refresh_delay = 0.2
    results: list[str] = []
    barrier = threading.Barrier(50)

    def caller() -> None:
        barrier.wait()
        results.append(TokenBroker(workspace).access_token(connection.id))

    threads = [threading.Thread(target=caller) for _ in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert provider.requests["refresh"] == 1
    assert len(results) == 50 and len(set(results)) == 1 and results[0] in provider.live_access_tokens


@pytest.mark.parametrize("name", ["github", "google", "slack", "microsoft"])
def test_remove_revokes_where_it_can(workspace: Workspace, provider: LocalOAuthProvider,
                                     browser: HeadlessChromium, name: str) -> None:
    connection = connect(workspace, provider, browser, name)
    tokens = token_set(workspace, connection)
    revoked = svc.remove(workspace, connection.id)
    assert revoked is (name != "microsoft")  # Entra has no revocation endpoint
    if revoked:
        assert tokens.access_token in provider.revoked_tokens or tokens.refresh_token in provider.revoked_tokens
    assert workspace.repos.connections.all() == []
    assert not [s for s in workspace.repos.secrets if s.name.startswith("oauth/")]


def test_remove_while_provider_down_still_forgets(workspace: Workspace, provider: LocalOAuthProvider,
                                                  browser: HeadlessChromium) -> None:
    connection = connect(workspace, provider, browser)
    provider.down = True
    assert svc.remove(workspace, connection.id) is False
    assert workspace.repos.connections.all() == []
    assert "revoke_error" in workspace.paths.audit_log.read_text()


def test_client_secret_and_tokens_never_leak(workspace: Workspace, provider: LocalOAuthProvider,
                                             browser: HeadlessChromium, caplog: pytest.LogCaptureFixture) -> None:
    connection = connect(workspace, provider, browser)
    tokens = token_set(workspace, connection)
    provider.down = True
    with pytest.raises(TbxError) as failure:
        svc.refresh(workspace, connection.id)
    for text in (str(failure.value), caplog.text, workspace.paths.audit_log.read_text(),
                 repr(tokens), repr(workspace.repos.oauth_apps.all())):
        assert CLIENT_SECRET not in text and tokens.access_token not in text
        assert tokens.refresh_token not in text


def test_bad_app_settings_are_usage_errors(workspace: Workspace) -> None:
    with pytest.raises(UsageError, match="unknown provider"):
        svc.set_app(workspace, "myspace", "x")
    with pytest.raises(UsageError, match="must use https"):
        svc.set_app(workspace, "github", "x", "s", hosts={"web": "http://github.example.com"})
    with pytest.raises(UsageError, match="needs --issuer"):
        svc.set_app(workspace, "oidc:corp", "x")
    with pytest.raises(TbxError, match="no app registration for slack"):
        svc.add_connection(workspace, "slack", None, svc.SignIn())


def test_oidc_provider_by_discovery(workspace: Workspace, provider: LocalOAuthProvider,
                                    browser: HeadlessChromium) -> None:
    svc.set_app(workspace, "oidc:corp", "oidc-app", CLIENT_SECRET, issuer=f"{provider.base}/oidc")
    connection, _ = svc.add_connection(workspace, "oidc:corp", None, browser_sign_in(browser))
    assert connection.account == "alice@example.test" and "openid" in connection.scopes
    assert svc.remove(workspace, connection.id) is True


def test_an_abandoned_browser_sign_in_ends_at_once(workspace: Workspace, provider: LocalOAuthProvider) -> None:
    import time

    from console.oauth.client import OAuthFlowError

    register(workspace, provider, "github")
    started = time.monotonic()
    with pytest.raises(OAuthFlowError, match="cancelled; nothing was saved"):
        svc.add_connection(workspace, "github", None, svc.SignIn(
            opener=lambda _url: True, timeout=60, cancelled=lambda: time.monotonic() - started > 0.3))
    assert time.monotonic() - started < 5
    assert workspace.repos.connections.all() == []
