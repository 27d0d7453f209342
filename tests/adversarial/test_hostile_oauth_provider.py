"""A hostile or broken OpenID Connect provider (or someone in the middle of a sign-in):
ID tokens for another issuer, another app or another request, unsigned, signed by a key
the issuer does not publish, expired, garbage, or userinfo about someone else. The
sign-in ends with one clear line, nothing is kept, and the tokens issued are revoked."""

from __future__ import annotations

import pytest

from console.oauth.client import OAuthFlowError
from console.oauth.id_token import IdTokenInvalid
from console.services import connections as svc
from console.workspace import Workspace
from tests.oauth.conftest import CLIENT_SECRET, _reset, provider  # noqa: F401 - the provider and its reset
from tests.oauth.test_connections import browser_sign_in
from tests.support.browser import HeadlessChromium
from tests.support.oauth_provider import LocalOAuthProvider


def oidc(ws: Workspace, provider: LocalOAuthProvider) -> None:  # noqa: F811
    svc.set_app(ws, "oidc:corp", "basic-app", CLIENT_SECRET, issuer=f"{provider.base}/oidc")


@pytest.mark.parametrize("fault", ["issuer", "audience", "azp", "expired", "nonce", "signature", "unsigned",
                                   "garbage", "missing"])
def test_a_bad_id_token_ends_the_sign_in_and_revokes_its_tokens(workspace: Workspace,
                                                               provider: LocalOAuthProvider,  # noqa: F811
                                                               browser: HeadlessChromium, fault: str) -> None:
    oidc(workspace, provider)
    provider.id_token_fault = fault  # type: ignore[assignment]
    before = set(provider.live_refresh_tokens)
    with pytest.raises(IdTokenInvalid, match="ID token") as raised:
        svc.add_connection(workspace, "oidc:corp", None, browser_sign_in(browser))
    message = str(raised.value)
    assert "\n" not in message and len(message) < 300 and "nothing was saved" in message
    assert workspace.repos.connections.all() == []
    assert provider.live_refresh_tokens == before  # what it issued is revoked, not left live
    assert provider.requests["revoke"] == 1


def test_userinfo_about_someone_else_is_refused_and_revoked(workspace: Workspace,
                                                            provider: LocalOAuthProvider,  # noqa: F811
                                                            browser: HeadlessChromium) -> None:
    """OIDC Core §5.3.2: the userinfo sub must be the ID token's (a token substitution)."""
    oidc(workspace, provider)
    provider.id_token_fault = "subject"
    before = set(provider.live_refresh_tokens)
    with pytest.raises(OAuthFlowError, match="another account.*the tokens it issued were revoked"):
        svc.add_connection(workspace, "oidc:corp", None, browser_sign_in(browser))
    assert workspace.repos.connections.all() == [] and provider.live_refresh_tokens == before
