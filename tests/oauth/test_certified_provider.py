"""Connections against an OpenID-certified provider nobody here wrote (panva's
oidc-provider from npm), with a person signing in on its own pages in headless Chromium.

Each app registration is bound to one client authentication method, as at any strict
provider; refresh tokens come only for offline_access asked with prompt=consent; ID
tokens are signed with keys it publishes. The product must work with all of that as the
specifications say, not as our own test provider happens to allow.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest

from console.errors import UsageError
from console.model import ConnectionStatus
from console.oauth.client import ConsentDenied, OAuthFlowError
from console.oauth.client_auth import public_jwk
from console.services import connections as svc
from console.services.connection_tokens import TokenBroker, lock_file, token_set
from console.workspace import Workspace
from tests.support.certified_oidc import CertifiedProvider, chromium, client, person, rsa_key
from tests.support.devtools import DevTools

SECRET = "op-client-secret-canary-5d1b0c"
KEY_PEM = rsa_key()
KEY_JWKS = {"keys": [public_jwk(KEY_PEM)]}  # what 'tbx connection app --private-key' prints to register
SHORT_TTL = 20


@pytest.fixture(scope="module")
def op() -> Iterator[CertifiedProvider]:
    provider = CertifiedProvider(
        [
            client("basic-app", "client_secret_basic", SECRET),
            client("post-app", "client_secret_post", SECRET),
            client("jwt-app", "private_key_jwt", jwks=KEY_JWKS),
            client("public-app", "none"),
            client("short-app", "client_secret_basic", SECRET),
        ],
        short_lived={"short-app": SHORT_TTL},
    )
    yield provider
    provider.close()
    assert provider.errors == [], provider.errors  # no server_error while we talked to it


@pytest.fixture(scope="module")
def devtools() -> Iterator[DevTools]:
    with chromium() as browser:
        yield browser


def register(ws: Workspace, op: CertifiedProvider, client_id: str, **extra: object) -> None:
    secret = None if client_id in ("jwt-app", "public-app") else SECRET
    svc.set_app(ws, "oidc:op", client_id, secret, issuer=op.issuer, **extra)  # type: ignore[arg-type]


def sign_in(ws: Workspace, devtools: DevTools, scopes: list[str] | None = None, approve: bool = True):  # noqa: ANN201
    user = person(devtools, approve=approve)
    try:
        return svc.add_connection(ws, "oidc:op", scopes, svc.SignIn(opener=user, timeout=40)), user
    finally:
        if user.opened:
            user.wait()


@pytest.mark.parametrize("client_id", ["basic-app", "post-app", "jwt-app", "public-app"])
def test_browser_sign_in_with_each_client_authentication(workspace: Workspace, op: CertifiedProvider,
                                                         devtools: DevTools, client_id: str) -> None:
    """Each app authenticates only the way it is registered; tbx finds the way (basic
    before post, the key for private_key_jwt, none for a public app) or is told it."""
    extra = {"auth_method": "client_secret_post"} if client_id == "post-app" else {}
    if client_id == "jwt-app":
        extra = {"private_key": KEY_PEM}
    register(workspace, op, client_id, **extra)
    (connection, is_new), user = sign_in(workspace, devtools)
    assert is_new and connection.account == "alice@example.test"
    assert any("/interaction/" in url for url in user.pages)  # its own login page, in the browser
    tokens = token_set(workspace, connection)
    assert tokens.refresh_token, "offline_access with prompt=consent must bring a refresh token"
    assert tokens.subject == "alice"  # from the verified ID token
    assert "offline_access" in connection.scopes and "openid" in connection.scopes
    active = op.introspect(tokens.access_token, "basic-app", SECRET) if client_id == "basic-app" else None
    assert active is None or active["active"] is True
    # The refresh uses the same client authentication.
    refreshed = TokenBroker(workspace).refresh(connection.id)
    assert refreshed.access_token != tokens.access_token and refreshed.subject == "alice"


def test_authorize_request_asks_for_offline_access_with_consent(workspace: Workspace, op: CertifiedProvider,
                                                                  devtools: DevTools) -> None:
    register(workspace, op, "basic-app")
    (connection, _), user = sign_in(workspace, devtools)
    query = user.opened[0]
    assert "prompt=consent" in query and "offline_access" in query and "nonce=" in query
    assert "code_challenge_method=S256" in query


def test_provider_that_takes_only_basic_authentication(workspace: Workspace, devtools: DevTools) -> None:
    """A provider whose discovery lists client_secret_basic alone refuses a secret in the
    body (tbx used to send client_secret_post whatever the provider said)."""
    strict = CertifiedProvider([client("basic-app", "client_secret_basic", SECRET)],
                               auth_methods=["client_secret_basic", "none"])
    try:
        assert strict.discovery["token_endpoint_auth_methods_supported"] == ["client_secret_basic", "none"]
        svc.set_app(workspace, "oidc:op", "basic-app", SECRET, issuer=strict.issuer)
        (connection, _), _user = sign_in(workspace, devtools)
        assert token_set(workspace, connection).refresh_token
        assert svc.remove(workspace, connection.id) is True  # revocation authenticates the same way
        with pytest.raises(UsageError, match="does not take client_secret_post"):
            svc.set_app(workspace, "oidc:op", "basic-app", SECRET, issuer=strict.issuer,
                        auth_method="client_secret_post")
    finally:
        strict.close()
    assert strict.errors == []


def test_wrong_secret_is_reported_and_nothing_is_kept(workspace: Workspace, op: CertifiedProvider,
                                                     devtools: DevTools) -> None:
    svc.set_app(workspace, "oidc:op", "basic-app", "not-the-secret", issuer=op.issuer)
    with pytest.raises(OAuthFlowError, match="does not accept the app registration"):
        sign_in(workspace, devtools)
    assert workspace.repos.connections.all() == []


def test_device_flow_with_a_strict_provider(workspace: Workspace, op: CertifiedProvider, devtools: DevTools) -> None:
    """The poll sends client_id once: the provider refuses parameters given twice."""
    register(workspace, op, "basic-app")
    user = person(devtools)

    def show(grant: object) -> None:
        user(grant.verification_uri_complete)  # type: ignore[attr-defined]

    connection, _ = svc.add_connection(workspace, "oidc:op", None, svc.SignIn(device=True, show_code=show))
    assert "Sign-in Success" in user.wait()
    assert connection.account == "alice@example.test"
    tokens = token_set(workspace, connection)
    assert tokens.refresh_token and tokens.subject == "alice"


def test_public_app_device_flow_with_the_code_typed(workspace: Workspace, op: CertifiedProvider,
                                                    devtools: DevTools) -> None:
    """What the terminal shows: an address and a code, typed on the provider's page."""
    register(workspace, op, "public-app")
    users = []

    def show(grant: object) -> None:
        users.append(person(devtools, "carol", user_code=grant.user_code))  # type: ignore[attr-defined]
        users[0](grant.verification_uri)  # type: ignore[attr-defined]

    connection, _ = svc.add_connection(workspace, "oidc:op", None, svc.SignIn(device=True, show_code=show))
    assert "Sign-in Success" in users[0].wait() and connection.account == "carol@example.test"
    assert token_set(workspace, connection).refresh_token


