"""Connections against the local provider made as strict as the specifications: a
parameter sent twice is refused, each app authenticates only as registered, refresh
tokens come only for offline_access asked with consent, ID tokens are signed and bound
to the request. Each test failed before the product followed the rule it checks."""

from __future__ import annotations

import time

import pytest

from console.model import ConnectionStatus
from console.oauth.client import OAuthFlowError
from console.services import connections as svc
from console.services.connection_tokens import ConnectionNeedsConsent, TokenBroker, lock_file, token_set
from console.workspace import Workspace
from tests.oauth.conftest import CLIENT_SECRET
from tests.oauth.test_connections import browser_sign_in
from tests.support.browser import HeadlessChromium
from tests.support.oauth_provider import LocalOAuthProvider


def oidc(ws: Workspace, provider: LocalOAuthProvider, client_id: str = "basic-app", **extra: object) -> None:
    secret = None if client_id == "public-app" else CLIENT_SECRET
    svc.set_app(ws, "oidc:corp", client_id, secret, issuer=f"{provider.base}/oidc", **extra)  # type: ignore[arg-type]


def device_sign_in(ws: Workspace, provider: LocalOAuthProvider):  # noqa: ANN201
    provider.device_interval = 0.1

    def show(grant: object) -> None:
        provider.approve_device(grant.user_code)  # type: ignore[attr-defined]

    return svc.add_connection(ws, "oidc:corp", None, svc.SignIn(device=True, show_code=show, sleep=time.sleep))


@pytest.mark.parametrize("client_id", ["basic-app", "post-app", "public-app"])
def test_device_flow_sends_each_parameter_once(workspace: Workspace, provider: LocalOAuthProvider,
                                               client_id: str) -> None:
    """The poll used to send client_id twice, which strict providers refuse."""
    oidc(workspace, provider, client_id, **({"auth_method": "client_secret_post"} if client_id == "post-app" else {}))
    connection, _ = device_sign_in(workspace, provider)
    tokens = token_set(workspace, connection)
    assert connection.account == "alice@example.test" and tokens.refresh_token and tokens.subject


def test_the_registered_authentication_method_is_used(workspace: Workspace, provider: LocalOAuthProvider,
                                                      browser: HeadlessChromium) -> None:
    """An app registered for client_secret_basic: tbx used to send the secret in the body."""
    oidc(workspace, provider, "basic-app")
    connection, _ = svc.add_connection(workspace, "oidc:corp", None, browser_sign_in(browser))
    assert TokenBroker(workspace).refresh(connection.id).access_token  # the refresh authenticates alike
    assert svc.remove(workspace, connection.id) is True  # and the revocation


def test_a_refused_method_is_named_with_the_option_that_fixes_it(workspace: Workspace, provider: LocalOAuthProvider,
                                                                 browser: HeadlessChromium) -> None:
    oidc(workspace, provider, "post-app")  # registered for post; the provider lists basic first
    with pytest.raises(OAuthFlowError, match=r"invalid_client, authenticating with client_secret_basic.*--auth-method"):
        svc.add_connection(workspace, "oidc:corp", None, browser_sign_in(browser))
    assert workspace.repos.connections.all() == []
    oidc(workspace, provider, "post-app", auth_method="client_secret_post")
    connection, _ = svc.add_connection(workspace, "oidc:corp", None, browser_sign_in(browser))
    assert connection.account == "alice@example.test"


def test_the_method_comes_from_discovery(workspace: Workspace, provider: LocalOAuthProvider,
                                         browser: HeadlessChromium) -> None:
    provider.oidc_auth_methods = ["client_secret_post"]
    oidc(workspace, provider, "post-app")
    connection, _ = svc.add_connection(workspace, "oidc:corp", None, browser_sign_in(browser))
    assert connection.account == "alice@example.test"
    with pytest.raises(Exception, match="does not take client_secret_basic"):
        oidc(workspace, provider, "post-app", auth_method="client_secret_basic")


