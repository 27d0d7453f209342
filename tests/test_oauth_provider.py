"""The local OAuth provider itself, driven with plain HTTP the way each real provider is."""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx2 as httpx
import pytest
from authlib.oauth2.rfc7636 import create_s256_code_challenge

from tests.support.browser import HeadlessChromium, require_chromium
from tests.support.oauth_provider import LocalOAuthProvider

SECRET = "s3cret-" + secrets.token_hex(4)
CALLBACK = "http://127.0.0.1:53682/callback"
DEVICE = "urn:ietf:params:oauth:grant-type:device_code"


@pytest.fixture
def p() -> Iterator[LocalOAuthProvider]:
    with LocalOAuthProvider() as provider:
        provider.register_client("pub", None, ["read", "write", "repo", "read:user", "channels:read", "chat:write",
                                               "User.Read"])
        provider.register_client("conf", SECRET, ["read", "channels:read", "chat:write"])
        yield provider


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10, follow_redirects=False) as client:
        yield client


class Pkce:
    def __init__(self) -> None:
        self.verifier = secrets.token_urlsafe(48)
        self.params = {"code_challenge": create_s256_code_challenge(self.verifier), "code_challenge_method": "S256"}


def redirect_query(response: httpx.Response) -> dict[str, str]:
    assert response.status_code == 302, response.text
    location = response.headers["location"]
    assert location.startswith("http://127.0.0.1:")
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def authorize(http: httpx.Client, url: str, **params: Any) -> dict[str, str]:
    params.setdefault("redirect_uri", CALLBACK)
    params.setdefault("state", "st-" + secrets.token_hex(4))
    query = redirect_query(http.get(url, params=params))
    assert query["state"] == params["state"]
    return query


def oidc_code(http: httpx.Client, p: LocalOAuthProvider, scope: str = "read openid offline_access",
              **extra: Any) -> tuple[str, Pkce]:
    """A code for offline access asked with consent (OIDC Core §11), so it brings a refresh token."""
    pkce = Pkce()
    if "offline_access" in scope:
        extra.setdefault("prompt", "consent")
    query = authorize(http, p.base + "/oidc/authorize", response_type="code", client_id="pub", scope=scope,
                      **pkce.params, **extra)
    return query["code"], pkce


def oidc_exchange(http: httpx.Client, p: LocalOAuthProvider, code: str, verifier: str) -> httpx.Response:
    return http.post(p.base + "/oidc/token", data={"grant_type": "authorization_code", "code": code,
                                                   "client_id": "pub", "redirect_uri": CALLBACK,
                                                   "code_verifier": verifier})


def oidc_refresh(http: httpx.Client, p: LocalOAuthProvider, refresh_token: str) -> httpx.Response:
    return http.post(p.base + "/oidc/token", data={"grant_type": "refresh_token", "refresh_token": refresh_token,
                                                   "client_id": "pub"})


# -- generic OIDC ------------------------------------------------------------------------------

def test_discovery_names_every_endpoint(p: LocalOAuthProvider, http: httpx.Client) -> None:
    doc = http.get(p.base + "/oidc/.well-known/openid-configuration").json()
    assert doc["issuer"] == p.base + "/oidc"
    assert doc["code_challenge_methods_supported"] == ["S256"]
    assert DEVICE in doc["grant_types_supported"]
    for key, path in [("authorization_endpoint", "/oidc/authorize"), ("token_endpoint", "/oidc/token"),
                      ("revocation_endpoint", "/oidc/revoke"), ("device_authorization_endpoint", "/oidc/device"),
                      ("userinfo_endpoint", "/oidc/userinfo")]:
        assert doc[key] == p.base + path
    google = http.get(p.base + "/google/.well-known/openid-configuration").json()
    assert google["issuer"] == p.base + "/google"
    entra = http.get(p.base + "/microsoft/common/v2.0/.well-known/openid-configuration").json()
    assert entra["token_endpoint"] == p.base + "/microsoft/common/oauth2/v2.0/token"
    assert "revocation_endpoint" not in entra