def test_requested_scopes_add_to_what_tbx_needs(workspace: Workspace, op: CertifiedProvider,
                                                devtools: DevTools) -> None:
    """--scope notes:read used to replace openid/email: the account lookup then failed
    with insufficient_scope and the tokens it had been issued stayed live."""
    register(workspace, op, "basic-app")
    (connection, _), _user = sign_in(workspace, devtools, ["notes:read"])
    assert {"notes:read", "openid", "email", "offline_access"} <= set(connection.scopes)
    assert connection.account == "alice@example.test"


def test_denied_consent_saves_nothing(workspace: Workspace, op: CertifiedProvider, devtools: DevTools) -> None:
    register(workspace, op, "basic-app")
    with pytest.raises(ConsentDenied):
        sign_in(workspace, devtools, approve=False)
    assert workspace.repos.connections.all() == []


def test_remove_revokes_at_the_provider_and_leaves_no_lock_file(workspace: Workspace, op: CertifiedProvider,
                                                               devtools: DevTools) -> None:
    register(workspace, op, "basic-app")
    (connection, _), _user = sign_in(workspace, devtools)
    TokenBroker(workspace).refresh(connection.id)  # creates the refresh lock file
    assert lock_file(workspace, connection.id).exists()
    tokens = token_set(workspace, connection)
    assert svc.remove(workspace, connection.id) is True
    assert op.introspect(tokens.refresh_token or "", "basic-app", SECRET)["active"] is False
    assert op.introspect(tokens.access_token, "basic-app", SECRET)["active"] is False
    assert not lock_file(workspace, connection.id).exists()