def test_requested_scopes_add_to_what_tbx_needs(workspace: Workspace, provider: LocalOAuthProvider,
                                                browser: HeadlessChromium) -> None:
    oidc(workspace, provider)
    seen: list[str] = []
    connection, _ = svc.add_connection(workspace, "oidc:corp", ["repo"], browser_sign_in(browser, on_url=seen.append))
    assert set(connection.scopes) == {"repo", "openid", "email", "offline_access"}
    assert "prompt=consent" in seen[0] and "nonce=" in seen[0]


def test_without_offline_access_the_token_is_used_while_it_lasts(workspace: Workspace, provider: LocalOAuthProvider,
                                                                  browser: HeadlessChromium) -> None:
    """A provider that does not offer offline_access gives no refresh token: the
    connection is fine until the access token expires, then it needs a sign-in."""
    provider.oidc_scopes = ["openid", "email"]
    provider.access_token_ttl = 3
    oidc(workspace, provider)
    seen: list[str] = []
    connection, _ = svc.add_connection(workspace, "oidc:corp", None, browser_sign_in(browser, on_url=seen.append))
    assert "offline_access" not in seen[0] and "prompt=consent" not in seen[0]
    tokens = token_set(workspace, connection)
    assert tokens.refresh_token is None
    broker = TokenBroker(workspace)
    assert broker.access_token(connection.id) == tokens.access_token  # within the refresh margin, still valid
    workspace.refresh()
    assert workspace.repos.connections.get(connection.id).status is ConnectionStatus.OK
    with pytest.raises(OAuthFlowError, match="gave no refresh token.*works until it expires"):
        svc.refresh(workspace, connection.id)
    time.sleep(3.2)
    with pytest.raises(ConnectionNeedsConsent):
        broker.access_token(connection.id)
    workspace.refresh()
    assert workspace.repos.connections.get(connection.id).status is ConnectionStatus.NEEDS_CONSENT


def test_short_lived_tokens_are_refreshed_once_per_lifetime(workspace: Workspace, provider: LocalOAuthProvider,
                                                            browser: HeadlessChromium) -> None:
    provider.access_token_ttl = 8  # far below the 120 s refresh margin
    oidc(workspace, provider)
    connection, _ = svc.add_connection(workspace, "oidc:corp", None, browser_sign_in(browser))
    broker = TokenBroker(workspace)
    first = broker.access_token(connection.id)
    assert all(broker.access_token(connection.id) == first for _ in range(20))
    assert broker.refreshes == 0 and provider.requests["refresh"] == 0
    time.sleep(6.5)  # in the last quarter of its life
    assert broker.access_token(connection.id) != first and broker.refreshes == 1


def test_removing_connections_leaves_no_lock_files(workspace: Workspace, provider: LocalOAuthProvider,
                                                   browser: HeadlessChromium) -> None:
    oidc(workspace, provider)
    connection, _ = svc.add_connection(workspace, "oidc:corp", None, browser_sign_in(browser))
    svc.refresh(workspace, connection.id)
    left_behind = workspace.paths.state_dir / "oauth-cn-gone-long-ago.lock"  # by an older version
    left_behind.touch()
    assert lock_file(workspace, connection.id).exists()
    svc.remove(workspace, connection.id)
    assert not lock_file(workspace, connection.id).exists() and not left_behind.exists()


def test_reconnect_as_another_account_keeps_nothing_and_revokes_it(workspace: Workspace, provider: LocalOAuthProvider,
                                                                   browser: HeadlessChromium) -> None:
    from console.errors import UsageError

    oidc(workspace, provider)
    connection, _ = svc.add_connection(workspace, "oidc:corp", None, browser_sign_in(browser))
    kept = token_set(workspace, connection)
    before = set(provider.live_refresh_tokens)
    provider.user = "bob@example.test"
    with pytest.raises(UsageError, match="signed in as bob@example.test.*nothing was saved"):
        svc.reconnect(workspace, connection.id, browser_sign_in(browser))
    assert provider.live_refresh_tokens == before  # bob's new tokens were revoked
    assert token_set(workspace, connection).access_token == kept.access_token
