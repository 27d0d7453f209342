"""Talking to one provider with one app registration, through authlib's OAuth 2.0 client.

Every provider quirk is absorbed here: GitHub answers errors with HTTP 200 and form
bodies unless asked for JSON, Slack nests the user token under ``authed_user`` and says
``ok: false`` instead of an error status, Google calls its verification URL
``verification_url``. What leaves this module is a ``TokenSet`` or a typed error whose
message names the provider, what happened and what to do — never a token.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from console.errors import TbxError
from console.oauth.client_auth import choose_method, load_private_key, private_key_jwt
from console.oauth.providers import ProviderSpec
from console.oauth.tokens import TokenSet

# requests and authlib take a quarter of a second to import: they come with the first call
# to a provider (made from a worker), not with the Connections screen that may never call.
if TYPE_CHECKING:
    import requests
    from authlib.integrations.base_client.errors import OAuthError as AuthlibOAuthError
    from authlib.integrations.requests_client import OAuth2Session

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
REFUSED_GRANT = {"invalid_grant", "bad_refresh_token", "bad_verification_code", "invalid_refresh_token"}
"""RFC 6749's word for a dead code or refresh token, and GitHub's own words for it."""


class OAuthFlowError(TbxError):
    """An OAuth step failed; nothing was stored."""


class ConsentDenied(OAuthFlowError):
    pass


class StateMismatch(OAuthFlowError):
    pass


class FlowTimeout(OAuthFlowError):
    pass


class IssuerMismatch(OAuthFlowError):
    """The redirect came back naming another authorization server (RFC 9207)."""


class ProviderUnavailable(OAuthFlowError):
    """The provider could not be reached or answered with a server error."""


class InvalidGrant(OAuthFlowError):
    """The provider refused a code or refresh token: the user has to consent again."""


class DevicePending(Exception):
    """Internal: the user has not finished on the verification page yet."""

    def __init__(self, slow_down: bool) -> None:
        super().__init__("authorization pending")
        self.slow_down = slow_down


@dataclass(frozen=True)
class Credentials:
    client_id: str
    client_secret: str | None = None
    private_key: str | None = None
    """PEM private key for private_key_jwt (RFC 7523)."""
    auth_method: str | None = None
    """The client authentication the user chose; None: the first the provider takes."""

    def __repr__(self) -> str:
        return f"Credentials(client_id={self.client_id!r}, auth_method={self.auth_method!r}, secrets=<hidden>)"


@dataclass(frozen=True)
class DeviceGrant:
    device_code: str
    user_code: str
    verification_uri: str
    verification_uri_complete: str | None
    interval: float
    expires_in: float

    def __repr__(self) -> str:
        return f"DeviceGrant(user_code={self.user_code!r}, verification_uri={self.verification_uri!r})"


class OAuthClient:
    def __init__(self, spec: ProviderSpec, credentials: Credentials, timeout: float = 15.0) -> None:
        self.spec = spec
        self.credentials = credentials
        self.timeout = timeout
        self.auth_method = choose_method(spec, has_secret=bool(credentials.client_secret),
                                         has_key=bool(credentials.private_key), wanted=credentials.auth_method)

    # -- sessions ---------------------------------------------------------------------

    def _session(self, **kwargs: Any) -> OAuth2Session:
        """A session whose requests to the token, device and revocation endpoints carry the
        app's credentials exactly once, the way ``auth_method`` says."""
        from authlib.integrations.requests_client import OAuth2Session

        method = self.auth_method
        secret: Any = self.credentials.client_secret
        if method == "private_key_jwt":
            assert self.credentials.private_key is not None
            secret = load_private_key(self.credentials.private_key)
        session = OAuth2Session(
            client_id=self.credentials.client_id,
            client_secret=secret,
            token_endpoint_auth_method=method,
            revocation_endpoint_auth_method=method,
            code_challenge_method="S256" if self.spec.pkce else None,
            default_timeout=self.timeout,
            **kwargs,
        )
        if method == "private_key_jwt":
            session.register_client_auth_method(
                private_key_jwt(self.spec, self.credentials.private_key or "", self.spec.url(self.spec.token) or ""))
        session.headers["Accept"] = "application/json"
        if self.spec.shape == "slack":
            session.register_compliance_hook("access_token_response", _unnest_slack)
            session.register_compliance_hook("refresh_token_response", _unnest_slack)
        return session

    def _scope_args(self, scopes: list[str]) -> dict[str, str]:
        return {self.spec.scope_param: self.spec.scope_separator.join(scopes)} if scopes else {}

    # -- the authorization code flow ---------------------------------------------------

    def authorization_url(self, redirect_uri: str, scopes: list[str], state: str, code_verifier: str | None,
                          nonce: str | None = None) -> str:
        session = self._session(redirect_uri=redirect_uri)
        extra = self.spec.authorize_params(scopes)
        if nonce is not None and self.spec.checks_id_tokens:
            extra["nonce"] = nonce
        url, _ = session.create_authorization_url(
            self.spec.url(self.spec.authorize),
            state=state,
            code_verifier=code_verifier if self.spec.pkce else None,
            **self._scope_args(scopes),
            **extra,
        )
        return str(url)

    def exchange_code(self, code: str, redirect_uri: str, code_verifier: str | None, nonce: str | None = None) -> TokenSet:
        session = self._session(redirect_uri=redirect_uri)
        extra = {**self.spec.token_extra, **({"code_verifier": code_verifier} if self.spec.pkce and code_verifier else {})}
        token = self._call(
            "exchanging the sign-in code",
            lambda: session.fetch_token(self.spec.url(self.spec.token), code=code, grant_type="authorization_code", **extra),
            invalid_grant="the provider refused the sign-in code (already used or expired): start the sign-in again",
        )
        if code_verifier and code_verifier in (token.get("access_token"), token.get("refresh_token")):
            # The verifier proves the code was ours; a token endpoint that hands it back as a
            # token is reflecting requests, not issuing tokens.
            raise OAuthFlowError(f"{self.spec.title} answered the sign-in with the sign-in's own secret instead of "
                                 "a token; nothing was saved")
        return self._issued(dict(token), nonce=nonce, id_token_required=nonce is not None)

    def _issued(self, token: dict[str, Any], *, nonce: str | None, id_token_required: bool) -> TokenSet:
        """The token set of a sign-in, once its ID token (OpenID Connect) proved it; if it
        does not, the tokens just issued are revoked before the error is raised."""
        tokens = TokenSet.from_response(token, self.spec.scope_separator)
        if not self.spec.checks_id_tokens:
            return tokens
        from console.oauth import id_token

        try:
            raw = token.get("id_token")
            if not isinstance(raw, str) or not raw:
                if not id_token_required:
                    return tokens
                raise id_token.IdTokenInvalid(
                    f"{self.spec.title} sent no ID token with the sign-in; nothing was saved, check that the app "
                    "may use the openid scope")
            claims = id_token.check(self.spec, raw, self.credentials.client_id, nonce=nonce, timeout=self.timeout)
        except OAuthFlowError:
            self.revoke_quietly(tokens)
            raise
        return tokens.model_copy(update={"subject": claims["sub"]})

    # -- the device flow ---------------------------------------------------------------

    def start_device(self, scopes: list[str]) -> DeviceGrant:
        url = self.spec.url(self.spec.device)
        if url is None:
            raise OAuthFlowError(f"{self.spec.title} has no device sign-in; use the browser sign-in instead")
        session = self._session()
        # RFC 8628 §3.1: the client authenticates here as at the token endpoint (a public
        # client names itself with client_id); the session's client auth adds exactly that.
        auth = session.client_auth(self.auth_method)
        body = self._call(
            "starting the device sign-in",
            lambda: _json_or_raise(session.post(url, data={**self._scope_args(scopes), **self.spec.token_extra}, auth=auth,
                                             withhold_token=True)),
        )
        try:
            device_code, user_code = str(body["device_code"]), str(body["user_code"])
            page = str(body.get("verification_uri") or body["verification_url"])
            complete = body.get("verification_uri_complete")
            interval, expires_in = float(body.get("interval") or 5), float(body.get("expires_in") or 900)
        except (KeyError, TypeError, ValueError):
            raise OAuthFlowError(
                f"{self.spec.title} answered the device sign-in request without a code; check the app registration"
            ) from None
        from console.oauth.device_text import check_code, check_page

        try:  # shown on the user's terminal as they came: no escape sequences get there
            return DeviceGrant(device_code=device_code, user_code=check_code(user_code),
                               verification_uri=check_page(page),
                               verification_uri_complete=check_page(complete) if isinstance(complete, str) else None,
                               interval=interval, expires_in=expires_in)
        except ValueError as exc:
            raise OAuthFlowError(f"{self.spec.title} answered the device sign-in with {exc}; refused, "
                                 "nothing was saved") from None

    def poll_device(self, grant: DeviceGrant) -> TokenSet:
        """One poll; raises ``DevicePending`` while the user has not decided yet."""
        import requests
        from authlib.integrations.base_client.errors import OAuthError as AuthlibOAuthError

        session = self._session()
        try:
            # No client_id here: the client authentication adds it where the method needs it,
            # and a parameter sent twice is refused by strict providers (RFC 6749 §3.2).
            token = session.fetch_token(
                self.spec.url(self.spec.token), grant_type=DEVICE_GRANT, device_code=grant.device_code,
                **self.spec.token_extra,
            )
        except AuthlibOAuthError as exc:
            if exc.error in ("authorization_pending", "slow_down"):
                raise DevicePending(slow_down=exc.error == "slow_down") from None
            if exc.error == "expired_token":
                raise FlowTimeout(f"the device code for {self.spec.title} expired before sign-in finished; start again") from None
            raise self._error("polling the device sign-in", exc) from None
        except (requests.RequestException, ValueError) as exc:
            raise self._unreachable("polling the device sign-in", exc) from None
        return self._issued(dict(token), nonce=None, id_token_required=False)

    # -- refresh, revoke, account ------------------------------------------------------

    def refresh(self, tokens: TokenSet) -> TokenSet:
        if not tokens.refresh_token:
            raise InvalidGrant(f"{self.spec.title} gave no refresh token for this connection; reconnect to sign in again")
        session = self._session()
        token = self._call(
            "refreshing the token",
            lambda: session.refresh_token(self.spec.url(self.spec.token), refresh_token=tokens.refresh_token,
                                          **self.spec.token_extra),
            invalid_grant="the provider refused the refresh token (expired or revoked): reconnect to sign in again",
        )
        fresh = TokenSet.from_response(dict(token), self.spec.scope_separator, previous=tokens)
        raw = token.get("id_token")
        if self.spec.checks_id_tokens and isinstance(raw, str) and raw:
            # OIDC Core §12.2: a refreshed ID token must be about the same person.
            from console.oauth import id_token

            claims = id_token.check(self.spec, raw, self.credentials.client_id, nonce=None, timeout=self.timeout)
            if tokens.subject is not None and claims["sub"] != tokens.subject:
                raise id_token.IdTokenInvalid(
                    f"{self.spec.title} refreshed the token for another account; reconnect to sign in again")
        return fresh

    def revoke(self, tokens: TokenSet) -> bool:
        """Revoke at the provider where it can; ``False`` when the provider has no way to."""
        import requests

        spec = self.spec
        if not spec.supports_revocation:
            return False
        url = spec.url(spec.revoke, client_id=self.credentials.client_id)
        assert url is not None
        if spec.revocation == "github":
            def send() -> requests.Response:
                return requests.delete(
                    url, json={"access_token": tokens.access_token}, timeout=self.timeout,
                    auth=(self.credentials.client_id, self.credentials.client_secret or ""),
                    headers={"Accept": "application/vnd.github+json"},
                )
        elif spec.revocation == "slack":
            def send() -> requests.Response:
                return requests.post(url, data={"token": tokens.access_token}, timeout=self.timeout)
        else:
            session = self._session()
            token = tokens.refresh_token or tokens.access_token
            hint = "refresh_token" if tokens.refresh_token else "access_token"

            def send() -> requests.Response:
                return session.revoke_token(url, token=token, token_type_hint=hint)

        response = self._call("revoking the token", send)
        if response.status_code == 404 and spec.revocation == "github":
            return True  # the token was already gone
        if response.status_code >= 400:
            raise OAuthFlowError(f"{spec.title} refused to revoke the token (HTTP {response.status_code})")
        if spec.revocation == "slack":
            body = _json_or_raise(response)
            if not body.get("ok") and body.get("error") not in ("token_revoked", "invalid_auth"):
                raise OAuthFlowError(f"Slack refused to revoke the token: {body.get('error', 'unknown error')}")
        return True

    def revoke_quietly(self, tokens: TokenSet) -> bool:
        """Revoke tokens a failed sign-in was issued; whatever goes wrong, the sign-in's own
        error is what the user needs to see."""
        try:
            return self.revoke(tokens)
        except OAuthFlowError:
            return False

    def account(self, tokens: TokenSet) -> str:
        import requests

        url = self.spec.url(self.spec.account)
        headers = {"Authorization": f"Bearer {tokens.access_token}", "Accept": "application/json"}
        body = self._call("looking up the signed-in account", lambda: _json_or_raise(
            requests.get(url, headers=headers, timeout=self.timeout)))
        if self.spec.shape == "slack" and not body.get("ok", False):
            raise OAuthFlowError(f"Slack did not accept the new token: {body.get('error', 'unknown error')}")
        if tokens.subject is not None and body.get("sub") not in (None, tokens.subject):
            # OIDC Core §5.3.2: userinfo about someone else than the ID token is a substitution.
            raise OAuthFlowError(f"{self.spec.title} described another account than the one that signed in")
        for name in self.spec.account_fields:
            value = body.get(name)
            if value:
                if self.spec.shape == "slack" and body.get("team"):
                    return f"{value}@{body['team']}"
                return str(value)
        raise OAuthFlowError(f"{self.spec.title} did not say which account signed in; check the app's scopes")

    # -- errors ------------------------------------------------------------------------

    def _call(self, doing: str, fn: Any, invalid_grant: str | None = None) -> Any:
        import requests
        from authlib.integrations.base_client.errors import OAuthError as AuthlibOAuthError

        try:
            return fn()
        except AuthlibOAuthError as exc:
            if exc.error in REFUSED_GRANT and invalid_grant:
                raise InvalidGrant(f"{self.spec.title}: {invalid_grant}") from None
            raise self._error(doing, exc) from None
        except _ProviderSaid as exc:
            raise self._said(doing, exc.status, exc.body) from None
        except (requests.RequestException, ValueError) as exc:
            raise self._unreachable(doing, exc) from None

    def _error(self, doing: str, exc: AuthlibOAuthError) -> OAuthFlowError:
        if exc.error in ("access_denied", "authorization_declined"):
            return ConsentDenied(f"{self.spec.title} sign-in was declined; nothing was saved")
        if exc.error in REFUSED_GRANT:
            return InvalidGrant(f"{self.spec.title} refused the grant while {doing}: reconnect to sign in again")
        if exc.error in ("invalid_client", "unauthorized_client", "incorrect_client_credentials"):
            what = "key" if self.auth_method == "private_key_jwt" else "secret"
            return OAuthFlowError(
                f"{self.spec.title} does not accept the app registration ({exc.error}, authenticating with "
                f"{self.auth_method}); check the client id, the {what} and the authentication method the app is "
                f"registered for ('tbx connection app {self.spec.id} --auth-method ...')"
            )
        return OAuthFlowError(f"{self.spec.title} refused {doing}: {exc.error}")

    def _said(self, doing: str, status: int, body: dict[str, Any]) -> OAuthFlowError:
        from authlib.integrations.base_client.errors import OAuthError as AuthlibOAuthError

        error = str(body.get("error") or f"HTTP {status}")
        if status >= 500:
            return ProviderUnavailable(f"{self.spec.title} is unavailable (HTTP {status}) while {doing}; try again later")
        return self._error(doing, AuthlibOAuthError(error=error))

    def _unreachable(self, doing: str, exc: Exception) -> ProviderUnavailable:
        status = getattr(getattr(exc, "response", None), "status_code", None)
        why = f"HTTP {status}" if status else type(exc).__name__
        return ProviderUnavailable(f"{self.spec.title} could not be reached while {doing} ({why}); try again later")