def test_code_with_pkce_gives_tokens_and_userinfo(p: LocalOAuthProvider, http: httpx.Client) -> None:
    p.user = "bob@example.test"
    code, pkce = oidc_code(http, p)
    token = oidc_exchange(http, p, code, pkce.verifier)
    assert token.status_code == 200, token.text
    body = token.json()
    assert body["access_token"].startswith("at-") and body["refresh_token"].startswith("rt-")
    assert body["token_type"] == "Bearer" and body["expires_in"] == 3600
    assert body["scope"] == "read openid offline_access" and body["id_token"]
    assert token.headers["cache-control"] == "no-store"
    info = http.get(p.base + "/oidc/userinfo", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert info.status_code == 200 and info.json()["email"] == "bob@example.test" and info.json()["sub"]
    assert body["access_token"] in p.live_access_tokens


def test_reused_code_is_refused_and_revokes_what_it_bought(p: LocalOAuthProvider, http: httpx.Client) -> None:
    code, pkce = oidc_code(http, p)
    first = oidc_exchange(http, p, code, pkce.verifier).json()
    again = oidc_exchange(http, p, code, pkce.verifier)
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"
    assert first["access_token"] not in p.live_access_tokens
    assert oidc_refresh(http, p, first["refresh_token"]).json()["error"] == "invalid_grant"


def test_pkce_is_enforced(p: LocalOAuthProvider, http: httpx.Client) -> None:
    code, _ = oidc_code(http, p)
    wrong = oidc_exchange(http, p, code, secrets.token_urlsafe(48))
    assert wrong.status_code == 400 and wrong.json()["error"] == "invalid_grant"
    code, _ = oidc_code(http, p)
    missing = http.post(p.base + "/oidc/token", data={"grant_type": "authorization_code", "code": code,
                                                      "client_id": "pub", "redirect_uri": CALLBACK})
    assert missing.json()["error"] == "invalid_request"
    # a public client without a challenge, or with the plain method, is turned back at authorize
    bare = authorize(http, p.base + "/oidc/authorize", response_type="code", client_id="pub", scope="read")
    assert bare["error"] == "invalid_request" and "code" not in bare
    plain = authorize(http, p.base + "/oidc/authorize", response_type="code", client_id="pub", scope="read",
                      code_challenge="x" * 43, code_challenge_method="plain")
    assert plain["error"] == "invalid_request"


def test_confidential_client_authenticates_by_basic_or_post(p: LocalOAuthProvider, http: httpx.Client) -> None:
    url = p.base + "/oidc/authorize"
    code = authorize(http, url, response_type="code", client_id="conf", scope="read")["code"]
    basic = http.post(p.base + "/oidc/token", auth=("conf", SECRET),
                      data={"grant_type": "authorization_code", "code": code, "redirect_uri": CALLBACK})
    assert basic.status_code == 200, basic.text
    code = authorize(http, url, response_type="code", client_id="conf", scope="read")["code"]
    post = http.post(p.base + "/oidc/token", data={"grant_type": "authorization_code", "code": code,
                                                   "redirect_uri": CALLBACK, "client_id": "conf",
                                                   "client_secret": SECRET})
    assert post.status_code == 200, post.text
    code = authorize(http, url, response_type="code", client_id="conf", scope="read")["code"]
    bad = http.post(p.base + "/oidc/token", auth=("conf", "wrong"),
                    data={"grant_type": "authorization_code", "code": code, "redirect_uri": CALLBACK})
    assert bad.status_code == 401 and bad.json()["error"] == "invalid_client"
    assert SECRET not in bad.text


def test_consent_redirects_and_redirect_uri_rules(p: LocalOAuthProvider, http: httpx.Client) -> None:
    p.consent = "deny"
    denied = authorize(http, p.base + "/oidc/authorize", response_type="code", client_id="pub", scope="read",
                       state="keep me/+=", **Pkce().params)
    assert denied["error"] == "access_denied" and denied["state"] == "keep me/+="
    p.consent = "approve"
    # any loopback port is fine (RFC 8252 §7.3), but the token request must repeat it exactly
    pkce = Pkce()
    code = authorize(http, p.base + "/oidc/authorize", response_type="code", client_id="pub", scope="read",
                     redirect_uri="http://127.0.0.1:40123/cb", **pkce.params)["code"]
    mismatch = oidc_exchange(http, p, code, pkce.verifier)
    assert mismatch.json()["error"] == "invalid_grant"
    for bad in ("http://evil.example/cb", "https://127.0.0.1:4000/cb"):
        refused = http.get(p.base + "/oidc/authorize", params={"response_type": "code", "client_id": "pub",
                                                               "redirect_uri": bad, **Pkce().params})
        assert refused.status_code == 400 and "location" not in refused.headers
    unknown_scope = authorize(http, p.base + "/oidc/authorize", response_type="code", client_id="pub",
                              scope="admin", **Pkce().params)
    assert unknown_scope["error"] == "invalid_scope"


def test_refresh_rotation_and_expiry(p: LocalOAuthProvider, http: httpx.Client) -> None:
    p.access_token_ttl = 60
    code, pkce = oidc_code(http, p)
    first = oidc_exchange(http, p, code, pkce.verifier).json()
    assert first["expires_in"] == 60
    second = oidc_refresh(http, p, first["refresh_token"]).json()
    assert second["refresh_token"] != first["refresh_token"]
    assert oidc_refresh(http, p, first["refresh_token"]).json()["error"] == "invalid_grant"  # rotated away
    p.rotate_refresh_tokens = False
    third = oidc_refresh(http, p, second["refresh_token"]).json()
    assert "refresh_token" not in third
    assert oidc_refresh(http, p, second["refresh_token"]).status_code == 200  # still the live one
    p.expire_refresh_tokens()
    assert oidc_refresh(http, p, second["refresh_token"]).json()["error"] == "invalid_grant"
    p.expire_access_tokens()
    assert not p.live_access_tokens
    gone = http.get(p.base + "/oidc/userinfo", headers={"Authorization": f"Bearer {third['access_token']}"})
    assert gone.status_code == 401 and "invalid_token" in gone.headers["www-authenticate"]


def test_concurrent_refreshes_race_like_a_real_provider(p: LocalOAuthProvider, http: httpx.Client) -> None:
    code, pkce = oidc_code(http, p)
    refresh_token = oidc_exchange(http, p, code, pkce.verifier).json()["refresh_token"]
    p.refresh_barrier = threading.Barrier(2)  # both in flight before either is handled
    results: list[int] = []

    def go() -> None:
        with httpx.Client(timeout=10) as own:
            results.append(oidc_refresh(own, p, refresh_token).status_code)

    threads = [threading.Thread(target=go) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [200, 400]  # with rotation only one of two racing refreshes wins
    assert p.requests["refresh"] == 2


def test_revocation_rfc7009(p: LocalOAuthProvider, http: httpx.Client) -> None:
    code, pkce = oidc_code(http, p)
    tokens = oidc_exchange(http, p, code, pkce.verifier).json()
    ok = http.post(p.base + "/oidc/revoke", data={"token": tokens["access_token"], "client_id": "pub"})
    assert ok.status_code == 200
    assert tokens["access_token"] in p.revoked_tokens and tokens["access_token"] not in p.live_access_tokens
    assert oidc_refresh(http, p, tokens["refresh_token"]).status_code == 200  # only the access token went
    http.post(p.base + "/oidc/revoke", data={"token": tokens["refresh_token"], "client_id": "pub",
                                             "token_type_hint": "refresh_token"})
    assert tokens["refresh_token"] in p.revoked_tokens
    assert oidc_refresh(http, p, tokens["refresh_token"]).json()["error"] == "invalid_grant"
    assert http.post(p.base + "/oidc/revoke", data={"token": "nonsense", "client_id": "pub"}).status_code == 200


def test_refresh_tokens_only_for_offline_access_asked_with_consent(p: LocalOAuthProvider, http: httpx.Client) -> None:
    for scope, prompt, refresh in [("read openid", "consent", False), ("read openid offline_access", "", False),
                                   ("read openid offline_access", "consent", True)]:
        extra = {"prompt": prompt} if prompt else {}
        pkce = Pkce()
        code = authorize(http, p.base + "/oidc/authorize", response_type="code", client_id="pub", scope=scope,
                         **pkce.params, **extra)["code"]
        body = oidc_exchange(http, p, code, pkce.verifier).json()
        assert ("refresh_token" in body) is refresh, (scope, prompt)


def test_id_token_is_signed_for_this_client_and_request(p: LocalOAuthProvider, http: httpx.Client) -> None:
    from joserfc import jwt
    from joserfc.jwk import KeySet

    code, pkce = oidc_code(http, p, nonce="n-0S6_WzA2Mj")
    body = oidc_exchange(http, p, code, pkce.verifier).json()
    keys = KeySet.import_key_set(http.get(p.base + "/oidc/jwks").json())
    claims = jwt.decode(body["id_token"], keys, algorithms=["RS256"]).claims
    assert claims["iss"] == p.base + "/oidc" and claims["aud"] == "pub" and claims["nonce"] == "n-0S6_WzA2Mj"
    info = http.get(p.base + "/oidc/userinfo", headers={"Authorization": f"Bearer {body['access_token']}"}).json()
    assert claims["sub"] == info["sub"] and claims["exp"] > time.time()


def test_malformed_token_requests_are_refused(p: LocalOAuthProvider, http: httpx.Client) -> None:
    """RFC 6749 §3.2: no parameter twice; §2.3: one authentication mechanism; and the
    registered method only."""
    p.register_client("basic-only", SECRET, ["read"], auth_method="client_secret_basic")
    twice = http.post(p.base + "/oidc/token", content="grant_type=refresh_token&refresh_token=x&client_id=pub&client_id=pub",
                      headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert twice.status_code == 400 and "'client_id' parameter must not be provided twice" in twice.json()["error_description"]
    both = http.post(p.base + "/oidc/token", auth=("basic-only", SECRET),
                     data={"grant_type": "refresh_token", "refresh_token": "x", "client_secret": SECRET})
    assert both.status_code == 400 and "one mechanism" in both.json()["error_description"]
    post = http.post(p.base + "/oidc/token", data={"grant_type": "refresh_token", "refresh_token": "x",
                                                   "client_id": "basic-only", "client_secret": SECRET})
    assert post.status_code == 401 and post.json()["error"] == "invalid_client"
    basic = http.post(p.base + "/oidc/token", auth=("basic-only", SECRET),
                      data={"grant_type": "refresh_token", "refresh_token": "x"})
    assert basic.json()["error"] == "invalid_grant"  # authenticated; the token is what is wrong


# -- device flow -----------------------------------------------------------------------------------

def test_device_flow_pending_slow_down_approve_and_deny(p: LocalOAuthProvider, http: httpx.Client) -> None:
    p.device_interval = 0.2
    p.slow_down_increment = 0
    start = http.post(p.base + "/oidc/device", data={"client_id": "pub", "scope": "read offline_access"}).json()
    assert start["verification_uri"] == p.base + "/oidc/device/verify" and start["interval"] == 0.2

    def poll(device_code: str) -> httpx.Response:
        return http.post(p.base + "/oidc/token", data={"grant_type": DEVICE, "device_code": device_code,
                                                       "client_id": "pub"})

    assert poll(start["device_code"]).json()["error"] == "authorization_pending"
    assert poll(start["device_code"]).json()["error"] == "slow_down"  # no wait at all
    time.sleep(0.25)
    assert poll(start["device_code"]).json()["error"] == "authorization_pending"
    p.approve_device(start["user_code"])
    time.sleep(0.25)
    done = poll(start["device_code"])
    assert done.status_code == 200 and done.json()["access_token"].startswith("at-") and done.json()["refresh_token"]
    assert poll(start["device_code"]).json()["error"] == "invalid_grant"  # one-shot
    denied = http.post(p.base + "/oidc/device", data={"client_id": "pub"}).json()
    p.deny_device(denied["user_code"])
    assert poll(denied["device_code"]).json()["error"] == "access_denied"
    p.device_code_ttl = 0
    expired = http.post(p.base + "/oidc/device", data={"client_id": "pub"}).json()
    assert poll(expired["device_code"]).json()["error"] == "expired_token"
    with pytest.raises(KeyError):
        p.approve_device("NOPE-NOPE")
    assert p.requests["device_code"] == 3 and p.requests["device_poll"] == 7


def test_slow_down_increases_the_interval(p: LocalOAuthProvider, http: httpx.Client) -> None:
    p.device_interval = 0.2
    p.slow_down_increment = 0.3
    start = http.post(p.base + "/github/login/device/code", data={"client_id": "pub", "scope": "repo"},
                      headers={"Accept": "application/json"}).json()
    data = {"grant_type": DEVICE, "device_code": start["device_code"], "client_id": "pub"}
    url, accept = p.base + "/github/login/oauth/access_token", {"Accept": "application/json"}
    assert http.post(url, data=data, headers=accept).json()["error"] == "authorization_pending"
    slow = http.post(url, data=data, headers=accept)
    assert slow.status_code == 200 and slow.json()["error"] == "slow_down" and slow.json()["interval"] == 0.5
    time.sleep(0.3)  # the old interval is no longer enough
    assert http.post(url, data=data, headers=accept).json()["error"] == "slow_down"


def test_verification_page_acts_on_consent(p: LocalOAuthProvider, http: httpx.Client) -> None:
    start = http.post(p.base + "/microsoft/common/oauth2/v2.0/devicecode",
                      data={"client_id": "pub", "scope": "User.Read offline_access"}).json()
    assert start["user_code"] in start["message"] and "verification_uri_complete" not in start
    page = http.get(start["verification_uri"], params={"user_code": start["user_code"]})
    assert page.status_code == 200 and "Device connected" in page.text
    time.sleep(1)
    token = http.post(p.base + "/microsoft/common/oauth2/v2.0/token",
                      data={"grant_type": DEVICE, "device_code": start["device_code"], "client_id": "pub"}).json()
    assert token["refresh_token"] and token["ext_expires_in"] == token["expires_in"]


# -- Google -------------------------------------------------------------------------------------

def google_tokens(http: httpx.Client, p: LocalOAuthProvider, **extra: Any) -> dict[str, Any]:
    pkce = Pkce()
    code = authorize(http, p.base + "/google/o/oauth2/v2/auth", response_type="code", client_id="conf",
                     scope="openid email", **pkce.params, **extra)["code"]
    response = http.post(p.base + "/google/token", data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": CALLBACK, "client_id": "conf",
        "client_secret": SECRET, "code_verifier": pkce.verifier})
    assert response.status_code == 200, response.text
    return response.json()


def test_google_refresh_tokens_need_offline_and_never_rotate(p: LocalOAuthProvider, http: httpx.Client) -> None:
    assert "refresh_token" not in google_tokens(http, p)
    first = google_tokens(http, p, access_type="offline")  # first consent with offline access
    assert first["refresh_token"]
    assert "refresh_token" not in google_tokens(http, p, access_type="offline")  # already consented
    forced = google_tokens(http, p, access_type="offline", prompt="consent")
    assert forced["refresh_token"]
    refresh = {"grant_type": "refresh_token", "refresh_token": forced["refresh_token"], "client_id": "conf",
               "client_secret": SECRET}
    again = http.post(p.base + "/google/token", data=refresh).json()
    assert "refresh_token" not in again and again["access_token"]
    assert http.post(p.base + "/google/token", data=refresh).status_code == 200  # the same one still works
    info = http.get(p.base + "/google/v1/userinfo", headers={"Authorization": f"Bearer {again['access_token']}"})
    assert info.json()["email"] == p.user
    # revoking the refresh token revokes the whole grant
    assert http.post(p.base + "/google/revoke", data={"token": forced["refresh_token"]}).json() == {}
    assert {forced["refresh_token"], forced["access_token"], again["access_token"]} <= p.revoked_tokens
    again_revoke = http.post(p.base + "/google/revoke", data={"token": forced["refresh_token"]})
    assert again_revoke.status_code == 400 and again_revoke.json()["error"] == "invalid_token"


def test_google_device_flow_quirks(p: LocalOAuthProvider, http: httpx.Client) -> None:
    start = http.post(p.base + "/google/device/code", data={"client_id": "conf", "client_secret": SECRET,
                                                             "scope": "email"}).json()
    assert start["verification_url"] == p.base + "/google/device" and "verification_uri" not in start
    pending = http.post(p.base + "/google/token", data={"grant_type": DEVICE, "device_code": start["device_code"],
                                                        "client_id": "conf", "client_secret": SECRET})
    assert pending.status_code == 428 and pending.json()["error"] == "authorization_pending"


# -- GitHub ---------------------------------------------------------------------------------------

def github_code(http: httpx.Client, p: LocalOAuthProvider) -> tuple[str, Pkce]:
    pkce = Pkce()
    query = authorize(http, p.base + "/github/login/oauth/authorize", client_id="pub", scope="repo read:user",
                      **pkce.params)
    return query["code"], pkce


def test_github_form_and_json_answers(p: LocalOAuthProvider, http: httpx.Client) -> None:
    url = p.base + "/github/login/oauth/access_token"
    code, pkce = github_code(http, p)
    exchange = {"client_id": "pub", "code": code, "redirect_uri": CALLBACK, "code_verifier": pkce.verifier}
    form = http.post(url, data=exchange)
    assert form.headers["content-type"].startswith("application/x-www-form-urlencoded")
    body = {k: v[0] for k, v in parse_qs(form.text).items()}
    assert body["access_token"].startswith("gho_") and body["refresh_token"].startswith("ghr_")
    assert body["scope"] == "repo,read:user" and body["token_type"] == "bearer"
    assert body["refresh_token_expires_in"] == "86400" and body["expires_in"] == "3600"
    refreshed = http.post(url, headers={"Accept": "application/json"}, data={
        "client_id": "pub", "grant_type": "refresh_token", "refresh_token": body["refresh_token"]})
    new = refreshed.json()
    assert new["refresh_token"].startswith("ghr_") and new["refresh_token"] != body["refresh_token"]
    dead = http.post(url, headers={"Accept": "application/json"}, data={
        "client_id": "pub", "grant_type": "refresh_token", "refresh_token": body["refresh_token"]})
    assert dead.status_code == 200 and dead.json()["error"] == "bad_refresh_token"
    user = http.get(p.base + "/github/api/user", headers={"Authorization": f"token {new['access_token']}"})
    assert user.json() == {"login": "alice", "id": 1} and user.headers["x-oauth-scopes"] == "repo, read:user"
    reused = http.post(url, data=exchange, headers={"Accept": "application/json"})
    assert reused.status_code == 200 and reused.json()["error"] == "bad_verification_code"
    assert new["access_token"] not in p.live_access_tokens  # the replay revoked the grant


def test_github_without_expiring_tokens(p: LocalOAuthProvider, http: httpx.Client) -> None:
    p.rotate_refresh_tokens = False
    code, pkce = github_code(http, p)
    body = http.post(p.base + "/github/login/oauth/access_token", headers={"Accept": "application/json"},
                     json={"client_id": "pub", "code": code, "redirect_uri": CALLBACK,
                           "code_verifier": pkce.verifier}).json()
    assert body["access_token"].startswith("gho_") and "refresh_token" not in body and "expires_in" not in body


def test_github_device_flow_and_revocation(p: LocalOAuthProvider, http: httpx.Client) -> None:
    p.register_client("gh-app", SECRET, ["repo"])
    start = parse_qs(http.post(p.base + "/github/login/device/code", data={"client_id": "gh-app",
                                                                            "scope": "repo"}).text)
    assert start["verification_uri"] == [p.base + "/github/login/device"]
    device_code = start["device_code"][0]
    poll = {"client_id": "gh-app", "device_code": device_code, "grant_type": DEVICE}
    url = p.base + "/github/login/oauth/access_token"
    pending = http.post(url, data=poll)
    assert pending.status_code == 200 and parse_qs(pending.text)["error"] == ["authorization_pending"]
    p.approve_device(start["user_code"][0])
    time.sleep(1)
    token = http.post(url, data=poll, headers={"Accept": "application/json"}).json()
    assert token["access_token"].startswith("gho_")
    bogus = http.post(url, data={**poll, "device_code": "bogus"}, headers={"Accept": "application/json"})
    assert bogus.json()["error"] == "incorrect_device_code"
    revoke_url = p.base + "/github/api/applications/gh-app/token"
    wrong = http.request("DELETE", revoke_url, auth=("gh-app", "nope"), json={"access_token": token["access_token"]})
    assert wrong.status_code == 401
    gone = http.request("DELETE", revoke_url, auth=("gh-app", SECRET), json={"access_token": token["access_token"]})
    assert gone.status_code == 204
    assert token["access_token"] in p.revoked_tokens and token["refresh_token"] in p.revoked_tokens
    after = http.get(p.base + "/github/api/user", headers={"Authorization": f"Bearer {token['access_token']}"})
    assert after.status_code == 401


# -- Microsoft -------------------------------------------------------------------------------------

def test_microsoft_offline_access_rotation_and_errors(p: LocalOAuthProvider, http: httpx.Client) -> None:
    p.rotate_refresh_tokens = False  # Entra rotates regardless
    root = p.base + "/microsoft/organizations/oauth2/v2.0"
    pkce = Pkce()
    code = authorize(http, root + "/authorize", response_type="code", client_id="pub",
                     scope="User.Read offline_access", **pkce.params)["code"]
    token = http.post(root + "/token", data={"grant_type": "authorization_code", "code": code, "client_id": "pub",
                                             "redirect_uri": CALLBACK, "code_verifier": pkce.verifier}).json()
    refreshed = http.post(root + "/token", data={"grant_type": "refresh_token", "client_id": "pub",
                                                 "refresh_token": token["refresh_token"]}).json()
    assert refreshed["refresh_token"] != token["refresh_token"]
    stale = http.post(root + "/token", data={"grant_type": "refresh_token", "client_id": "pub",
                                             "refresh_token": token["refresh_token"]})
    assert stale.status_code == 400 and stale.json()["error"] == "invalid_grant"
    assert stale.json()["error_codes"] == [70000] and stale.json()["error_description"].startswith("AADSTS70000")
    me = http.get(p.base + "/microsoft/graph/v1.0/me", headers={"Authorization": f"Bearer {refreshed['access_token']}"})
    assert me.json()["userPrincipalName"] == p.user and me.json()["id"]
    pkce = Pkce()
    code = authorize(http, root + "/authorize", response_type="code", client_id="pub", scope="User.Read",
                     **pkce.params)["code"]
    online = http.post(root + "/token", data={"grant_type": "authorization_code", "code": code, "client_id": "pub",
                                              "redirect_uri": CALLBACK, "code_verifier": pkce.verifier}).json()
    assert "refresh_token" not in online
    assert http.post(root + "/revoke", data={"token": online["access_token"]}).status_code == 404


# -- Slack -----------------------------------------------------------------------------------------

def slack_code(http: httpx.Client, p: LocalOAuthProvider, **extra: Any) -> str:
    query = authorize(http, p.base + "/slack/oauth/v2/authorize", client_id="conf", scope="commands",
                      user_scope="channels:read,chat:write", **extra)
    return query["code"]


def test_slack_nested_answers_and_ok_false_errors(p: LocalOAuthProvider, http: httpx.Client) -> None:
    url = p.base + "/slack/api/oauth.v2.access"
    code = slack_code(http, p, code_challenge="ignored-" + "x" * 40, code_challenge_method="S256")
    exchange = {"client_id": "conf", "client_secret": SECRET, "code": code, "redirect_uri": CALLBACK}
    body = http.post(url, data=exchange).json()
    assert body["ok"] is True and body["team"] == {"id": "T1", "name": "Example"} and body["app_id"] == "A1"
    user = body["authed_user"]
    assert user["id"] == "U1" and user["token_type"] == "user" and user["scope"] == "channels:read,chat:write"
    assert user["access_token"].startswith("xoxp-") and user["refresh_token"].startswith("xoxe-1-")
    assert user["expires_in"] == 3600
    wrong_redirect = http.post(url, data={**exchange, "code": slack_code(http, p),
                                          "redirect_uri": "http://127.0.0.1:1/other"})
    assert wrong_redirect.json()["error"] == "bad_redirect_uri"
    bad_secret = http.post(url, data={**exchange, "code": slack_code(http, p), "client_secret": "nope"})
    assert bad_secret.json()["error"] == "bad_client_secret"
    refresh = {"client_id": "conf", "client_secret": SECRET, "grant_type": "refresh_token",
               "refresh_token": user["refresh_token"]}
    new = http.post(url, data=refresh).json()["authed_user"]
    assert new["refresh_token"] != user["refresh_token"] and new["access_token"].startswith("xoxp-")
    assert http.post(url, data=refresh).json() == {"ok": False, "error": "invalid_refresh_token"}
    test = http.post(p.base + "/slack/api/auth.test", headers={"Authorization": f"Bearer {new['access_token']}"})
    assert test.json() == {"ok": True, "url": "https://example.slack.com/", "team": "Example", "user": "alice",
                           "team_id": "T1", "user_id": "U1"}
    revoke = http.post(p.base + "/slack/api/auth.revoke", data={"token": new["access_token"]})
    assert revoke.json() == {"ok": True, "revoked": True} and new["access_token"] in p.revoked_tokens
    after = http.get(p.base + "/slack/api/auth.test", headers={"Authorization": f"Bearer {new['access_token']}"})
    assert after.json() == {"ok": False, "error": "token_revoked"}
    reused = http.post(url, data=exchange)
    assert reused.status_code == 200 and reused.json() == {"ok": False, "error": "invalid_code"}


def test_slack_without_rotation_has_no_refresh_token(p: LocalOAuthProvider, http: httpx.Client) -> None:
    p.rotate_refresh_tokens = False
    body = http.post(p.base + "/slack/api/oauth.v2.access", auth=("conf", SECRET),
                     data={"code": slack_code(http, p), "redirect_uri": CALLBACK}).json()
    assert body["ok"] and "refresh_token" not in body["authed_user"] and "expires_in" not in body["authed_user"]


# -- outages and counting -----------------------------------------------------------------------

def test_down_answers_503_everywhere_and_requests_are_counted(p: LocalOAuthProvider, http: httpx.Client) -> None:
    code, pkce = oidc_code(http, p)
    oidc_exchange(http, p, code, pkce.verifier)
    p.down = True
    for method, path in [("GET", "/oidc/.well-known/openid-configuration"), ("POST", "/oidc/token"),
                         ("GET", "/github/login/oauth/authorize"), ("POST", "/slack/api/oauth.v2.access"),
                         ("GET", "/microsoft/graph/v1.0/me"), ("GET", "/no/such/route")]:
        response = http.request(method, p.base + path, data={"grant_type": "refresh_token"} if method == "POST" else None)
        assert response.status_code == 503, path
    p.down = False
    assert http.get(p.base + "/oidc/.well-known/openid-configuration").status_code == 200
    assert p.requests["authorize"] == 2 and p.requests["code"] == 1 and p.requests["refresh"] == 2


# -- the browser ---------------------------------------------------------------------------------

class _Callback(BaseHTTPRequestHandler):
    received: list[dict[str, str]] = []

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        if self.path.startswith("/callback"):
            self.received.append({k: v[0] for k, v in parse_qs(urlsplit(self.path).query).items()})
        body = b"<html><body>You can close this window.</body></html>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


def test_headless_chromium_follows_authorize_to_loopback_callback(p: LocalOAuthProvider, http: httpx.Client) -> None:
    require_chromium()
    server = HTTPServer(("127.0.0.1", 0), _Callback)
    _Callback.received = []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    redirect_uri = f"http://127.0.0.1:{server.server_port}/callback"
    pkce = Pkce()
    params = {"response_type": "code", "client_id": "pub", "scope": "read", "state": "browser-state",
              "redirect_uri": redirect_uri, **pkce.params}
    try:
        with HeadlessChromium() as browser:
            assert browser(p.base + "/oidc/authorize?" + urlencode(params)) is True
            dom = browser.wait(timeout=20)
    finally:
        server.shutdown()
        server.server_close()
    assert "You can close this window." in dom
    assert len(_Callback.received) == 1 and _Callback.received[0]["state"] == "browser-state"
    token = http.post(p.base + "/oidc/token", data={"grant_type": "authorization_code", "client_id": "pub",
                                                    "code": _Callback.received[0]["code"],
                                                    "redirect_uri": redirect_uri, "code_verifier": pkce.verifier})
    assert token.status_code == 200, token.text