def test_revoked_refresh_token_needs_sign_in_only_when_the_access_token_is_gone(
        workspace: Workspace, op: CertifiedProvider, devtools: DevTools) -> None:
    register(workspace, op, "basic-app")
    (connection, _), _user = sign_in(workspace, devtools)
    tokens = token_set(workspace, connection)
    import requests

    requests.post(op.issuer + "/token/revocation", data={"token": tokens.refresh_token, "token_type_hint": "refresh_token"},
                  auth=("basic-app", SECRET), timeout=10).raise_for_status()
    with pytest.raises(Exception, match="reconnect"):
        TokenBroker(workspace).refresh(connection.id)
    workspace.refresh()
    assert workspace.repos.connections.get(connection.id).status is ConnectionStatus.NEEDS_CONSENT


def test_short_lived_tokens_are_not_refreshed_on_every_use(workspace: Workspace, op: CertifiedProvider,
                                                           devtools: DevTools) -> None:
    """Access tokens of 20 s with a refresh margin of 120 s: each use used to refresh."""
    register(workspace, op, "short-app")
    (connection, _), _user = sign_in(workspace, devtools)
    broker = TokenBroker(workspace)
    first = broker.access_token(connection.id)
    assert [broker.access_token(connection.id) for _ in range(5)] == [first] * 5
    assert broker.refreshes == 0
    # Within the last quarter of its life the token is refreshed, once.
    time.sleep(SHORT_TTL * 0.8)
    second = broker.access_token(connection.id)
    assert second != first and broker.access_token(connection.id) == second and broker.refreshes == 1


def test_an_auth_method_the_provider_does_not_take_is_refused_up_front(workspace: Workspace,
                                                                      op: CertifiedProvider) -> None:
    with pytest.raises(UsageError, match="private_key_jwt needs a private key"):
        svc.set_app(workspace, "oidc:op", "basic-app", SECRET, issuer=op.issuer, auth_method="private_key_jwt")


def test_no_secret_in_the_audit_or_errors(workspace: Workspace, op: CertifiedProvider, devtools: DevTools) -> None:
    register(workspace, op, "basic-app")
    (connection, _), _user = sign_in(workspace, devtools)
    tokens = token_set(workspace, connection)
    audit = workspace.paths.audit_log.read_text()
    for canary in (SECRET, tokens.access_token, tokens.refresh_token or "\0", "BEGIN PRIVATE KEY"):
        assert canary not in audit


def test_cli_registers_a_key_and_prints_only_its_public_half(tbx, tbx_home, memory_keyring, tmp_path,  # noqa: ANN001
                                                             op: CertifiedProvider, devtools: DevTools) -> None:
    assert tbx("init").exit_code == 0
    key_file = tmp_path / "app.pem"
    key_file.write_text(KEY_PEM)
    saved = tbx("connection", "app", "oidc:op", "--client-id", "jwt-app", "--issuer", op.issuer,
                "--private-key", str(key_file))
    assert saved.exit_code == 0 and saved.stderr == ""
    printed = json.loads(next(line for line in saved.stdout.splitlines() if line.startswith("{")))
    assert printed == public_jwk(KEY_PEM) and "d" not in printed and "BEGIN" not in saved.stdout
    key_file.unlink()  # kept in the vault: the file is not needed any more
    ws = Workspace.open(tbx_home)
    (connection, _), _user = sign_in(ws, devtools)
    assert connection.account == "alice@example.test"
    assert KEY_PEM.splitlines()[1] not in ws.paths.audit_log.read_text()

    bad = tbx("connection", "app", "oidc:op", "--client-id", "jwt-app", "--issuer", op.issuer,
              "--private-key", str(tmp_path / "missing.pem"))
    assert bad.exit_code == 2 and "cannot read the private key file" in bad.stderr and len(bad.stderr.splitlines()) == 1
    not_key = tmp_path / "cert.pem"
    not_key.write_text("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
    refused = tbx("connection", "app", "oidc:op", "--client-id", "jwt-app", "--issuer", op.issuer,
                  "--private-key", str(not_key))
    assert refused.exit_code == 2 and "not an RSA or EC private key" in refused.stderr
    post = tbx("connection", "app", "oidc:op", "--client-id", "post-app", "--issuer", op.issuer,
               "--auth-method", "client_secret_post", env={"TBX_OAUTH_CLIENT_SECRET": SECRET})
    assert post.exit_code == 0 and SECRET not in post.stdout + post.stderr
    assert Workspace.open(tbx_home).repos.oauth_apps.for_provider("oidc:op").auth_method == "client_secret_post"