class _ProviderSaid(Exception):
    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(f"HTTP {status}")
        self.status, self.body = status, body


def _json_or_raise(response: requests.Response) -> dict[str, Any]:
    """The JSON object of a provider's answer; errors (by status, or in the body with
    HTTP 200 as GitHub and Slack do) become ``_ProviderSaid``."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise _ProviderSaid(response.status_code, {})
    if response.status_code >= 400 or "error" in body:
        raise _ProviderSaid(response.status_code, body)
    return body


def _unnest_slack(response: requests.Response) -> requests.Response:
    """Slack's oauth.v2.access: HTTP 200 always, ``ok`` says how it went, and the user
    token sits under ``authed_user``. Rewrite it into an RFC 6749 token response."""
    try:
        body = response.json()
    except ValueError:
        return response
    if not isinstance(body, dict) or "ok" not in body:
        return response
    if not body["ok"]:
        error = str(body.get("error", "unknown_error"))
        mapped = {"invalid_code": "invalid_grant", "invalid_refresh_token": "invalid_grant",
                  "code_already_used": "invalid_grant", "access_denied": "access_denied",
                  "invalid_client_id": "invalid_client", "bad_client_secret": "invalid_client"}.get(error, error)
        fixed: dict[str, Any] = {"error": mapped, "error_description": error}
    else:
        user = body.get("authed_user") or {}
        fixed = {key: user[key] for key in ("access_token", "refresh_token", "expires_in", "scope", "token_type")
                 if key in user}
        if "access_token" not in fixed:
            fixed = {"error": "invalid_scope", "error_description": "Slack returned no user token; ask for user scopes"}
        fixed.setdefault("token_type", "Bearer")
    response._content = json.dumps(fixed).encode()
    return response
